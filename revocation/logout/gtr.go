package logout

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/ssf"
)

// TypeGTRJWT is the JWS typ of a Global Token Revocation request's bearer
// JWT, as Okta Universal Logout sends it
// (https://developer.okta.com/docs/guides/oin-universal-logout-overview/).
const TypeGTRJWT = "global-token-revocation+jwt"

// GTRRequest is a validated Global Token Revocation request.
type GTRRequest struct {
	// Issuer and JTI are the bearer JWT's iss and jti.
	Issuer, JTI string
	// ExpiresAt is the bearer JWT's exp.
	ExpiresAt time.Time
	// Subject is the sub_id of the body (RFC 9493).
	Subject *ssf.Subject
	// Hash is the bearer JWT's short hash, safe to log.
	Hash string
}

// errReplayed marks a GTR request whose bearer JWT was used before.
var errReplayed = errors.New("replayed")

// gtrError is a refusal with its HTTP status and code.
type gtrError struct {
	status int
	code   string
	desc   string
}

func (e *gtrError) Error() string { return e.code + ": " + e.desc }

func gtrFail(status int, code, format string, args ...any) *gtrError {
	return &gtrError{status: status, code: code, desc: fmt.Sprintf(format, args...)}
}

// GTRHandler serves Global Token Revocation
// (draft-parecki-oauth-global-token-revocation; Okta "Universal Logout"):
// a POST with a JSON body {"sub_id": {...}}, an RFC 9493 subject
// identifier (ssf.ParseSubject), authenticated as Okta does it: an
// Authorization: Bearer JWT with typ global-token-revocation+jwt, signed
// with a key bound to its issuer, aud equal to WithGTREndpoint, a short
// exp (WithMaxGTRLifetime), iat, and a jti not seen before.
//
// The event (revocation.TypeRefreshTokensRevoked), dated at the request's
// arrival, revokes every token of the subject issued at or before that
// second: iss_sub and opaque subjects of the JWT's own issuer (or of
// WithSubjectIssuers), email subjects of WithEmailDomains. Answers, as the
// draft defines them:
//
//   - 204 once stored;
//   - 400 for a malformed request (body, Content-Type, sub_id);
//   - 401 with WWW-Authenticate when the bearer JWT is missing or invalid
//     (replayed included);
//   - 403 when the caller may not revoke for that subject (another issuer,
//     a tenant or an e-mail domain it is not trusted for);
//   - 422 when the subject's format names no token caekit can revoke
//     (phone_number, ip-addresses, ...);
//   - 503 with Retry-After when the store failed: not acknowledged.
//
// 404 ("subject not found") is never answered: caekit keeps no user
// directory, so it cannot know that a subject has no tokens, and revoking a
// subject without tokens costs one store entry and no harm; answering 404
// would also tell the caller which accounts exist.
func (r *Receiver) GTRHandler() http.Handler { return http.HandlerFunc(r.serveGTR) }

func (r *Receiver) serveGTR(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	o := Observation{Channel: ChannelGTR, Outcome: OutcomeRejected}
	if r.cfg.gtrEndpoint == "" {
		o.Status, o.Code = http.StatusNotFound, CodeInvalidRequest
		r.answer(ctx, w, o, "global token revocation is not configured (WithGTREndpoint)", nil)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		o.Status, o.Code = http.StatusMethodNotAllowed, CodeInvalidRequest
		r.answer(ctx, w, o, "global token revocation requests are sent with POST", nil)
		return
	}
	now := r.cfg.now()
	g, err := r.parseGTR(w, req, now, &o)
	if err != nil {
		var ge *gtrError
		if !errors.As(err, &ge) {
			ge = gtrFail(http.StatusBadRequest, CodeInvalidRequest, "%v", err)
		}
		o.Status, o.Code = ge.status, ge.code
		if ge.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
		if errors.Is(err, errReplayed) {
			o.Outcome = OutcomeReplayed
		}
		r.answer(ctx, w, o, ge.desc, err)
		return
	}
	if err := r.store(ctx, g.JTI, revocation.TypeRefreshTokensRevoked, now, o.Keys); err != nil {
		o.Outcome, o.Status, o.Code = OutcomeStoreFailed, http.StatusServiceUnavailable, CodeTemporarilyUnavailable
		w.Header().Set("Retry-After", "5")
		r.answer(ctx, w, o, "the revocation could not be recorded; send it again", err)
		return
	}
	r.replay.add(replayKey{ChannelGTR, g.Issuer, g.JTI}, g.ExpiresAt.Add(r.cfg.leeway), now)
	o.Outcome, o.Status = OutcomeStored, http.StatusNoContent
	o.Event = revocation.Event{ID: g.JTI, Type: revocation.TypeRefreshTokensRevoked, Subject: o.Keys[0], Time: now}
	r.log.InfoContext(ctx, "logout: global token revocation stored", "iss", jose.Clip(g.Issuer), "jti", jose.Clip(g.JTI), "token", g.Hash,
		"subject", jose.Clip(g.Subject.String()), "keys", len(o.Keys), "event_time", now.UTC().Format(time.RFC3339))
	r.obs.Observe(o)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// parseGTR authenticates and parses a request, filling o as it learns.
func (r *Receiver) parseGTR(w http.ResponseWriter, req *http.Request, now time.Time, o *Observation) (*GTRRequest, error) {
	scheme, raw, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return nil, gtrFail(http.StatusUnauthorized, CodeInvalidToken, "an Authorization: Bearer JWT (typ %s) is required", TypeGTRJWT)
	}
	raw = strings.TrimSpace(raw)
	o.Hash = jose.Hash(raw)
	g, err := r.gtrJWT(raw, now)
	if err != nil {
		return nil, gtrFail(http.StatusUnauthorized, CodeInvalidToken, "invalid bearer JWT: %v", err)
	}
	o.Issuer, o.JTI = g.Issuer, g.JTI
	if r.replay.seen(replayKey{ChannelGTR, g.Issuer, g.JTI}, now) {
		e := gtrFail(http.StatusUnauthorized, CodeInvalidToken, "the bearer JWT jti %q from %q was used before", jose.Clip(g.JTI), jose.Clip(g.Issuer))
		return nil, fmt.Errorf("%w: %w", errReplayed, e)
	}

	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, fmt.Errorf("Content-Type is %q, expected application/json", jose.Clip(req.Header.Get("Content-Type")))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("body exceeds %d bytes", r.cfg.maxBody)
		}
		return nil, errors.New("could not read the body")
	}
	if err := jose.CheckJSON(body); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return nil, errors.New("body is not a JSON object")
	}
	sub, ok := doc["sub_id"]
	if !ok {
		return nil, errors.New("body has no sub_id")
	}
	if g.Subject, err = ssf.ParseSubject(sub); err != nil {
		return nil, fmt.Errorf("sub_id: %w", err)
	}
	keys, err := ssf.DefaultMapper{TokenIssuer: g.Issuer}.MapSubject(nil, g.Subject)
	if err != nil {
		return nil, gtrFail(http.StatusUnprocessableEntity, CodeUnsupportedSubject, "sub_id %s: %v", jose.Clip(g.Subject.String()), err)
	}
	valid := keys[:0:0]
	for _, k := range keys {
		if k.Valid() {
			valid = append(valid, k)
		}
	}
	if len(valid) == 0 {
		return nil, gtrFail(http.StatusUnprocessableEntity, CodeUnsupportedSubject,
			"sub_id format %q names no token this service can revoke (use iss_sub, opaque, email or account)", jose.Clip(g.Subject.Format))
	}
	// The caller's own users need no allow-list; any other issuer, tenant
	// or e-mail domain must be in the scope (WithSubjectIssuers, ...).
	var others []revocation.Key
	for _, k := range valid {
		if k.Scope == g.Issuer && k.Kind != revocation.KindObject && k.Kind != revocation.KindEmail {
			continue
		}
		others = append(others, k)
	}
	if err := r.scope.Check(jose.Clip(g.Subject.String()), g.Issuer, others); err != nil {
		return nil, gtrFail(http.StatusForbidden, CodeAccessDenied, "%v", err)
	}
	o.Keys = valid
	return g, nil
}

// gtrJWT validates the bearer JWT of a GTR request.
func (r *Receiver) gtrJWT(raw string, now time.Time) (*GTRRequest, error) {
	s, err := r.verify(raw)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(s.Typ, TypeGTRJWT) && !strings.EqualFold(s.Typ, "application/"+TypeGTRJWT) {
		return nil, fmt.Errorf("typ %q, expected %q", jose.Clip(s.Typ), TypeGTRJWT)
	}
	c := s.Claims
	aud, err := audience(c)
	if err != nil {
		return nil, err
	}
	ok := false
	for _, a := range aud {
		ok = ok || a == r.cfg.gtrEndpoint
	}
	if !ok {
		return nil, fmt.Errorf("aud %q is not this endpoint %q", jose.Clip(strings.Join(aud, " ")), r.cfg.gtrEndpoint)
	}
	exp, has, err := jose.ClaimTime(c, "exp")
	switch {
	case err != nil:
		return nil, err
	case !has:
		return nil, errors.New("required claim exp is missing")
	case !now.Before(exp.Add(r.cfg.leeway)):
		return nil, fmt.Errorf("exp %s is past (now %s, leeway %s)", exp.Format(time.RFC3339), now.UTC().Format(time.RFC3339), r.cfg.leeway)
	case exp.Sub(now) > r.cfg.maxGTRLifetime+r.cfg.leeway:
		return nil, fmt.Errorf("exp %s is more than %s ahead: the JWT must be short-lived (WithMaxGTRLifetime)", exp.Format(time.RFC3339), r.cfg.maxGTRLifetime)
	}
	iat, err := r.issuedAt(c, now)
	switch {
	case err != nil:
		return nil, err
	case exp.Sub(iat) > r.cfg.maxGTRLifetime:
		return nil, fmt.Errorf("exp - iat is %s, more than %s (WithMaxGTRLifetime)", exp.Sub(iat), r.cfg.maxGTRLifetime)
	}
	jti, err := nonEmpty(c, "jti")
	if err != nil {
		return nil, err
	}
	if jti == "" {
		return nil, errors.New("required claim jti is missing: without it a captured request could be replayed")
	}
	return &GTRRequest{Issuer: s.Issuer, JTI: jti, ExpiresAt: exp, Hash: s.Hash}, nil
}
