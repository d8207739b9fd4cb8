package idp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Event type URIs the IdP emits.
const (
	CAEPPrefix            = "https://schemas.openid.net/secevent/caep/event-type/"
	RISCPrefix            = "https://schemas.openid.net/secevent/risc/event-type/"
	EventSessionRevoked   = CAEPPrefix + "session-revoked"
	EventCredentialChange = CAEPPrefix + "credential-change"
	EventRiskLevelChange  = CAEPPrefix + "risk-level-change"
	EventAccountDisabled  = RISCPrefix + "account-disabled"
	EventAccountEnabled   = RISCPrefix + "account-enabled"
)

// User actions accepted by UserAction and POST /admin/users/{name}/{action}.
const (
	ActionDisable        = "disable"
	ActionEnable         = "enable"
	ActionResetPassword  = "reset-password"
	ActionEnableMFA      = "enable-mfa"
	ActionRevokeSessions = "revoke-sessions"
	ActionRiskHigh       = "risk-high"
	// ActionLogout ends the user's latest session and posts an OpenID
	// Connect Back-Channel Logout token (with that sid) to every
	// Back-Channel Logout target.
	ActionLogout = "logout"
	// ActionUniversalLogout ends all the user's sessions and posts a Global
	// Token Revocation request (Okta Universal Logout) to every GTR target.
	ActionUniversalLogout = "universal-logout"
)

// ErrNotFound is returned for an unknown user or client.
var ErrNotFound = errors.New("idp: no such account")

// ErrBadAction is returned for an unknown admin action.
var ErrBadAction = errors.New("idp: unknown action")

// PushResult is the outcome of delivering one SET to one receiver.
type PushResult struct {
	// Target is the receiver's push endpoint URL.
	Target string `json:"target"`
	// Status is the HTTP status; 0 when the request failed.
	Status int `json:"status"`
	// Error describes a failure: a transport error or the receiver's
	// RFC 8935 error body.
	Error string `json:"error,omitempty"`
	// Millis is how long the push took.
	Millis float64 `json:"ms"`
}

// OK reports whether the receiver accepted the delivery: a 2xx status (202
// for an SSF push, 200 for a Back-Channel Logout, 204 for a Global Token
// Revocation).
func (r PushResult) OK() bool { return r.Status >= 200 && r.Status < 300 }

// AdminResult is the answer to an admin action.
type AdminResult struct {
	Action    string `json:"action"`     // one of the Action constants
	Subject   string `json:"subject"`    // the user acted on
	JTI       string `json:"jti"`        // the jti of the SET (or logout token, GTR JWT) emitted
	EventType string `json:"event_type"` // the event-type URI of the SET or logout token; "global-token-revocation" for GTR
	// SessionID is the sid the logout action ended ("" for other actions).
	SessionID string `json:"sid,omitempty"`
	// EventTime is the event_timestamp, in seconds since the epoch.
	EventTime int64 `json:"event_time"`
	// Pushes are the deliveries of the SET, one per receiver.
	Pushes []PushResult `json:"pushes"`
	// PushedAt is when delivery started (not part of the JSON).
	PushedAt time.Time `json:"-"`
}

// Delivered reports whether every push target accepted the SET.
func (r *AdminResult) Delivered() bool {
	for _, p := range r.Pushes {
		if !p.OK() {
			return false
		}
	}
	return true
}

// UserAction changes a user's state and pushes the matching SET to every
// push target. See the package doc for the actions.
func (p *IdP) UserAction(ctx context.Context, name, action string) (*AdminResult, error) {
	switch action {
	case ActionLogout, ActionUniversalLogout:
		return p.logout(ctx, name, action)
	}
	now := p.cfg.now()
	var uri string
	event := map[string]any{"event_timestamp": now.Unix()}
	p.mu.Lock()
	u, ok := p.users[name]
	if !ok {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	switch action {
	case ActionDisable:
		u.disabled = true
		uri = EventAccountDisabled
		event["reason"] = "hijacking"
	case ActionEnable:
		u.disabled = false
		uri = EventAccountEnabled
	case ActionResetPassword:
		// The password stays "password" so the demo's client can sign in again.
		uri = EventCredentialChange
		event["credential_type"] = "password"
		event["change_type"] = "update"
		event["initiating_entity"] = "admin"
		event["reason_admin"] = map[string]string{"en": "password reset by an administrator"}
	case ActionEnableMFA:
		u.mfa = true
		uri = EventCredentialChange
		event["credential_type"] = "app"
		event["change_type"] = "create"
		event["initiating_entity"] = "admin"
		event["reason_admin"] = map[string]string{"en": "multi-factor authentication enabled"}
	case ActionRevokeSessions:
		uri = EventSessionRevoked
		event["initiating_entity"] = "admin"
		event["reason_admin"] = map[string]string{"en": "all sessions revoked by an administrator"}
	case ActionRiskHigh:
		prev := u.risk
		if prev == "" {
			prev = "LOW"
		}
		u.risk = "HIGH"
		uri = EventRiskLevelChange
		event["principal"] = "USER"
		event["current_level"] = "HIGH"
		event["previous_level"] = prev
		event["risk_reason"] = "leaked credentials (simulated)"
	default:
		p.mu.Unlock()
		return nil, fmt.Errorf("%w %q for a user (disable, enable, reset-password, enable-mfa, revoke-sessions, risk-high, logout, universal-logout)", ErrBadAction, action)
	}
	if action != ActionEnable && action != ActionDisable {
		// Every other revoking event ends the user's sessions, and their
		// refresh tokens. Disabling does not: the sessions' refresh tokens
		// are refused while the account is disabled (AADSTS50057) and work
		// again once it is enabled, as at Entra, where disabling an account
		// blocks sign-in and refresh but does not revoke refresh tokens
		// (revoke-sessions does). The latest session stays the one logout
		// ends.
		u.sid = randomID()
		p.endSessionsLocked(name, "")
	}
	oid := u.oid
	p.mu.Unlock()
	p.cfg.logger.Info("idp: admin action", "user", name, "action", action, "event", uri)
	return p.emit(ctx, action, name, oid, uri, event, now)
}

// ClientAction disables or enables a workload client and pushes the matching
// RISC SET.
func (p *IdP) ClientAction(ctx context.Context, id, action string) (*AdminResult, error) {
	now := p.cfg.now()
	event := map[string]any{"event_timestamp": now.Unix()}
	var uri string
	p.mu.Lock()
	c, ok := p.clients[id]
	if !ok {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: client %q", ErrNotFound, id)
	}
	switch action {
	case ActionDisable:
		c.disabled = true
		uri = EventAccountDisabled
	case ActionEnable:
		c.disabled = false
		uri = EventAccountEnabled
	default:
		p.mu.Unlock()
		return nil, fmt.Errorf("%w %q for a client (disable, enable)", ErrBadAction, action)
	}
	oid := c.oid
	p.mu.Unlock()
	p.cfg.logger.Info("idp: admin action", "client", id, "action", action, "event", uri)
	return p.emit(ctx, action, id, oid, uri, event, now)
}

func (p *IdP) emit(ctx context.Context, action, name, sub, uri string, event map[string]any, now time.Time) (*AdminResult, error) {
	jti := randomID()
	set, err := p.sign(jwt.MapClaims{
		"iss": p.cfg.issuer,
		"aud": p.cfg.audience,
		"iat": now.Unix(),
		"jti": jti,
		"sub_id": map[string]string{
			"format": "iss_sub",
			"iss":    p.cfg.issuer,
			"sub":    sub,
		},
		"events": map[string]any{uri: event},
	}, "secevent+jwt")
	if err != nil {
		return nil, err
	}
	res := &AdminResult{Action: action, Subject: name, JTI: jti, EventType: uri, EventTime: now.Unix(), PushedAt: time.Now()}
	res.Pushes = p.pushAll(ctx, set)
	for _, pr := range res.Pushes {
		if !pr.OK() {
			p.cfg.logger.Warn("idp: SET push failed", "target", pr.Target, "status", pr.Status, "err", pr.Error, "jti", jti)
		}
	}
	return res, nil
}

// pushAll delivers a compact SET to every push target, concurrently, and
// returns one result per target in target order.
func (p *IdP) pushAll(ctx context.Context, set string) []PushResult {
	targets := p.PushTargets()
	out := make([]PushResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = p.pushOne(ctx, t, set)
		}()
	}
	wg.Wait()
	return out
}

func (p *IdP) pushOne(ctx context.Context, target, set string) PushResult {
	start := time.Now()
	res := PushResult{Target: target}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.pushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader([]byte(set)))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	if p.cfg.pushAuth != "" {
		req.Header.Set("Authorization", p.cfg.pushAuth)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		res.Error = err.Error()
		res.Millis = float64(time.Since(start).Microseconds()) / 1000
		return res
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	res.Status = resp.StatusCode
	if resp.StatusCode != http.StatusAccepted {
		res.Error = string(bytes.TrimSpace(body))
		if res.Error == "" {
			res.Error = resp.Status
		}
	}
	res.Millis = float64(time.Since(start).Microseconds()) / 1000
	return res
}
