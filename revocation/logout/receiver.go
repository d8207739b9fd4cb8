package logout

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/internal/keyset"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/internal/scope"
)

// Error codes answered in the JSON error body.
const (
	// CodeInvalidRequest: the request or its logout token is invalid
	// (Back-Channel Logout 1.0 §2.8), or a GTR body is malformed.
	CodeInvalidRequest = "invalid_request"
	// CodeInvalidToken: a GTR request's bearer JWT is missing or invalid (401).
	CodeInvalidToken = "invalid_token"
	// CodeAccessDenied: the GTR caller may not revoke for that subject (403).
	CodeAccessDenied = "access_denied"
	// CodeUnsupportedSubject: the GTR subject's format names no token this
	// service can revoke (422).
	CodeUnsupportedSubject = "unsupported_subject"
	// CodeTemporarilyUnavailable: the store failed; send the request again (503).
	CodeTemporarilyUnavailable = "temporarily_unavailable"
)

var knownCodes = map[string]bool{
	CodeInvalidRequest: true, CodeInvalidToken: true, CodeAccessDenied: true,
	CodeUnsupportedSubject: true, CodeTemporarilyUnavailable: true,
}

// ErrorResponse is the JSON error body: the OAuth 2.0 error shape that
// Back-Channel Logout 1.0 §2.8 names.
type ErrorResponse struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// Receiver turns identity-provider logout signals into revocation events:
// OpenID Connect Back-Channel Logout 1.0 logout tokens (BackChannelHandler)
// and Global Token Revocation requests (GTRHandler). It is safe for
// concurrent use.
type Receiver struct {
	cfg      config
	keys     Keys
	own      *keyset.Set     // the key set New built, which Close closes; nil with WithKeys
	issuers  map[string]bool // nil: whatever keys accepts
	audience map[string]bool
	scope    *scope.Scope
	replay   *replay
	obs      Observer
	log      *slog.Logger

	closeOnce sync.Once
}

// New builds a Receiver. It reports every bad option at once. Without
// WithKeys, ctx bounds the initial discovery and JWKS fetches of the
// validator it builds.
func New(ctx context.Context, opts ...Option) (*Receiver, error) {
	cfg := defaultConfig()
	var errs []error
	for i, o := range opts {
		if o == nil {
			errs = append(errs, fmt.Errorf("option %d is nil", i))
			continue
		}
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	sc := scope.New()
	errs = append(errs, sc.AddOptions(cfg.subjectIssuers, cfg.subjectTenants, cfg.emailDomains)...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("logout: invalid options: %w", errors.Join(errs...))
	}
	mp := cfg.meterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	met, err := newMetrics(mp, cfg.observer)
	if err != nil {
		return nil, fmt.Errorf("logout: metrics: %w", err)
	}
	r := &Receiver{
		cfg:      cfg,
		keys:     cfg.keys,
		audience: map[string]bool{},
		scope:    sc,
		replay:   newReplay(cfg.replayMax),
		obs:      met,
		log:      cfg.logger.With("component", "caekit/logout"),
	}
	for _, a := range cfg.audiences {
		r.audience[a] = true
	}
	if len(cfg.issuers) > 0 {
		r.issuers = map[string]bool{}
		for _, iss := range cfg.issuers {
			r.issuers[iss] = true
		}
	}
	if r.keys == nil {
		kc := keyset.Defaults()
		kc.Issuers = cfg.issuers
		for _, iss := range cfg.issuers {
			kc.Discovery = append(kc.Discovery, keyset.Source{URL: iss}) // bound by its discovery document
		}
		kc.Now, kc.Logger, kc.InsecureHTTP = cfg.now, cfg.logger, cfg.insecureHTTP
		ks, err := keyset.New(ctx, kc)
		if err != nil {
			return nil, fmt.Errorf("logout: keys: %w", err)
		}
		r.keys, r.own = ks, ks
	}
	return r, nil
}

// Close stops the key refreshes of the key set New built (none with
// WithKeys: its owner closes it), waits for them, and returns that key
// set's Close error. It is idempotent: later calls return nil.
func (r *Receiver) Close() error {
	var err error
	r.closeOnce.Do(func() {
		if r.own != nil {
			err = r.own.Close()
		}
	})
	return err
}

// verify checks the signature and issuer of raw and the receiver's own
// issuer list.
func (r *Receiver) verify(raw string) (*keyset.Signed, error) {
	s, err := r.keys.VerifySigned(raw)
	if err != nil {
		return nil, err
	}
	if r.issuers != nil && !r.issuers[s.Issuer] {
		return nil, fmt.Errorf("iss %q is not one of the issuers this receiver accepts (WithIssuer)", jose.Clip(s.Issuer))
	}
	return s, nil
}

// store puts one event per key; it fails on the first failure.
func (r *Receiver) store(ctx context.Context, id string, typ revocation.Type, at time.Time, keys []revocation.Key) error {
	for _, k := range keys {
		if err := r.cfg.store.Put(ctx, revocation.Event{ID: id, Type: typ, Subject: k, Time: at}); err != nil {
			return fmt.Errorf("logout: event for %s not stored: %w", k, err)
		}
	}
	return nil
}

// answer writes a JSON error with Cache-Control: no-store, logs it and
// reports it to the observer.
func (r *Receiver) answer(ctx context.Context, w http.ResponseWriter, o Observation, desc string, err error) {
	level := slog.LevelWarn
	if o.Outcome == OutcomeStoreFailed {
		level = slog.LevelError
	}
	r.log.Log(ctx, level, "logout: request refused", "channel", o.Channel, "outcome", o.Outcome.String(), "status", o.Status,
		"code", o.Code, "iss", jose.Clip(o.Issuer), "jti", jose.Clip(o.JTI), "token", o.Hash, "error", err)
	r.obs.Observe(o)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(o.Status)
	_ = json.NewEncoder(w).Encode(ErrorResponse{Error: o.Code, Description: desc})
}

// replay remembers (channel, iss, jti) until a deadline after which the
// token is refused on its own (iat window, exp), bounded in count: when
// full, the oldest entry is forgotten first.
type replay struct {
	mu    sync.Mutex
	max   int
	m     map[replayKey]*list.Element
	order *list.List // front = oldest
}

type replayKey struct{ channel, iss, jti string }

type replayEntry struct {
	key   replayKey
	until time.Time
}

func newReplay(max int) *replay {
	return &replay{max: max, m: map[replayKey]*list.Element{}, order: list.New()}
}

// seen reports whether k is remembered at now.
func (p *replay) seen(k replayKey, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[k]
	if !ok {
		return false
	}
	if !now.Before(e.Value.(*replayEntry).until) {
		p.order.Remove(e)
		delete(p.m, k)
		return false
	}
	return true
}

// add remembers k until until, dropping expired and, when full, oldest entries.
func (p *replay) add(k replayKey, until, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.m[k]; ok {
		e.Value.(*replayEntry).until = until
		return
	}
	for f := p.order.Front(); f != nil && (p.order.Len() >= p.max || !now.Before(f.Value.(*replayEntry).until)); f = p.order.Front() {
		p.order.Remove(f)
		delete(p.m, f.Value.(*replayEntry).key)
	}
	p.m[k] = p.order.PushBack(&replayEntry{key: k, until: until})
}

func (p *replay) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.order.Len()
}
