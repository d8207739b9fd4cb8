package receiver

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/internal/setjson"
	"github.com/caekit/caekit/revocation/ssf/internal/ssfhttp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.opentelemetry.io/otel"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/revocation"
)

// Receiver validates SETs from one transmitter and stores their events. It is
// an http.Handler for RFC 8935 push delivery; Poller drives it for RFC 8936
// poll delivery. It is safe for concurrent use. Close it to stop the JWKS
// refresh.
type Receiver struct {
	cfg      config
	algs     map[string]bool
	keyfunc  func(ctx context.Context, t *jwt.Token) (any, error)
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the JWKS refresher
	dedup    *dedup
	states   *stateSet
	critical map[string]bool
	tc       *ssf.TransmitterConfiguration
	met      *metrics
	scope    *subjectScope
}

// Result says what became of an accepted SET.
type Result struct {
	// JTI is the SET's jti.
	JTI string
	// EventType is the event-type URI.
	EventType string
	// Outcome is OutcomeStored, OutcomeRecorded, OutcomeUnmapped or
	// OutcomeUnknownType for the first delivery; a redelivery returns the
	// first delivery's Result with Duplicate set.
	Outcome Outcome
	// Type is the revocation type, TypeUnknown for events that do not revoke.
	Type revocation.Type
	// Keys are the subject Keys stored (OutcomeStored).
	Keys []revocation.Key
	// Duplicate is true when the SET had been accepted before.
	Duplicate bool
}

// New returns a Receiver. WithIssuer, WithAudience and WithStore are
// required. Unless keys are configured directly (WithJWKSURL, WithJWKS,
// WithKeySet, WithPublicKey), New fetches the transmitter's
// /.well-known/ssf-configuration from the issuer, within ctx, and uses its
// jwks_uri and critical_subject_members. ctx bounds that initialisation
// only: the Receiver's background JWKS refresh lives until Close.
//
// Every bad option is reported, joined with errors.Join: nil options,
// missing required ones, bad values, and options of NewPoller.
func New(ctx context.Context, opts ...Option) (*Receiver, error) {
	cfg := defaultConfig()
	cfg.apply(opts)
	if cfg.mapper == nil {
		cfg.mapper = ssf.DefaultMapper{}
	}
	sc, scopeErr := newScope(&cfg)
	if err := errors.Join(cfg.validate(), scopeErr); err != nil {
		return nil, fmt.Errorf("ssf receiver: %w", err)
	}
	if cfg.dedupTTL <= 0 {
		cfg.dedupTTL = cfg.iatPast + cfg.iatFuture
	}
	if cfg.observer == nil {
		cfg.observer = nopObserver{}
	}
	if cfg.meterProvider == nil {
		cfg.meterProvider = otel.GetMeterProvider()
	}
	met, err := newMetrics(cfg.meterProvider, cfg.observer)
	if err != nil {
		return nil, fmt.Errorf("ssf: metrics: %w", err)
	}
	cfg.observer = met
	r := &Receiver{
		scope:    sc,
		cfg:      cfg,
		algs:     map[string]bool{"RS256": true},
		dedup:    newDedup(cfg.dedupMax, cfg.dedupTTL, cfg.now),
		states:   &stateSet{ttl: cfg.stateTTL, now: cfg.now, m: map[string]time.Time{}},
		critical: map[string]bool{},
		met:      met,
	}
	for _, a := range cfg.algorithms {
		r.algs[a] = true
	}
	for _, m := range cfg.criticalMembers {
		r.critical[m] = true
	}
	// Every fetch (configuration, JWKS) and every redirect it follows is
	// https, or plain http on loopback or with WithInsecureHTTP.
	r.cfg.httpClient = ssfhttp.Guard(cfg.httpClient, cfg.insecureHTTP, false)
	jwksURL := cfg.jwksURL
	direct := cfg.jwksURL != "" || cfg.jwksJSON != nil || cfg.keySet != nil || cfg.staticKeys != nil
	if !direct {
		tc, err := ssfhttp.FetchConfiguration(ctx, limitedClient(r.cfg.httpClient, cfg.maxMetadata), cfg.issuer, cfg.insecureHTTP)
		if err != nil {
			return nil, err
		}
		if tc.JWKSURI == "" {
			return nil, fmt.Errorf("ssf: transmitter %s publishes no jwks_uri", cfg.issuer)
		}
		r.tc = tc
		jwksURL = tc.JWKSURI
		for _, m := range tc.CriticalSubjectMembers {
			r.critical[m] = true
		}
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if err := r.buildKeys(jwksURL); err != nil {
		r.cancel()
		return nil, err
	}
	return r, nil
}

// Close stops the background JWKS refresh and waits for it to end. It is
// safe to call more than once.
func (r *Receiver) Close() error {
	r.cancel()
	r.wg.Wait()
	return nil
}

// ExpectState registers the state of a verification request, so that the
// verification event that answers it is accepted. States expire after 15
// minutes; at most 64 are held.
func (r *Receiver) ExpectState(state string) { r.states.add(state) }

// Receive validates one compact SET, stores its event and reports what
// became of it. It returns an *Error (with an RFC 8935 code) when the SET is
// refused, an error wrapping ErrKeysUnavailable when no key to check its
// signature could be obtained, and an error wrapping ErrStore when the store
// failed: in those two cases the SET is not remembered and must not be
// acknowledged. A SET accepted before is answered with the first Result and
// Duplicate set, without storing again.
func (r *Receiver) Receive(ctx context.Context, raw []byte) (*Result, error) {
	return r.ReceiveVia(ctx, "", raw)
}

// ReceiveVia is Receive with the delivery method ("push", "poll", "grpc")
// named in the Observation and logs.
func (r *Receiver) ReceiveVia(ctx context.Context, delivery string, raw []byte) (*Result, error) {
	set, err := r.parse(ctx, raw)
	if errors.Is(err, ErrKeysUnavailable) {
		r.cfg.logger.WarnContext(ctx, "ssf: signing key unavailable; SET not acknowledged, the transmitter must deliver it again",
			"delivery", delivery, "outcome", OutcomeKeysUnavailable.String(), "set", jose.Hash(raw), "error", err)
		r.cfg.observer.Observe(Observation{Delivery: delivery, Outcome: OutcomeKeysUnavailable})
		return nil, err
	}
	if err != nil {
		r.rejected(ctx, delivery, set, "", err)
		return nil, err
	}
	log := r.cfg.logger.With("delivery", delivery, "iss", set.Issuer, "jti", set.JTI, "event_type", set.EventType, "set", set.Hash)
	if prev, ok := r.dedup.get(set.Issuer, set.JTI); ok {
		res := *prev
		res.Duplicate = true
		log.DebugContext(ctx, "ssf: duplicate SET acknowledged again", "outcome", OutcomeDuplicate.String())
		r.cfg.observer.Observe(Observation{Delivery: delivery, EventType: set.EventType, Type: res.Type, JTI: set.JTI, Outcome: OutcomeDuplicate, SET: set})
		return &res, nil
	}

	res := &Result{JTI: set.JTI, EventType: set.EventType}
	cls := ssf.Classify(set.EventType, set.Event)
	switch {
	case !cls.Known:
		res.Outcome = OutcomeUnknownType
		log.InfoContext(ctx, "ssf: unknown event type acknowledged", "outcome", OutcomeUnknownType.String())
	case set.EventType == ssf.SSFVerification:
		state, _ := setjson.String(set.Event, "state")
		if state != "" && !r.stateOK(ctx, state) {
			err := reject(CodeInvalidState, "verification state does not match any state this receiver requested")
			r.rejected(ctx, delivery, set, set.JTI, err)
			return nil, err
		}
		res.Outcome = OutcomeRecorded
		log.InfoContext(ctx, "ssf: stream verification received", "outcome", OutcomeRecorded.String(), "state_present", state != "")
	case !cls.Revokes():
		res.Outcome = OutcomeRecorded
		log.InfoContext(ctx, "ssf: event recorded", "outcome", OutcomeRecorded.String(), "note", cls.Note, "subject", set.Subject.String())
	default:
		res.Type = cls.Type
		if set.Subject == nil {
			err := reject(CodeInvalidRequest, "event %s has no subject: sub_id is missing", set.EventType)
			r.rejected(ctx, delivery, set, set.JTI, err)
			return nil, err
		}
		keys, why := r.mapKeys(set)
		if len(keys) == 0 {
			res.Outcome = OutcomeUnmapped
			log.WarnContext(ctx, "ssf: event acknowledged but not enforced: subject maps onto no key",
				"outcome", OutcomeUnmapped.String(), "subject", set.Subject.String(), "reason", why, "type", cls.Type.String())
			break
		}
		if err := r.scope.check(set, keys); err != nil {
			r.rejected(ctx, delivery, set, set.JTI, err)
			return nil, err
		}
		for _, k := range keys {
			ev := revocation.Event{ID: set.JTI, Type: cls.Type, Subject: k, Time: set.EventTime}
			if err := r.cfg.store.Put(ctx, ev); err != nil {
				if errors.Is(err, revocation.ErrFutureEvent) {
					// Permanent: delivering it again cannot help, and a 503
					// would have the transmitter retry it forever.
					rej := reject(CodeInvalidRequest, "event time %s is more than %v ahead of this receiver's clock",
						set.EventTime.UTC().Format(time.RFC3339), revocation.MaxFutureSkew)
					r.rejected(ctx, delivery, set, set.JTI, rej)
					return nil, rej
				}
				log.ErrorContext(ctx, "ssf: event not stored; not acknowledged", "outcome", OutcomeStoreFailed.String(), "key", k.String(), "error", err)
				r.cfg.observer.Observe(Observation{Delivery: delivery, EventType: set.EventType, Type: cls.Type, JTI: set.JTI, Outcome: OutcomeStoreFailed, Keys: keys})
				return nil, fmt.Errorf("%w: jti %q key %s: %w", ErrStore, set.JTI, k, err)
			}
		}
		res.Outcome, res.Keys = OutcomeStored, keys
		log.InfoContext(ctx, "ssf: event stored", "outcome", OutcomeStored.String(), "type", cls.Type.String(), "keys", len(keys),
			"event_time", set.EventTime.UTC().Format(time.RFC3339))
	}
	r.dedup.add(set.Issuer, set.JTI, res)
	r.cfg.observer.Observe(Observation{Delivery: delivery, EventType: set.EventType, Type: res.Type, JTI: set.JTI, Outcome: res.Outcome, Keys: res.Keys, SET: set})
	out := *res
	return &out, nil
}

func (r *Receiver) mapKeys(set *ssf.SET) ([]revocation.Key, string) {
	if s := set.Subject; s.Format == "complex" {
		for _, m := range s.Unknown {
			if r.critical[m] {
				return nil, "critical subject member " + m + " is not supported"
			}
		}
		if s.OrgUnit != nil && r.critical["org_unit"] {
			return nil, "critical subject member org_unit is not supported"
		}
		if s.Group != nil && r.critical["group"] {
			return nil, "critical subject member group is not supported"
		}
	}
	keys, err := r.cfg.mapper.MapSubject(set, set.Subject)
	if err != nil {
		return nil, err.Error()
	}
	valid := keys[:0:0]
	for _, k := range keys {
		if k.Valid() {
			if !slices.Contains(valid, k) {
				valid = append(valid, k)
			}
		}
	}
	if len(valid) == 0 {
		return nil, "no mapping for subject format " + set.Subject.Format
	}
	return valid, ""
}

func (r *Receiver) stateOK(ctx context.Context, state string) bool {
	if r.states.has(state) {
		return true
	}
	return r.cfg.stateFunc != nil && r.cfg.stateFunc(ctx, state)
}

func (r *Receiver) rejected(ctx context.Context, delivery string, set *ssf.SET, jti string, err error) {
	code := codeOf(err)
	et := ""
	hash := ""
	if set != nil {
		et, hash = set.EventType, set.Hash
	}
	r.cfg.logger.WarnContext(ctx, "ssf: SET rejected", "delivery", delivery, "outcome", OutcomeRejected.String(), "code", code, "jti", jti,
		"event_type", et, "set", hash, "error", err)
	r.cfg.observer.Observe(Observation{Delivery: delivery, EventType: et, JTI: jti, Outcome: OutcomeRejected, Code: code})
}

// dedup remembers accepted SETs by (iss, jti), bounded in count and time.
type dedup struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	m     map[dedupKey]*list.Element
	order *list.List // front = oldest
}

type dedupKey struct{ iss, jti string }

type dedupEntry struct {
	key     dedupKey
	res     Result
	expires time.Time
}

func newDedup(max int, ttl time.Duration, now func() time.Time) *dedup {
	return &dedup{max: max, ttl: ttl, now: now, m: map[dedupKey]*list.Element{}, order: list.New()}
}

func (d *dedup) get(iss, jti string) (*Result, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.m[dedupKey{iss, jti}]
	if !ok {
		return nil, false
	}
	ent := e.Value.(*dedupEntry)
	if d.now().After(ent.expires) {
		d.order.Remove(e)
		delete(d.m, ent.key)
		return nil, false
	}
	res := ent.res
	return &res, true
}

func (d *dedup) add(iss, jti string, res *Result) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := dedupKey{iss, jti}
	now := d.now()
	if e, ok := d.m[k]; ok {
		d.order.Remove(e)
		delete(d.m, k)
	}
	for f := d.order.Front(); f != nil; f = d.order.Front() {
		ent := f.Value.(*dedupEntry)
		if len(d.m) < d.max && !now.After(ent.expires) {
			break
		}
		d.order.Remove(f)
		delete(d.m, ent.key)
	}
	d.m[k] = d.order.PushBack(&dedupEntry{key: k, res: *res, expires: now.Add(d.ttl)})
}

func (d *dedup) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.m)
}

// stateSet holds the states of outstanding verification requests.
type stateSet struct {
	mu  sync.Mutex
	ttl time.Duration
	now func() time.Time
	m   map[string]time.Time
}

const maxStates = 64

func (s *stateSet) add(state string) {
	if state == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, exp := range s.m {
		if now.After(exp) {
			delete(s.m, k)
		}
	}
	if len(s.m) >= maxStates {
		var oldest string
		var t time.Time
		for k, exp := range s.m {
			if oldest == "" || exp.Before(t) {
				oldest, t = k, exp
			}
		}
		delete(s.m, oldest)
	}
	s.m[state] = now.Add(s.ttl)
}

func (s *stateSet) has(state string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.m[state]
	return ok && !s.now().After(exp)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// validate reports every bad option of New, joined.
func (c *config) validate() error {
	errs := c.common(c.forPoller, "NewPoller, not New")
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.issuer == "" {
		bad("WithIssuer is required")
	}
	if len(c.audiences) == 0 {
		bad("WithAudience is required")
	}
	for _, a := range c.audiences {
		if a == "" {
			bad("WithAudience: empty audience")
		}
	}
	if c.store == nil {
		bad("WithStore is required (and must not be nil)")
	}
	if c.now == nil {
		bad("WithClock: nil clock")
	}
	if c.iatPast <= 0 || c.iatFuture < 0 {
		bad("invalid iat window %v/%v (past must be positive, future not negative)", c.iatPast, c.iatFuture)
	}
	if c.maxBody <= 0 || c.maxMetadata <= 0 || c.dedupMax <= 0 {
		bad("size and dedup bounds must be positive (body %d, metadata %d, dedup %d)", c.maxBody, c.maxMetadata, c.dedupMax)
	}
	if c.jwksURL != "" {
		if err := jose.CheckURL(c.jwksURL, c.insecureHTTP, ssfhttp.InsecureOption); err != nil {
			bad("WithJWKSURL: %v", err)
		}
	}
	if c.jwksRefresh <= 0 || c.unknownKID <= 0 {
		bad("JWKS refresh intervals must be positive (refresh %v, unknown-kid %v)", c.jwksRefresh, c.unknownKID)
	}
	for _, a := range c.algorithms {
		if strings.EqualFold(a, "none") || strings.HasPrefix(strings.ToUpper(a), "HS") {
			bad("WithAlgorithms: algorithm %q is never accepted", a)
		} else if jwt.GetSigningMethod(a) == nil {
			bad("WithAlgorithms: unknown algorithm %q", a)
		}
	}
	return errors.Join(errs...)
}
