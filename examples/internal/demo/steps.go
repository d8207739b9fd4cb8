package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/examples/internal/app"
	"github.com/caekit/caekit/examples/internal/idp"
	"github.com/caekit/caekit/examples/internal/server"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	"github.com/caekit/caekit/policy"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

const getMessage = "/example.inbox.v1.InboxService/GetMessage"

// ProxyAddr is the reverse proxy the demo's policy trusts, and ClientNetworkIP
// the address the step-5 client appears at behind it: a network that the
// location policy does not allow, unlike the IdP, which sees the client on
// loopback. CorpNetwork is the network the location policy allows.
var (
	ProxyAddr       = netip.MustParsePrefix("127.0.0.1/32")
	ClientNetworkIP = "198.51.100.7"
	CorpNetwork     = netip.MustParsePrefix("10.0.0.0/8")
)

func basePolicy() *policy.Policy {
	return &policy.Policy{ClientIP: policy.ClientIP{TrustedProxies: []netip.Prefix{ProxyAddr}}}
}

func locationPolicy() *policy.Policy {
	p := basePolicy()
	p.Locations = []policy.Location{{Name: "corp", Trusted: true, Ranges: []netip.Prefix{CorpNetwork}}}
	p.Rules = []policy.Rule{{Methods: []string{getMessage}, AllowLocations: []string{"corp"}}}
	return p
}

func authContextPolicy() *policy.Policy {
	p := basePolicy()
	p.Rules = []policy.Rule{{Methods: []string{getMessage}, AuthContext: []string{"c1"}}}
	return p
}

// admin performs an admin action over the IdP's HTTP API.
func (e *env) admin(ctx context.Context, path string) (*idp.AdminResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.idp.Issuer()+"/admin/"+path, nil)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin %s: HTTP %d: %s", path, resp.StatusCode, bytes.TrimSpace(body))
	}
	var res idp.AdminResult
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("admin %s: %w", path, err)
	}
	res.PushedAt = start
	if len(res.Pushes) == 0 {
		return &res, fmt.Errorf("admin %s: the IdP has no push target", path)
	}
	if !res.Delivered() {
		return &res, fmt.Errorf("admin %s: push not accepted: %+v", path, res.Pushes)
	}
	return &res, nil
}

func pushLine(r *idp.AdminResult) string {
	name := r.EventType[strings.LastIndexByte(r.EventType, '/')+1:]
	kind := "CAEP"
	switch {
	case strings.Contains(r.EventType, "/risc/"):
		kind = "RISC"
	case r.EventType == idp.EventBackChannelLogout:
		kind, name = "OIDC", "logout token"
	case r.EventType == idp.EventGTR:
		kind, name = "a", "global token revocation"
	}
	if len(r.Pushes) == 0 {
		return fmt.Sprintf("IdP sent %s %s for %s (jti %s…) to no receiver", kind, name, r.Subject, r.JTI[:8])
	}
	p := r.Pushes[0]
	return fmt.Sprintf("IdP pushed %s %s for %s (jti %s…) to %d receiver(s): HTTP %d in %.1fms",
		kind, name, r.Subject, r.JTI[:8], len(r.Pushes), p.Status, p.Millis)
}

func eventLines(evs []app.Event, since time.Time) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%+7s  %s", ms(ev.At.Sub(since)), short(ev.String(), 140)))
	}
	return out
}

func count(evs []app.Event, kind string) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// expectRecovered checks the signature of a transparent recovery: one
// challenge with the reason, one token acquired with claims, one retry.
func expectRecovered(evs []app.Event, reason string) error {
	var ch *app.Event
	for i := range evs {
		if evs[i].Kind == app.KindChallenge {
			ch = &evs[i]
		}
	}
	switch {
	case ch == nil:
		return errors.New("no challenge was received")
	case count(evs, app.KindChallenge) != 1:
		return fmt.Errorf("%d challenges, want 1", count(evs, app.KindChallenge))
	case ch.Reason != reason:
		return fmt.Errorf("challenge reason %s, want %s", ch.Reason, reason)
	case count(evs, app.KindRetry) != 1:
		return fmt.Errorf("%d retries, want exactly 1", count(evs, app.KindRetry))
	case count(evs, app.KindToken) < 1:
		return errors.New("no new token was acquired")
	case count(evs, app.KindNotRetried) != 0:
		return errors.New("a challenge reached the application")
	}
	return nil
}

func (e *env) call(ctx context.Context, c *app.Client) (*inboxv1.GetMessageResponse, error) {
	return c.Inbox.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"})
}

func (e *env) step1(ctx context.Context, st *Step) error {
	t0 := time.Now()
	resp, err := e.call(ctx, e.alice)
	st.Obs.Events = e.alice.TakeEvents()
	if err != nil {
		return fmt.Errorf("GetMessage failed: %w", err)
	}
	st.Obs.Subject = resp.GetSubject()
	tok, err := e.alice.Token(ctx)
	if err != nil {
		return err
	}
	st.Obs.Token = tok
	st.Lines = append(st.Lines,
		fmt.Sprintf("token %s: lifetime %s, xms_cc %v, refresh_in %s", tok.Hash, tok.Lifetime, tok.Capabilities, tok.RefreshIn),
		fmt.Sprintf("GetMessage → %q in %s (first call includes sign-in)", resp.GetBody(), ms(time.Since(t0))))
	switch {
	case tok.Lifetime != idp.DefaultCAELifetime:
		return fmt.Errorf("token lifetime %s, want %s", tok.Lifetime, idp.DefaultCAELifetime)
	case len(tok.Capabilities) != 1 || tok.Capabilities[0] != "cp1":
		return fmt.Errorf("xms_cc %v, want [cp1]", tok.Capabilities)
	case count(st.Obs.Events, app.KindChallenge) != 0:
		return errors.New("unexpected challenge")
	case resp.GetSubject() != "alice":
		return fmt.Errorf("server saw subject %q", resp.GetSubject())
	}
	return nil
}

// revokeAndRecover is steps 2 and 3: an admin action, then a call that is
// challenged and recovers transparently.
func (e *env) revokeAndRecover(ctx context.Context, st *Step, action, reason string) error {
	res, err := e.admin(ctx, "users/alice/"+action)
	st.Obs.Admin = res
	if err != nil {
		return err
	}
	st.Lines = append(st.Lines, pushLine(res))
	t0 := time.Now()
	resp, err := e.call(ctx, e.alice)
	st.Obs.Events = e.alice.TakeEvents()
	st.Lines = append(st.Lines, eventLines(st.Obs.Events, t0)...)
	if err != nil {
		st.Obs.Err = err
		return fmt.Errorf("call failed: %w", err)
	}
	st.Obs.Subject = resp.GetSubject()
	st.Lines = append(st.Lines, fmt.Sprintf("GetMessage → ok after %d retry, %s end to end (the client waited for the challenge's nbf, the second after the event, before asking the IdP)",
		count(st.Obs.Events, app.KindRetry), ms(time.Since(t0))))
	return expectRecovered(st.Obs.Events, reason)
}

func (e *env) step2(ctx context.Context, st *Step) error {
	return e.revokeAndRecover(ctx, st, idp.ActionRevokeSessions, "SESSION_REVOKED")
}

func (e *env) step3(ctx context.Context, st *Step) error {
	return e.revokeAndRecover(ctx, st, idp.ActionResetPassword, "PASSWORD_CHANGED")
}

func (e *env) step4(ctx context.Context, st *Step) error {
	const interval = 50
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := e.alice.Inbox.WatchInbox(sctx, &inboxv1.WatchInboxRequest{IntervalMs: interval})
	if err != nil {
		return fmt.Errorf("open WatchInbox: %w", err)
	}
	for range 3 {
		if _, err := stream.Recv(); err != nil {
			return fmt.Errorf("WatchInbox before the event: %w", err)
		}
		st.Obs.ReceivedBefore++
	}
	type end struct {
		at  time.Time
		err error
		n   int
	}
	done := make(chan end, 1)
	go func() {
		n := 0
		for {
			if _, err := stream.Recv(); err != nil {
				done <- end{time.Now(), err, n}
				return
			}
			n++
		}
	}()
	res, err := e.admin(ctx, "users/alice/"+idp.ActionEnableMFA)
	st.Obs.Admin = res
	if err != nil {
		cancel()
		<-done
		return err
	}
	ended, err := awaitCut(done, cancel, "the stream")
	if err != nil {
		return err
	}
	st.Obs.ReceivedBefore += ended.n
	st.Obs.Err = ended.err
	// The stream ends on the wire when the client interceptor sees the
	// challenge; it hands the error to the app at once and fetches a fresh
	// token for the reconnect in the background.
	cutAt := ended.at
	for _, ev := range e.peekEvents() {
		if ev.Kind == app.KindChallenge {
			cutAt = ev.At
			break
		}
	}
	st.Obs.CutAfter = cutAt.Sub(res.PushedAt)
	ch, isCh := client.IsChallenge(ended.err)
	reason := ""
	if isCh {
		reason = challenge.ReasonName(ch.Reason)
	}
	st.Lines = append(st.Lines,
		fmt.Sprintf("WatchInbox open, %d messages received (one every %dms)", st.Obs.ReceivedBefore, interval),
		pushLine(res),
		fmt.Sprintf("stream cut %s after the push began (%s, reason %s); the app saw the error at %s",
			ms(st.Obs.CutAfter), status.Code(ended.err), reason, ms(ended.at.Sub(res.PushedAt))))

	t0 := time.Now()
	stream2, err := e.alice.Inbox.WatchInbox(sctx, &inboxv1.WatchInboxRequest{IntervalMs: interval})
	if err != nil {
		return fmt.Errorf("reconnect: %w", err)
	}
	for range 2 {
		if _, err := stream2.Recv(); err != nil {
			st.Obs.Events = e.alice.TakeEvents()
			return fmt.Errorf("reconnected WatchInbox: %w", err)
		}
		st.Obs.ReceivedAfter++
	}
	cancel()
	st.Obs.Events = append(e.pending, e.alice.TakeEvents()...)
	e.pending = nil
	st.Lines = append(st.Lines, eventLines(st.Obs.Events, res.PushedAt)...)
	st.Lines = append(st.Lines, fmt.Sprintf("reconnected with the fresh token (the reconnect waited for the fetch under way): %d messages in %s", st.Obs.ReceivedAfter, ms(time.Since(t0))))
	switch {
	case status.Code(ended.err) != codes.Unauthenticated || !isCh:
		return fmt.Errorf("stream ended with %v, want an Unauthenticated challenge", ended.err)
	case reason != "MFA_ENABLED":
		return fmt.Errorf("stream cut reason %s, want MFA_ENABLED", reason)
	}
	return nil
}

// peekEvents returns alice's pending events without taking them.
func (e *env) peekEvents() []app.Event {
	evs := e.alice.TakeEvents()
	e.pending = append(e.pending, evs...)
	return e.pending
}

func (e *env) step5(ctx context.Context, st *Step) error {
	if err := e.srv.SetPolicy(locationPolicy()); err != nil {
		return err
	}
	defer func() { _ = e.srv.SetPolicy(basePolicy()) }()
	st.Lines = append(st.Lines, fmt.Sprintf("policy: GetMessage only from %s; the client comes from %s via trusted proxy %s (the IdP sees it on loopback)",
		CorpNetwork, ClientNetworkIP, ProxyAddr.Addr()))
	t0 := time.Now()
	cctx := metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", ClientNetworkIP)
	_, err := e.call(cctx, e.alice)
	st.Obs.Events = e.alice.TakeEvents()
	st.Obs.Err = err
	st.Lines = append(st.Lines, eventLines(st.Obs.Events, t0)...)
	if err == nil {
		return errors.New("the call succeeded from outside the allowed location")
	}
	s, _ := status.FromError(err)
	st.Lines = append(st.Lines, fmt.Sprintf("denied: %s: %s", s.Code(), short(s.Message(), 150)))
	var ch *app.Event
	for i := range st.Obs.Events {
		if st.Obs.Events[i].Kind == app.KindChallenge {
			ch = &st.Obs.Events[i]
			break
		}
	}
	switch {
	case ch == nil || ch.Reason != "LOCATION":
		return errors.New("no LOCATION challenge before the denial")
	case count(st.Obs.Events, app.KindRetry) != 1:
		return fmt.Errorf("%d retries, want 1", count(st.Obs.Events, app.KindRetry))
	case s.Code() != codes.PermissionDenied:
		return fmt.Errorf("final code %s, want PermissionDenied", s.Code())
	}
	return nil
}

func (e *env) step6(ctx context.Context, st *Step) error {
	if err := e.srv.SetPolicy(authContextPolicy()); err != nil {
		return err
	}
	defer func() { _ = e.srv.SetPolicy(basePolicy()) }()
	st.Lines = append(st.Lines, "policy: GetMessage requires authentication context c1")
	t0 := time.Now()
	resp, err := e.call(ctx, e.alice)
	st.Obs.Events = e.alice.TakeEvents()
	st.Obs.Err = err
	st.Lines = append(st.Lines, eventLines(st.Obs.Events, t0)...)
	if err != nil {
		return fmt.Errorf("call failed: %w", err)
	}
	st.Obs.Subject = resp.GetSubject()
	tok, err := e.alice.Token(ctx)
	if err != nil {
		return err
	}
	st.Obs.Token = tok
	st.Lines = append(st.Lines, fmt.Sprintf("GetMessage → ok in %s; the new token has acrs %v", ms(time.Since(t0)), tok.ACRS))
	if err := expectRecovered(st.Obs.Events, "AUTH_CONTEXT"); err != nil {
		return err
	}
	if len(tok.ACRS) != 1 || tok.ACRS[0] != "c1" {
		return fmt.Errorf("token acrs %v, want [c1]", tok.ACRS)
	}
	return nil
}

func (e *env) step7(ctx context.Context, st *Step) error {
	res, err := e.admin(ctx, "users/alice/"+idp.ActionDisable)
	st.Obs.Admin = res
	if err != nil {
		return err
	}
	st.Lines = append(st.Lines, pushLine(res))
	t0 := time.Now()
	_, err = e.call(ctx, e.alice)
	st.Obs.Events = e.alice.TakeEvents()
	st.Lines = append(st.Lines, eventLines(st.Obs.Events, t0)...)
	if err == nil {
		return errors.New("a disabled user's call succeeded")
	}
	err = e.alice.Explain(err)
	st.Obs.Err = err
	st.Lines = append(st.Lines, "the app shows: "+short(err.Error(), 160))
	var oe *httpsource.Error
	switch {
	case !errors.As(err, &oe) || oe.Code != "invalid_grant":
		return fmt.Errorf("the error does not carry the IdP's invalid_grant: %v", err)
	case count(st.Obs.Events, app.KindChallenge) != 1:
		return errors.New("no challenge before the failed re-acquisition")
	case count(st.Obs.Events, app.KindRetry) != 0:
		return errors.New("the call was retried without a new token")
	}
	return nil
}

func (e *env) step8(ctx context.Context, st *Step) error {
	bob, err := e.dial(ctx, "bob", true)
	if err != nil {
		return err
	}
	defer bob.Close()
	if _, err := e.call(ctx, bob); err != nil {
		return fmt.Errorf("first call failed: %w", err)
	}
	tok, err := bob.Token(ctx)
	if err != nil {
		return err
	}
	st.Obs.Token = tok
	st.Lines = append(st.Lines, fmt.Sprintf("bob's client declares no cp1: token lifetime %s, xms_cc %v; GetMessage ok", tok.Lifetime, tok.Capabilities))
	bob.TakeEvents()
	res, err := e.admin(ctx, "users/bob/"+idp.ActionRevokeSessions)
	st.Obs.Admin = res
	if err != nil {
		return err
	}
	st.Lines = append(st.Lines, pushLine(res))
	_, err = e.call(ctx, bob)
	st.Obs.Events = bob.TakeEvents()
	st.Obs.Err = err
	if err == nil {
		return errors.New("a revoked token was accepted")
	}
	ch, xerr := challenge.Extract(err)
	isCh := xerr == nil
	s, _ := status.FromError(err)
	st.Lines = append(st.Lines, fmt.Sprintf("rejected: %s, error=%q, no claims, no retry: %s", s.Code(), errorOf(ch), short(s.Message(), 90)))
	switch {
	case tok.Lifetime != idp.DefaultLifetime:
		return fmt.Errorf("lifetime %s, want %s", tok.Lifetime, idp.DefaultLifetime)
	case len(tok.Capabilities) != 0:
		return fmt.Errorf("xms_cc %v on a non-CAE token", tok.Capabilities)
	case s.Code() != codes.Unauthenticated:
		return fmt.Errorf("code %s, want Unauthenticated", s.Code())
	case isCh && ch.InsufficientClaims():
		return errors.New("a non-CAE client got a claims challenge")
	case count(st.Obs.Events, app.KindRetry) != 0:
		return errors.New("the call was retried")
	}
	return nil
}

func errorOf(ch *challenge.Challenge) string {
	if ch == nil {
		return ""
	}
	return ch.Error
}

func (e *env) step9(ctx context.Context, st *Step) error {
	if e.opts.Store == "" {
		return errSkip("skipped: run `go run ./examples/demo -store redis://127.0.0.1:6379/0 -replicas 3` to share revocations between replicas")
	}
	prefix := "caekit-demo-" + randomHex(4) + ":"
	replicas := make([]*server.Server, 0, e.opts.Replicas)
	clients := make([]*app.Client, 0, e.opts.Replicas)
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
		for _, r := range replicas {
			_ = r.Close()
		}
		_ = e.idp.SetPushTargets(e.srv.EventsURL())
	}()
	for i := range e.opts.Replicas {
		r, err := server.Start(ctx, server.Config{
			Addr: "127.0.0.1:0", EventsAddr: "127.0.0.1:0",
			Issuer: e.idp.Issuer(), Audience: e.idp.Audience(), EventsAuth: e.secret,
			Store: e.opts.Store, StorePrefix: prefix, Policy: basePolicy(),
			Logger: e.log.With("app", fmt.Sprintf("replica%d", i)),
		})
		if err != nil {
			return fmt.Errorf("replica %d: %w", i, err)
		}
		replicas = append(replicas, r)
		c, err := e.dialTo(ctx, r.Addr(), "carol", false)
		if err != nil {
			return err
		}
		clients = append(clients, c)
		if _, err := e.call(ctx, c); err != nil {
			return fmt.Errorf("replica %d: first call: %w", i, err)
		}
		c.TakeEvents()
	}
	// Push to replica 0 only; the others learn through Redis.
	if err := e.idp.SetPushTargets(replicas[0].EventsURL()); err != nil {
		return err
	}
	sub, _ := e.idp.Subject("carol")
	seen := make([]chan time.Time, len(replicas))
	for i, r := range replicas {
		ch := make(chan time.Time, 1)
		seen[i] = ch
		var once sync.Once
		unsub := r.Store().Subscribe(func(ev revocation.Event) {
			if ev.Subject.ID == sub {
				once.Do(func() { ch <- time.Now() })
			}
		})
		defer unsub()
	}
	st.Lines = append(st.Lines, fmt.Sprintf("%d replicas share %s (prefix %s); carol has a CAE session on each", len(replicas), redactURL(e.opts.Store), prefix))
	res, err := e.admin(ctx, "users/carol/"+idp.ActionRevokeSessions)
	st.Obs.Admin = res
	if err != nil {
		return err
	}
	st.Lines = append(st.Lines, pushLine(res)+" (replica 0 only)")
	for i, ch := range seen {
		select {
		case at := <-ch:
			st.Obs.Propagation = append(st.Obs.Propagation, at.Sub(res.PushedAt))
		case <-time.After(5 * time.Second):
			return fmt.Errorf("replica %d did not learn of the event within 5 s", i)
		}
	}
	parts := make([]string, len(st.Obs.Propagation))
	for i, d := range st.Obs.Propagation {
		parts[i] = fmt.Sprintf("replica %d %s", i, ms(d))
	}
	st.Lines = append(st.Lines, "event visible (push start → store): "+strings.Join(parts, ", "))
	for i, c := range clients {
		_, err := e.call(ctx, c)
		evs := c.TakeEvents()
		st.Obs.ReplicaEvents = append(st.Obs.ReplicaEvents, evs)
		if err != nil {
			return fmt.Errorf("replica %d: call after the event: %w", i, err)
		}
		if err := expectRecovered(evs, "SESSION_REVOKED"); err != nil {
			return fmt.Errorf("replica %d: %w", i, err)
		}
	}
	st.Lines = append(st.Lines, "every replica challenged carol's old token; each client recovered with one retry")
	return nil
}

// step10 shows the same-second rule with an IdP that ignores the claims
// request and issues at once (mode b, as Okta, Keycloak and Auth0 do): the
// event is dated at the current second, the challenge asks for nbf = the
// second after it, and the client waits for that second before asking the
// IdP, so the token the IdP issues at once is not revoked and the single
// retry succeeds.
func (e *env) step10(ctx context.Context, st *Step) error {
	carol, err := e.dial(ctx, "carol", false)
	if err != nil {
		return err
	}
	defer carol.Close()
	if _, err := e.call(ctx, carol); err != nil {
		return fmt.Errorf("first call: %w", err)
	}
	before, err := carol.Token(ctx)
	if err != nil {
		return err
	}
	carol.TakeEvents()
	st.Lines = append(st.Lines, fmt.Sprintf("IdP nbf mode %q: it ignores the claims request and issues at once, as Okta, Keycloak and Auth0 do; carol's token %s was issued at %d",
		e.idp.NotBeforeMode(), before.Hash, before.IssuedAt.Unix()))
	res, err := e.admin(ctx, "users/carol/"+idp.ActionRevokeSessions)
	st.Obs.Admin = res
	if err != nil {
		return err
	}
	into := max(0, res.PushedAt.Sub(time.Unix(res.EventTime, 0)))
	st.Lines = append(st.Lines, pushLine(res)+fmt.Sprintf(" (event second %d, %s into it)", res.EventTime, ms(into)))
	t0 := time.Now()
	resp, err := e.call(ctx, carol)
	st.Obs.Events = carol.TakeEvents()
	st.Lines = append(st.Lines, eventLines(st.Obs.Events, t0)...)
	if err != nil {
		st.Obs.Err = err
		return fmt.Errorf("call failed: %w", err)
	}
	st.Obs.Subject = resp.GetSubject()
	tok, err := carol.Token(ctx)
	if err != nil {
		return err
	}
	st.Obs.Token = tok
	var chAt, tokAt time.Time
	for _, ev := range st.Obs.Events {
		switch {
		case ev.Kind == app.KindChallenge && chAt.IsZero():
			chAt = ev.At
		case ev.Kind == app.KindToken && tokAt.IsZero():
			tokAt = ev.At
		}
	}
	st.Obs.ChallengeToToken = tokAt.Sub(chAt)
	st.Lines = append(st.Lines,
		fmt.Sprintf("challenge asked for nbf %d (the second after the event); the client waited for it, then the IdP issued at once: iat %d", res.EventTime+1, tok.IssuedAt.Unix()),
		fmt.Sprintf("GetMessage → ok after %d retry, %s end to end (challenge → new token %s)", count(st.Obs.Events, app.KindRetry), ms(time.Since(t0)), ms(st.Obs.ChallengeToToken)))
	if err := expectRecovered(st.Obs.Events, "SESSION_REVOKED"); err != nil {
		return err
	}
	if tok.IssuedAt.Unix() <= res.EventTime {
		return fmt.Errorf("new token iat %d is not after the event second %d", tok.IssuedAt.Unix(), res.EventTime)
	}
	return nil
}

func redactURL(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "***" + s[i:]
		}
	}
	return s
}

// step11: OpenID Connect Back-Channel Logout. Bob (alice is disabled by
// step 7) signs in twice (two clients, two sessions, two sids) and watches
// his inbox on both; the IdP logs out his latest session and posts a logout token with that sid; the
// server revokes that session only: its stream is cut with a challenge,
// the other session's stream keeps flowing.
func (e *env) step11(ctx context.Context, st *Step) error {
	const interval = 50
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first, err := e.dial(ctx, "bob", false)
	if err != nil {
		return err
	}
	defer first.Close()
	second, err := e.dial(ctx, "bob", false)
	if err != nil {
		return err
	}
	defer second.Close()
	// Sign-in order decides the latest session: first, then second.
	open := func(c *app.Client) (inboxv1.InboxService_WatchInboxClient, error) {
		s, err := c.Inbox.WatchInbox(sctx, &inboxv1.WatchInboxRequest{IntervalMs: interval})
		if err != nil {
			return nil, err
		}
		_, err = s.Recv()
		return s, err
	}
	keep, err := open(first)
	if err != nil {
		return fmt.Errorf("first session's WatchInbox: %w", err)
	}
	cut, err := open(second)
	if err != nil {
		return fmt.Errorf("second session's WatchInbox: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := cut.Recv(); err != nil {
				done <- err
				return
			}
		}
	}()
	res, err := e.admin(ctx, "users/bob/"+idp.ActionLogout)
	st.Obs.Admin = res
	if err != nil {
		cancel()
		<-done
		return err
	}
	var cutErr error
	select {
	case cutErr = <-done:
	case <-time.After(5 * time.Second):
		cancel()
		<-done
		return errors.New("the logged-out session's stream was not cut within 5 s of the logout")
	}
	st.Obs.CutAfter = time.Since(res.PushedAt)
	st.Obs.Err = cutErr
	// The other session keeps receiving after the logout.
	for range 3 {
		if _, err := keep.Recv(); err != nil {
			return fmt.Errorf("the other session's stream ended after the logout: %w", err)
		}
		st.Obs.ReceivedAfter++
	}
	cancel()
	ch, xerr := challenge.Extract(cutErr)
	isCh := xerr == nil
	reason := ""
	if isCh {
		reason = challenge.ReasonName(ch.Reason)
	}
	st.Obs.Events = second.TakeEvents()
	_ = first.TakeEvents()
	st.Lines = append(st.Lines,
		fmt.Sprintf("bob signed in twice (two CAE clients); both sessions watch the inbox; the IdP logs out the latest (sid %s)", short(res.SessionID, 9)),
		pushLine(res),
		fmt.Sprintf("that session's stream cut %s after the logout token was posted (%s, reason %s)", ms(st.Obs.CutAfter), status.Code(cutErr), reason),
		fmt.Sprintf("the other session's stream kept flowing: %d more messages", st.Obs.ReceivedAfter))
	switch {
	case !res.Delivered():
		return fmt.Errorf("the logout token was not accepted: %s", pushLine(res))
	case status.Code(cutErr) != codes.Unauthenticated || !isCh:
		return fmt.Errorf("the stream ended with %v, want an Unauthenticated challenge", cutErr)
	case reason != "SESSION_REVOKED":
		return fmt.Errorf("stream cut reason %s, want SESSION_REVOKED", reason)
	}
	return nil
}

// awaitCut waits at most 5 s for the reader of a stream cut by an event to
// report its end on done; past that it cancels the stream, waits for the
// reader and says that what was not cut in time.
func awaitCut[T any](done <-chan T, cancel func(), what string) (T, error) {
	select {
	case ended := <-done:
		return ended, nil
	case <-time.After(5 * time.Second):
		cancel()
		<-done
		var zero T
		return zero, fmt.Errorf("%s was not cut within 5 s of the event", what)
	}
}
