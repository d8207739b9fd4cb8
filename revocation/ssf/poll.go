package ssf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/caekit/caekit/internal/backoff"
	"github.com/caekit/caekit/internal/jose"
)

// Poll defaults.
const (
	DefaultPollMaxEvents      = 100                    // maxEvents asked for per request
	DefaultPollMaxResponse    = 16 << 20               // bytes of one poll response
	DefaultPollRequestTimeout = 2 * time.Minute        // bound of one (long-)poll request
	DefaultPollMinBackoff     = 500 * time.Millisecond // first wait after a failed poll
	DefaultPollMaxBackoff     = time.Minute            // longest wait after failed polls
	DefaultPollInterval       = 5 * time.Second        // wait between empty short polls
)

// PollOption configures a Poller.
type PollOption func(*Poller)

// WithPollAuthorization sets the Authorization header sent to the poll endpoint.
func WithPollAuthorization(header string) PollOption { return func(p *Poller) { p.auth = header } }

// WithPollHTTPClient sets the HTTP client. Its Timeout, if any, must exceed
// the transmitter's long-poll hold; WithPollRequestTimeout bounds each request.
func WithPollHTTPClient(hc *http.Client) PollOption { return func(p *Poller) { p.hc = hc } }

// WithPollMaxEvents sets maxEvents per request. Default DefaultPollMaxEvents.
func WithPollMaxEvents(n int) PollOption { return func(p *Poller) { p.maxEvents = n } }

// WithReturnImmediately asks the transmitter not to hold the request open
// (short polling); the Poller then waits interval between empty polls.
func WithReturnImmediately(interval time.Duration) PollOption {
	return func(p *Poller) { p.returnImmediately, p.interval = true, interval }
}

// WithPollRequestTimeout bounds one poll request. Default DefaultPollRequestTimeout.
func WithPollRequestTimeout(d time.Duration) PollOption { return func(p *Poller) { p.timeout = d } }

// WithPollBackoff sets the exponential backoff bounds after a failed poll.
func WithPollBackoff(min, max time.Duration) PollOption {
	return func(p *Poller) { p.minBackoff, p.maxBackoff = min, max }
}

// WithPollMaxResponseSize bounds a poll response. Default DefaultPollMaxResponse.
func WithPollMaxResponseSize(n int64) PollOption { return func(p *Poller) { p.maxResp = n } }

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
	setErrs map[string]ErrorResponse
}

// NewPoller returns a Poller for the transmitter's poll endpoint (the
// stream's delivery endpoint_url).
func NewPoller(r *Receiver, endpoint string, opts ...PollOption) (*Poller, error) {
	p := &Poller{
		r: r, endpoint: endpoint, hc: &http.Client{},
		maxEvents: DefaultPollMaxEvents, interval: DefaultPollInterval, timeout: DefaultPollRequestTimeout,
		minBackoff: DefaultPollMinBackoff, maxBackoff: DefaultPollMaxBackoff, maxResp: DefaultPollMaxResponse,
		setErrs: map[string]ErrorResponse{},
	}
	if r != nil {
		p.log = r.cfg.logger
	}
	for _, o := range opts {
		o(p)
	}
	switch {
	case r == nil || endpoint == "" || p.hc == nil:
		return nil, fmt.Errorf("ssf: poller needs a receiver, an endpoint and an HTTP client (receiver nil: %t, endpoint empty: %t, HTTP client nil: %t)",
			r == nil, endpoint == "", p.hc == nil)
	case p.maxEvents < 0 || p.maxResp <= 0 || p.timeout <= 0:
		return nil, fmt.Errorf("ssf: poller bounds must be positive (max events %d, max response %d, request timeout %v)",
			p.maxEvents, p.maxResp, p.timeout)
	case p.minBackoff <= 0 || p.maxBackoff < p.minBackoff || p.interval < 0:
		return nil, fmt.Errorf("ssf: invalid poller backoff %v..%v or interval %v (backoff must be positive and ordered, interval not negative)",
			p.minBackoff, p.maxBackoff, p.interval)
	}
	// https, or plain http on loopback or with the Receiver's
	// WithInsecureHTTP; redirects likewise, and never to another origin
	// while an Authorization header rides along.
	if err := jose.CheckURL(endpoint, r.cfg.insecureHTTP, insecureOption); err != nil {
		return nil, fmt.Errorf("ssf: poll endpoint: %w", err)
	}
	p.hc = guardedClient(p.hc, r.cfg.insecureHTTP, p.auth != "")
	return p, nil
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
	SetErrs           map[string]ErrorResponse `json:"setErrs,omitempty"`
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
	if err := doJSON(rctx, p.hc, http.MethodPost, p.endpoint, p.auth, body, &out, p.maxResp); err != nil {
		return res, fmt.Errorf("ssf: poll: %w", err)
	}
	// Delivered: the transmitter has our acknowledgements and errors.
	p.ack = nil
	p.setErrs = map[string]ErrorResponse{}
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
			p.setErrs[jti] = ErrorResponse{Err: CodeInvalidRequest, Description: "SET is not a JSON string"}
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
			p.setErrs[jti] = ErrorResponse{Err: se.Code, Description: se.Description}
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
