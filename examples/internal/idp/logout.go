package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// EventBackChannelLogout is the events member of a logout token (OpenID
// Connect Back-Channel Logout 1.0 §2.4).
const EventBackChannelLogout = "http://schemas.openid.net/event/backchannel-logout"

// EventGTR is AdminResult.EventType of a universal logout.
const EventGTR = "global-token-revocation"

// gtrLifetime is the exp - iat of a GTR bearer JWT: Okta's are short-lived
// (five minutes, https://developer.okta.com/docs/guides/oin-universal-logout-overview/).
const gtrLifetime = 5 * time.Minute

// logout runs ActionLogout and ActionUniversalLogout.
func (p *IdP) logout(ctx context.Context, name, action string) (*AdminResult, error) {
	now := p.cfg.now()
	p.mu.Lock()
	u, ok := p.users[name]
	if !ok {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	sid, oid := u.sid, u.oid
	// The session ends, with its refresh tokens (universal logout: all the
	// user's sessions): the next sign-in starts another.
	u.sid = randomID()
	if action == ActionLogout {
		p.endSessionsLocked(name, sid)
	} else {
		p.endSessionsLocked(name, "")
	}
	p.mu.Unlock()
	jti := randomID()
	res := &AdminResult{Action: action, Subject: name, JTI: jti, EventTime: now.Unix(), PushedAt: time.Now()}
	bcl, gtr := p.LogoutTargets()
	var send func(ctx context.Context, target string) PushResult
	switch action {
	case ActionLogout:
		// A logout token (OIDC Back-Channel Logout 1.0 §2.4): iss, aud (the
		// RP's client id), iat, jti, sid, sub, events, no nonce, and the
		// recommended typ logout+jwt. No exp, as Keycloak before the fix of
		// keycloak/keycloak#25753 and authentik before 2025.8.2 sent
		// them, so that receivers are tested against the tolerant case.
		lt, err := p.sign(jwt.MapClaims{
			"iss": p.cfg.issuer, "aud": p.cfg.logoutAud, "iat": now.Unix(), "jti": jti,
			"sid": sid, "sub": oid,
			"events": map[string]any{EventBackChannelLogout: map[string]any{}},
		}, "logout+jwt")
		if err != nil {
			return nil, err
		}
		res.EventType, res.SessionID = EventBackChannelLogout, sid
		body := url.Values{"logout_token": {lt}}.Encode()
		send = func(ctx context.Context, target string) PushResult {
			return p.post(ctx, target, "application/x-www-form-urlencoded", body, "")
		}
		p.cfg.logger.Info("idp: admin action", "user", name, "action", action, "sid", sid)
		res.Pushes = p.sendAll(ctx, bcl, send)
	default:
		// A Global Token Revocation request as Okta Universal Logout sends
		// it: a JSON sub_id (RFC 9493 iss_sub), authenticated by a JWT of
		// typ global-token-revocation+jwt whose aud is the endpoint.
		body, _ := json.Marshal(map[string]any{"sub_id": map[string]string{"format": "iss_sub", "iss": p.cfg.issuer, "sub": oid}})
		res.EventType = EventGTR
		send = func(ctx context.Context, target string) PushResult {
			bearer, err := p.sign(jwt.MapClaims{
				"iss": p.cfg.issuer, "aud": target, "iat": now.Unix(), "exp": now.Add(gtrLifetime).Unix(), "jti": jti,
			}, "global-token-revocation+jwt")
			if err != nil {
				return PushResult{Target: target, Error: err.Error()}
			}
			return p.post(ctx, target, "application/json", string(body), bearer)
		}
		p.cfg.logger.Info("idp: admin action", "user", name, "action", action)
		res.Pushes = p.sendAll(ctx, gtr, send)
	}
	for _, pr := range res.Pushes {
		if !pr.OK() {
			p.cfg.logger.Warn("idp: logout delivery failed", "target", pr.Target, "status", pr.Status, "err", pr.Error, "jti", jti)
		}
	}
	return res, nil
}

// sendAll calls send for every target, concurrently, results in target order.
func (p *IdP) sendAll(ctx context.Context, targets []string, send func(context.Context, string) PushResult) []PushResult {
	out := make([]PushResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { out[i] = send(ctx, t) })
	}
	wg.Wait()
	return out
}

// post delivers one request and reports its outcome.
func (p *IdP) post(ctx context.Context, target, contentType, body, bearer string) PushResult {
	start := time.Now()
	res := PushResult{Target: target}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.pushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	req.Header.Set("Content-Type", contentType)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := p.hc.Do(req)
	res.Millis = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	res.Status = resp.StatusCode
	if !res.OK() {
		res.Error = string(bytes.TrimSpace(b))
		if res.Error == "" {
			res.Error = resp.Status
		}
	}
	return res
}
