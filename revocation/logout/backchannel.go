package logout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/internal/keyset"
	"github.com/caekit/caekit/revocation"
)

// EventBackChannelLogout is the member of a logout token's events claim
// (OpenID Connect Back-Channel Logout 1.0 §2.4).
const EventBackChannelLogout = "http://schemas.openid.net/event/backchannel-logout"

// LogoutToken is a validated logout token.
type LogoutToken struct {
	// Issuer, Subject, SessionID and JTI are the iss, sub, sid and jti
	// claims; at least one of Subject and SessionID is set.
	Issuer, Subject, SessionID, JTI string
	// IssuedAt is the iat claim; the event is dated there.
	IssuedAt time.Time
	// ExpiresAt is the exp claim, zero when absent (Keycloak omits it).
	ExpiresAt time.Time
	// Hash is the token's short hash, safe to log.
	Hash string
}

// Keys returns the subject Keys the logout revokes: the session when sid is
// present (§2.7: the RP logs out that session), else every token of the
// user at that issuer.
func (t *LogoutToken) Keys() []revocation.Key {
	if t.SessionID != "" {
		return []revocation.Key{revocation.SessionKey(t.Issuer, t.SessionID)}
	}
	return []revocation.Key{revocation.IssuerSubjectKey(t.Issuer, t.Subject)}
}

// ParseLogoutToken validates raw, a logout token, by OpenID Connect
// Back-Channel Logout 1.0 §2.6 (https://openid.net/specs/openid-connect-backchannel-1_0.html#Validation):
// the signature with a key bound to its issuer (WithKeys/WithIssuer; the
// access tokens' size limit, algorithm allow-list and strict JSON), iss,
// aud containing one of WithAudience, iat present and in the window, exp
// not past when present, jti present, events holding the
// back-channel-logout member as a JSON object, sid and/or sub, no nonce,
// and typ absent, "JWT" or "logout+jwt" (§2.4 recommends explicit typing),
// so that an access token (at+jwt) or a SET (secevent+jwt) is never taken
// for a logout token; Keycloak sends "JWT" (github.com/keycloak/keycloak/issues/28939).
// It does not consult the replay memory. Errors say what was wrong and
// never contain the token.
//
// exp: errata set 1 of the specification (December 2023) made exp
// REQUIRED, but logout tokens without it are still sent (Keycloak until
// keycloak/keycloak#25753 was fixed in December 2023; authentik before 2025.8.2,
// goauthentik/authentik#16490; Ory Hydra, ory/hydra#4035), so its absence
// is tolerated: the iat window (WithIATWindow) and the jti replay memory
// bound such a token's use instead.
func (r *Receiver) ParseLogoutToken(raw string) (*LogoutToken, error) {
	s, err := r.verify(raw)
	if err != nil {
		return nil, err
	}
	return r.logoutClaims(s)
}

func (r *Receiver) logoutClaims(s *keyset.Signed) (*LogoutToken, error) {
	switch strings.ToLower(s.Typ) {
	case "", "jwt", "logout+jwt", "application/logout+jwt":
	default:
		return nil, fmt.Errorf("typ %q is not a logout token type (want logout+jwt, JWT or none)", jose.Clip(s.Typ))
	}
	c := s.Claims
	t := &LogoutToken{Issuer: s.Issuer, Hash: s.Hash}
	aud, err := audience(c)
	if err != nil {
		return nil, err
	}
	ok := false
	for _, a := range aud {
		ok = ok || r.audience[a]
	}
	if !ok {
		return nil, fmt.Errorf("aud %q does not name this relying party (WithAudience)", jose.Clip(strings.Join(aud, " ")))
	}
	now := r.cfg.now()
	iat, err := r.issuedAt(c, now)
	switch {
	case err != nil:
		return nil, err
	case iat.Before(now.Add(-r.cfg.iatPast)):
		return nil, fmt.Errorf("iat %s is more than %s before now %s (WithIATWindow)", iat.Format(time.RFC3339), r.cfg.iatPast, now.UTC().Format(time.RFC3339))
	}
	t.IssuedAt = iat
	var has bool
	if t.ExpiresAt, has, err = jose.ClaimTime(c, "exp"); err != nil {
		return nil, err
	} else if has && !now.Before(t.ExpiresAt.Add(r.cfg.leeway)) {
		return nil, fmt.Errorf("exp %s is past (now %s, leeway %s)", t.ExpiresAt.Format(time.RFC3339), now.UTC().Format(time.RFC3339), r.cfg.leeway)
	}
	if t.JTI, err = nonEmpty(c, "jti"); err != nil {
		return nil, err
	}
	if t.JTI == "" {
		return nil, errors.New("required claim jti is missing")
	}
	ev, ok := c["events"]
	if !ok {
		return nil, errors.New("required claim events is missing")
	}
	var events map[string]json.RawMessage
	if err := json.Unmarshal(ev, &events); err != nil || events == nil {
		return nil, errors.New("claim events is not a JSON object")
	}
	member, ok := events[EventBackChannelLogout]
	if !ok {
		return nil, fmt.Errorf("claim events has no member %s", EventBackChannelLogout)
	}
	if m := bytes.TrimSpace(member); len(m) == 0 || m[0] != '{' {
		return nil, fmt.Errorf("events member %s is not a JSON object", EventBackChannelLogout)
	}
	if t.SessionID, err = nonEmpty(c, "sid"); err != nil {
		return nil, err
	}
	if t.Subject, err = nonEmpty(c, "sub"); err != nil {
		return nil, err
	}
	if t.SessionID == "" && t.Subject == "" {
		return nil, errors.New("neither sid nor sub is present: a logout token must name a session or a user")
	}
	if _, ok := c["nonce"]; ok {
		return nil, errors.New("a nonce claim is present: logout tokens must not have one (it marks an ID token)")
	}
	return t, nil
}

// BackChannelHandler serves OpenID Connect Back-Channel Logout 1.0
// (https://openid.net/specs/openid-connect-backchannel-1_0.html): a POST
// with application/x-www-form-urlencoded logout_token=<JWT> (§2.5),
// validated by ParseLogoutToken, refused when its (iss, jti) was accepted
// before. The event, dated at the token's iat, revokes the session named by
// sid, or else every token of the user (iss, sub).
//
// Answers (§2.8): 200 with Cache-Control: no-store once the event is
// stored; 400 with a JSON error and error_description for any invalid
// request or token; 405 for another method; 503 with Retry-After only when
// the store failed, so the IdP may send it again: an event not stored is
// never acknowledged and its jti is not remembered.
func (r *Receiver) BackChannelHandler() http.Handler {
	return http.HandlerFunc(r.serveBackChannel)
}

func (r *Receiver) serveBackChannel(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	o := Observation{Channel: ChannelBackChannelLogout, Outcome: OutcomeRejected, Status: http.StatusBadRequest, Code: CodeInvalidRequest}
	if len(r.audience) == 0 {
		o.Status, o.Code = http.StatusNotFound, CodeInvalidRequest
		r.answer(ctx, w, o, "back-channel logout is not configured (WithAudience)", nil)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		o.Status = http.StatusMethodNotAllowed
		r.answer(ctx, w, o, "logout tokens are delivered with POST", nil)
		return
	}
	raw, desc := r.formToken(w, req)
	if desc != "" {
		r.answer(ctx, w, o, desc, nil)
		return
	}
	o.Hash = jose.Hash(raw)
	lt, err := r.ParseLogoutToken(raw)
	if err != nil {
		r.answer(ctx, w, o, "invalid logout token: "+err.Error(), err)
		return
	}
	o.Issuer, o.JTI = lt.Issuer, lt.JTI
	now := r.cfg.now()
	rk := replayKey{ChannelBackChannelLogout, lt.Issuer, lt.JTI}
	if r.replay.seen(rk, now) {
		o.Outcome = OutcomeReplayed
		r.answer(ctx, w, o, fmt.Sprintf("logout token jti %q from %q was received before", jose.Clip(lt.JTI), jose.Clip(lt.Issuer)), nil)
		return
	}
	keys := lt.Keys()
	o.Keys = keys
	if err := r.store(ctx, lt.JTI, revocation.TypeSessionRevoked, lt.IssuedAt, keys); err != nil {
		o.Outcome, o.Status, o.Code = OutcomeStoreFailed, http.StatusServiceUnavailable, CodeTemporarilyUnavailable
		w.Header().Set("Retry-After", "5")
		r.answer(ctx, w, o, "the logout could not be recorded; send it again", err)
		return
	}
	// Remembered until the token's iat leaves the window: then it is refused anyway.
	r.replay.add(rk, lt.IssuedAt.Add(r.cfg.iatPast+r.cfg.leeway), now)
	o.Outcome, o.Status, o.Code = OutcomeStored, http.StatusOK, ""
	o.Event = revocation.Event{ID: lt.JTI, Type: revocation.TypeSessionRevoked, Subject: keys[0], Time: lt.IssuedAt}
	r.log.InfoContext(ctx, "logout: back-channel logout stored", "iss", jose.Clip(lt.Issuer), "jti", jose.Clip(lt.JTI), "token", lt.Hash,
		"key", keys[0].Kind.String(), "by_session", lt.SessionID != "", "event_time", lt.IssuedAt.UTC().Format(time.RFC3339))
	r.obs.Observe(o)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// formToken reads the logout_token parameter of a form body, or says what
// is wrong with the request.
func (r *Receiver) formToken(w http.ResponseWriter, req *http.Request) (string, string) {
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", fmt.Sprintf("Content-Type is %q, expected application/x-www-form-urlencoded", jose.Clip(req.Header.Get("Content-Type")))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", fmt.Sprintf("body exceeds %d bytes", r.cfg.maxBody)
		}
		return "", "could not read the body"
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", "body is not a valid form"
	}
	v := form["logout_token"]
	switch {
	case len(v) == 0 || v[0] == "":
		return "", "the logout_token parameter is missing"
	case len(v) > 1:
		return "", "the logout_token parameter is repeated"
	}
	return v[0], ""
}

// audience reads the required aud claim with the kit's claim rule
// (jose.ClaimStrings: a string or an array of strings, never null).
func audience(c map[string]json.RawMessage) ([]string, error) {
	aud, has, err := jose.ClaimStrings(c, "aud")
	if err == nil && !has {
		err = errors.New("required claim aud is missing")
	}
	return aud, err
}

// issuedAt reads the required iat claim, which must not lie after now
// (with the leeway).
func (r *Receiver) issuedAt(c map[string]json.RawMessage, now time.Time) (time.Time, error) {
	iat, has, err := jose.ClaimTime(c, "iat")
	switch {
	case err != nil:
		return time.Time{}, err
	case !has:
		return time.Time{}, errors.New("required claim iat is missing")
	case iat.After(now.Add(r.cfg.leeway)):
		return time.Time{}, fmt.Errorf("iat %s is after now %s (leeway %s)", iat.Format(time.RFC3339), now.UTC().Format(time.RFC3339), r.cfg.leeway)
	}
	return iat, nil
}

// nonEmpty reads an optional string claim; present it must be a string,
// and not empty.
func nonEmpty(c map[string]json.RawMessage, name string) (string, error) {
	s, has, err := jose.ClaimString(c, name)
	if err != nil {
		return "", err
	}
	if has && s == "" {
		return "", fmt.Errorf("claim %s is empty", name)
	}
	return s, nil
}
