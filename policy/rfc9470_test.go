package policy_test

// Tests for issue 15 part B: the RFC 9470 step-up dialect
// (https://www.rfc-editor.org/rfc/rfc9470): a rule's acr_values and
// max_age, the insufficient_user_authentication challenge (§3), and the
// caekit client answering it with a new token request carrying acr_values
// and max_age (§4) against the test IdP, over real gRPC on loopback.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/check"
	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/policy"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

const mfaACR = "urn:example:mfa" // an acr value as RFC 9470 §3's example uses them ("myACR")

func stepUpPolicy(acr []string, maxAge time.Duration) *policy.Policy {
	return &policy.Policy{Rules: []policy.Rule{{Methods: []string{getMessage}, ACRValues: acr, MaxAge: maxAge}}}
}

// TestE2EStepUpRFC9470 is the end-to-end proof: a rule with
// acr_values and max_age; the client's first token (no acr, authenticated an
// hour ago) falls short and gets error="insufficient_user_authentication"
// with acr_values and max_age; caekit's client passes both to the token
// source, which asks the IdP; the retry passes; one step-up request only.
func TestE2EStepUpRFC9470(t *testing.T) {
	e := startE2E(t, stepUpPolicy([]string{mfaACR, "urn:example:hwk"}, 10*time.Minute), "127.0.0.1")
	e.idp.SetClaim("auth_time", time.Now().Add(-time.Hour).Unix())
	resp, err := e.get(context.Background())
	if err != nil || resp.GetBody() != "hello alice" {
		t.Fatalf("call: %v, %v; want the retry with the stepped-up token to pass", resp, err)
	}
	reqs := e.idp.Requests()
	if len(reqs) != 2 {
		t.Fatalf("IdP requests = %+v, want the initial one and one step-up", reqs)
	}
	if reqs[0].ACRValues != "" || reqs[0].MaxAge != "" {
		t.Fatalf("first request asked for a step-up: %+v", reqs[0])
	}
	if reqs[1].ACRValues != mfaACR+" urn:example:hwk" || reqs[1].MaxAge != "600" {
		t.Fatalf("step-up request: acr_values %q max_age %q, want %q and 600", reqs[1].ACRValues, reqs[1].MaxAge, mfaACR+" urn:example:hwk")
	}
	// The next call reuses the stepped-up token.
	if _, err := e.get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.idp.Count(); n != 2 {
		t.Fatalf("IdP requests = %d after the second call, want 2", n)
	}
}

// stepUpOutcome calls GetMessage with tok and classifies the answer:
// "ok", "stepup" (the RFC 9470 challenge, whose parsed form is returned),
// "denied" (PermissionDenied).
func (e *rawEnv) stepUpCall(t *testing.T, tok string) (string, *challenge.Challenge) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	var trl metadata.MD
	_, err := e.api.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "m1"}, grpc.Trailer(&trl))
	switch {
	case err == nil:
		return "ok", nil
	case status.Code(err) == codes.PermissionDenied:
		return "denied", nil
	case status.Code(err) == codes.Unauthenticated:
		// The trailer alone, as a client without caekit's protos reads it.
		ch, perr := challenge.Parse(trl.Get(challenge.MetadataKey)...)
		if perr != nil || !ch.StepUp() {
			t.Fatalf("Unauthenticated without an RFC 9470 challenge: %v (trailer %q, %v)", err, trl.Get(challenge.MetadataKey), perr)
		}
		return "stepup", ch
	}
	t.Fatalf("unexpected error: %v", err)
	return "", nil
}

// The challenge is sent whatever the client's capabilities (RFC 9470 needs
// no cp1), carries exactly the rule's values, and an IdP that ignores
// acr_values earns one challenge, then a plain denial (no loop).
func TestStepUpChallengeAndNoLoop(t *testing.T) {
	e := startRaw(t, stepUpPolicy([]string{mfaACR}, 0), "127.0.0.1")
	got, ch := e.stepUpCall(t, e.token(t, "")) // no xms_cc: not cp1
	expect(t, "token without acr", got, "stepup")
	if len(ch.ACRValues) != 1 || ch.ACRValues[0] != mfaACR || ch.MaxAge != 0 {
		t.Fatalf("challenge %+v", ch)
	}
	e.idp.SetIgnoreACRS(true)
	e.clock.advance(time.Second)
	got, _ = e.stepUpCall(t, e.token(t, ""))
	expect(t, "new token still without acr", got, "denied")
	e.idp.SetIgnoreACRS(false)
	tok, err := e.src.Token(context.Background(), tokenRequest(mfaACR))
	if err != nil {
		t.Fatal(err)
	}
	got, _ = e.stepUpCall(t, tok.AccessToken)
	expect(t, "token with acr", got, "ok")
}

// max_age is judged against the interceptor's clock: a token whose
// auth_time was within max_age passes, and fails once the clock moves past
// it; a token without auth_time fails.
func TestStepUpMaxAge(t *testing.T) {
	e := startRaw(t, stepUpPolicy(nil, 5*time.Minute), "127.0.0.1")
	e.idp.SetClaim("auth_time", time.Now().Unix())
	tok := e.token(t, "")
	got, _ := e.stepUpCall(t, tok)
	expect(t, "fresh auth_time", got, "ok")
	e.clock.advance(6 * time.Minute)
	got, ch := e.stepUpCall(t, tok)
	expect(t, "auth_time older than max_age", got, "stepup")
	if ch.MaxAge != 5*time.Minute || len(ch.ACRValues) != 0 {
		t.Fatalf("challenge %+v", ch)
	}
	e.idp.SetClaim("auth_time", nil)
	got, _ = e.stepUpCall(t, e.token(t, ""))
	if got == "ok" {
		t.Fatal("a token without auth_time passed a max_age rule")
	}
}

// The step-up check is not time-independent (a max_age verdict changes
// with the clock), so open streams re-run it; the other checks still are.
func TestStepUpCheckIsTimeDependent(t *testing.T) {
	eng := newEngine(t, stepUpPolicy(nil, time.Minute))
	cs := eng.Checks()
	if len(cs) != 3 {
		t.Fatalf("Checks() = %d checks, want 3", len(cs))
	}
	for i, want := range []bool{true, true, false} {
		ti, ok := cs[i].(check.TimeIndependent)
		if got := ok && ti.TimeIndependent(); got != want {
			t.Errorf("check %d TimeIndependent = %v, want %v", i, got, want)
		}
	}
	now := time.Now()
	req := &check.Request{FullMethod: getMessage, Now: now, Claims: &token.Claims{Subject: "s", AuthTime: now.Add(-30 * time.Second)}}
	if d := eng.StepUpCheck().Check(context.Background(), req); d != nil {
		t.Fatalf("within max_age: %+v", d)
	}
	req.Now = now.Add(time.Minute)
	d := eng.StepUpCheck().Check(context.Background(), req)
	if d == nil || d.MaxAge != time.Minute || d.Claims != "" || !strings.Contains(d.Description, "max_age") {
		t.Fatalf("past max_age: %+v", d)
	}
}

func TestStepUpPolicyFile(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(`
version: 1
rules:
  - methods: ["/example.inbox.v1.InboxService/GetMessage"]
    acr_values: ["urn:example:mfa", "phr"]
    max_age: 300
  - methods: ["/example.inbox.v1.InboxService/Chat"]
    max_age: "15m"
  - methods: ["/example.inbox.v1.InboxService/*"]
    auth_context: [c1]
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Rules[0]; len(r.ACRValues) != 2 || r.MaxAge != 5*time.Minute || p.Rules[1].MaxAge != 15*time.Minute {
		t.Fatalf("rules %+v", p.Rules)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"mixed dialects": {`acr_values: [a]
    auth_context: [c1]`, "mixes two step-up dialects"},
		"max_age zero":     {`max_age: 0`, "would refuse every token"},
		"max_age negative": {`max_age: -5`, "not a number of seconds"},
		"max_age fraction": {`max_age: "1500ms"`, "whole number of seconds"},
		"max_age huge":     {`max_age: "10000h"`, "longer than the limit"},
		"max_age word":     {`max_age: soon`, "duration such as"},
		"acr with space":   {`acr_values: ["a b"]`, "not a usable acr value"},
		"acr twice":        {`acr_values: [a, a]`, "listed twice"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := policy.Parse("p.yaml", []byte("version: 1\nrules:\n  - methods: [\"*\"]\n    "+tc.yaml+"\n"))
			var fe *policy.FieldError
			if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a FieldError containing %q", err, tc.want)
			}
		})
	}
}

// tokenRequest is a step-up token request for the acr value.
func tokenRequest(acr string) client.TokenRequest {
	return client.TokenRequest{Scopes: []string{idpScope}, ACRValues: []string{acr}, BypassCache: true}
}

// TestStepUpMaxAgeCutsOpenStream: because the step-up check is
// time-dependent, an open stream whose token's authentication grows older
// than max_age is refused on its next message with the RFC 9470 challenge
// (a time-independent check would keep passing it until the next event).
func TestStepUpMaxAgeCutsOpenStream(t *testing.T) {
	e := startRaw(t, &policy.Policy{Rules: []policy.Rule{{Methods: []string{"/example.inbox.v1.InboxService/Chat"}, MaxAge: 5 * time.Minute}}}, "127.0.0.1")
	e.idp.SetClaim("auth_time", time.Now().Unix())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.token(t, ""))
	st, err := e.api.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&inboxv1.ChatRequest{Text: "a"}); err != nil {
		t.Fatal(err)
	}
	if m, err := st.Recv(); err != nil || m.GetText() != "a" {
		t.Fatalf("first message: %v %v", m, err)
	}
	e.clock.advance(6 * time.Minute)
	_ = st.Send(&inboxv1.ChatRequest{Text: "b"})
	_, err = st.Recv()
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("after max_age: %v, want the stream cut with Unauthenticated", err)
	}
	ch, ok := challenge.FromError(err, st.Trailer())
	if !ok || !ch.StepUp() || ch.MaxAge != 5*time.Minute {
		t.Fatalf("challenge %+v %v, want the RFC 9470 max_age challenge", ch, ok)
	}
}

// TestStepUpAllowPathDoesNotAllocate: the step-up check runs on every
// stream message (it is time-dependent), so its allow path, with and
// without a step-up rule for the method, must not allocate.
func TestStepUpAllowPathDoesNotAllocate(t *testing.T) {
	eng := newEngine(t, stepUpPolicy([]string{mfaACR}, 5*time.Minute))
	now := time.Now()
	ok := &check.Request{FullMethod: getMessage, Now: now, Claims: &token.Claims{Subject: "s", ACR: mfaACR, AuthTime: now.Add(-time.Minute)}}
	other := &check.Request{FullMethod: "/example.inbox.v1.InboxService/Chat", Now: now, Claims: &token.Claims{Subject: "s"}}
	c := eng.StepUpCheck()
	ctx := context.Background()
	if n := testing.AllocsPerRun(200, func() {
		if c.Check(ctx, ok) != nil || c.Check(ctx, other) != nil {
			panic("denied")
		}
	}); n != 0 {
		t.Fatalf("allow path allocates %v times", n)
	}
}

// BenchmarkStepUpCheckAllow measures the per-message cost the
// time-dependent step-up check adds to open streams: a method with an RFC
// 9470 rule that the token passes, and a method without one.
func BenchmarkStepUpCheckAllow(b *testing.B) {
	eng := newEngine(b, stepUpPolicy([]string{mfaACR}, 5*time.Minute))
	now := time.Now()
	c := eng.StepUpCheck()
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		req  *check.Request
	}{
		{"rule", &check.Request{FullMethod: getMessage, Now: now, Claims: &token.Claims{Subject: "s", ACR: mfaACR, AuthTime: now.Add(-time.Minute)}}},
		{"no-rule", &check.Request{FullMethod: "/example.inbox.v1.InboxService/Chat", Now: now, Claims: &token.Claims{Subject: "s"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if c.Check(ctx, bc.req) != nil {
					b.Fatal("denied")
				}
			}
		})
	}
}

// TestStepUpCheckTimeIndependentFor guards the per-message cost of open
// streams (issue 16 item 2): the step-up check asks to run on every message
// only for methods whose rule has a max_age; acr_values alone, and methods
// without a rule, do not depend on the time. The location and auth-context
// checks never do.
func TestStepUpCheckTimeIndependentFor(t *testing.T) {
	eng := newEngine(t, &policy.Policy{Rules: []policy.Rule{
		{Methods: []string{getMessage}, MaxAge: 5 * time.Minute},
		{Methods: []string{"/example.inbox.v1.InboxService/Chat"}, ACRValues: []string{mfaACR}},
	}})
	ti := func(c check.Check, m string) bool { return c.(check.MethodTimeIndependent).TimeIndependentFor(m) }
	if ti(eng.StepUpCheck(), getMessage) {
		t.Error("a max_age method is reported time-independent")
	}
	if !ti(eng.StepUpCheck(), "/example.inbox.v1.InboxService/Chat") || !ti(eng.StepUpCheck(), "/x.Y/Z") {
		t.Error("an acr_values-only method or a method without a rule is reported time-dependent")
	}
	if !ti(eng.LocationCheck(), getMessage) || !ti(eng.AuthContextCheck(), getMessage) {
		t.Error("the location or auth-context check is reported time-dependent")
	}
}

// TestStepUpMaxAgeAddedByReloadCutsOpenStream: a stream opened while its
// method had no max_age skips the step-up check on messages; a reload that
// adds a max_age must make it run again (the reload is a ChangeNotifier
// change, after which the stream asks TimeIndependentFor again), so the
// stream is cut once auth_time is older than the new max_age.
func TestStepUpMaxAgeAddedByReloadCutsOpenStream(t *testing.T) {
	e := startRaw(t, &policy.Policy{}, "127.0.0.1")
	e.idp.SetClaim("auth_time", time.Now().Unix())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.token(t, ""))
	st, err := e.api.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"a", "b"} { // the second message runs on the skip path
		if err := st.Send(&inboxv1.ChatRequest{Text: text}); err != nil {
			t.Fatal(err)
		}
		if m, err := st.Recv(); err != nil || m.GetText() != text {
			t.Fatalf("message %s: %v %v", text, m, err)
		}
	}
	if err := e.eng.Update(&policy.Policy{Rules: []policy.Rule{{Methods: []string{"/example.inbox.v1.InboxService/Chat"}, MaxAge: 5 * time.Minute}}}); err != nil {
		t.Fatal(err)
	}
	// The first message after the reload runs every check (the reload bumped
	// the stream's generation) and passes: auth_time is fresh.
	if err := st.Send(&inboxv1.ChatRequest{Text: "c"}); err != nil {
		t.Fatal(err)
	}
	if m, err := st.Recv(); err != nil || m.GetText() != "c" {
		t.Fatalf("message c: %v %v", m, err)
	}
	// Nothing changes now but the time: only a stream that asked again
	// which checks are time-dependent runs the step-up check here.
	e.clock.advance(6 * time.Minute)
	_ = st.Send(&inboxv1.ChatRequest{Text: "d"})
	if _, err = st.Recv(); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("after the reload and max_age: %v, want the stream cut with Unauthenticated", err)
	}
}
