package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/caekit/caekit/revocation/ssf/internal/ssfhttp"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/caekit/caekit/internal/backoff"
	"github.com/caekit/caekit/internal/jose"
)

// Poller receives SETs by RFC 8936 polling and feeds them to a Receiver. It
// acknowledges a SET only once the Receiver stored (or deliberately
// recorded) it, reports refused SETs in setErrs, and leaves SETs whose
// storing failed, or whose signing key could not be obtained
// (ErrKeysUnavailable), unacknowledged and unreported so that the
// transmitter offers them again.
//
// A Poller is not safe for concurrent use: run one Run (or Poll) at a time.
type Poller struct {
	r                 *Receiver
	endpoint          string
	auth              string
	hc                *http.Client
	maxEvents         int
	returnImmediately bool
	interval          time.Duration
	timeout           time.Duration
	minBackoff        time.Duration
	maxBackoff        time.Duration
	maxResp           int64
	log               *slog.Logger

	ack     []string
	setErrs map[string]errorResponse
}

// NewPoller returns a Poller for the transmitter's poll endpoint (the
// stream's delivery endpoint_url) that feeds r. It starts from r's logger,
// limits and WithInsecureHTTP; opts (WithPollAuthorization,
// WithReturnImmediately, WithHTTPClient, WithLogger, WithLimits,
// WithInsecureHTTP) override them. Every bad option is reported, joined
// with errors.Join. A Poller owns no goroutine: its lifetime is Run's ctx.
func NewPoller(r *Receiver, endpoint string, opts ...Option) (*Poller, error) {
	if r == nil {
		return nil, errors.New("ssf poller: nil Receiver")
	}
	cfg := r.cfg
	cfg.limitsGiven, cfg.forNew, cfg.forPoller, cfg.bad, cfg.nilOptions = nil, nil, nil, nil, nil
	cfg.pollHTTPClient = nil
	cfg.apply(opts)
	errs := cfg.common(cfg.forNew, "New, not NewPoller")
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if endpoint == "" {
		bad("the poll endpoint is empty")
	} else if err := jose.CheckURL(endpoint, cfg.insecureHTTP, ssfhttp.InsecureOption); err != nil {
		// https, or plain http on loopback or with WithInsecureHTTP;
		// redirects likewise (below).
		bad("poll endpoint: %v", err)
	}
	if cfg.pollMaxResp <= 0 || cfg.pollTimeout <= 0 || cfg.pollMaxEvents <= 0 {
		bad("poll bounds must be positive (max events %d, max response %d, request timeout %v)", cfg.pollMaxEvents, cfg.pollMaxResp, cfg.pollTimeout)
	}
	if cfg.pollMinBackoff <= 0 || cfg.pollMaxBackoff < cfg.pollMinBackoff {
		bad("invalid poll backoff %v..%v (must be positive and ordered)", cfg.pollMinBackoff, cfg.pollMaxBackoff)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ssf poller: %w", err)
	}
	hc := cfg.pollHTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Poller{
		r: r, endpoint: endpoint, auth: cfg.pollAuth,
		// Redirects never go to another origin while an Authorization
		// header rides along.
		hc:        ssfhttp.Guard(hc, cfg.insecureHTTP, cfg.pollAuth != ""),
		maxEvents: cfg.pollMaxEvents, returnImmediately: cfg.returnImmediately, interval: cfg.pollInterval,
		timeout: cfg.pollTimeout, minBackoff: cfg.pollMinBackoff, maxBackoff: cfg.pollMaxBackoff,
		maxResp: cfg.pollMaxResp, log: cfg.logger,
		setErrs: map[string]errorResponse{},
	}, nil
}

// PollResult sums up one poll.
type PollResult struct {
	// Received is the number of SETs in the response.
	Received int
	// Acknowledged and Rejected count what will be sent as ack and setErrs
	// with the next request.
	Acknowledged, Rejected int
	// Unstored counts SETs left unacknowledged, and not reported in setErrs,
	// for a temporary failure, so that the transmitter offers them again:
	// the store failed (ErrStore), or no key to check their signature could
	// be obtained (ErrKeysUnavailable).
	Unstored int
	// MoreAvailable is the transmitter's moreAvailable.
	MoreAvailable bool
}

type pollRequest struct {
	MaxEvents         *int                     `json:"maxEvents,omitempty"`
	ReturnImmediately bool                     `json:"returnImmediately"`
	Ack               []string                 `json:"ack,omitempty"`
	SetErrs           map[string]errorResponse `json:"setErrs,omitempty"`
}

type pollResponse struct {
	Sets          map[string]json.RawMessage `json:"sets"`
	MoreAvailable bool                       `json:"moreAvailable"`
}

// Poll makes one poll request, sending the acknowledgements and errors due
// from earlier polls, and processes the SETs received. It returns an error
// wrapping ErrStore if any SET could not be stored, and one wrapping
// ErrKeysUnavailable if the signing key of any SET could not be obtained
// (the others are still processed; those SETs are neither acknowledged nor
// reported, so the transmitter offers them again), or the transport error if
// the request failed (the pending acknowledgements are then kept for the
// next request).
func (p *Poller) Poll(ctx context.Context) (PollResult, error) {
	return p.poll(ctx, p.maxEvents, p.returnImmediately)
}

func (p *Poller) poll(ctx context.Context, maxEvents int, immediate bool) (PollResult, error) {
	var res PollResult
	me := maxEvents
	body := pollRequest{MaxEvents: &me, ReturnImmediately: immediate, Ack: p.ack}
	if len(p.setErrs) > 0 {
		body.SetErrs = p.setErrs
	}
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var out pollResponse
	if err := ssfhttp.DoJSON(rctx, p.hc, http.MethodPost, p.endpoint, p.auth, body, &out, p.maxResp); err != nil {
		return res, fmt.Errorf("ssf: poll: %w", err)
	}
	// Delivered: the transmitter has our acknowledgements and errors.
	p.ack = nil
	p.setErrs = map[string]errorResponse{}
	res.MoreAvailable = out.MoreAvailable
	res.Received = len(out.Sets)
	jtis := make([]string, 0, len(out.Sets))
	for jti := range out.Sets {
		jtis = append(jtis, jti)
	}
	slices.Sort(jtis)
	var storeErr, keysErr error // the first of each kind
	for _, jti := range jtis {
		var raw string
		if err := json.Unmarshal(out.Sets[jti], &raw); err != nil {
			p.setErrs[jti] = errorResponse{Err: CodeInvalidRequest, Description: "SET is not a JSON string"}
			res.Rejected++
			continue
		}
		r, err := p.r.ReceiveVia(ctx, "poll", []byte(raw))
		var se *Error
		switch {
		case err == nil:
			if r.JTI != jti {
				p.log.WarnContext(ctx, "ssf: poll: SET jti differs from its key in sets; acknowledging the key", "key", jti, "jti", r.JTI)
			}
			p.ack = append(p.ack, jti)
			res.Acknowledged++
		case errors.As(err, &se):
			p.setErrs[jti] = errorResponse{Err: se.Code, Description: se.Description}
			res.Rejected++
		case errors.Is(err, ErrKeysUnavailable):
			res.Unstored++
			if keysErr == nil {
				keysErr = err
			}
		default:
			res.Unstored++
			if storeErr == nil {
				storeErr = err
			}
		}
	}
	return res, errors.Join(storeErr, keysErr)
}

// Pending returns how many acknowledgements and errors wait for the next request.
func (p *Poller) Pending() int { return len(p.ack) + len(p.setErrs) }

// Run polls until ctx is done: it long-polls (or short-polls at the
// configured interval), polls again at once while moreAvailable is true,
// and backs off exponentially with jitter after a failure. When ctx ends it
// makes one last acknowledgement-only request (maxEvents 0, at most 5 s) if
// acknowledgements are pending, and returns nil. Run never panics on a bad
// response; it logs and backs off.
func (p *Poller) Run(ctx context.Context) error {
	failures := 0
	for ctx.Err() == nil {
		res, err := p.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			wait := backoff.Policy{Min: p.minBackoff, Max: p.maxBackoff, Jitter: 0.5}.Delay(failures)
			p.log.WarnContext(ctx, "ssf: poll failed; backing off", "error", err, "wait", wait)
			if !sleep(ctx, wait) {
				break
			}
			continue
		}
		failures = 0
		if res.MoreAvailable {
			continue
		}
		if p.returnImmediately && !sleep(ctx, p.interval) {
			break
		}
	}
	if p.Pending() > 0 {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := p.poll(fctx, 0, true); err != nil {
			p.log.Warn("ssf: final acknowledgement failed; the transmitter will redeliver", "error", err)
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
