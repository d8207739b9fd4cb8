package idp_test

// End-to-end tests of issue 12 item 2 (the same-second problem) over real
// connections: the dev IdP over HTTP in each of its nbf modes, the example
// server (caekit's gRPC interceptors, its SSF push receiver), caekit's own
// client, and the Azure SDK for Go's unchanged BearerTokenPolicy against an
// HTTP resource that speaks the same challenge.
//
// The IdP issues and dates events by the wall clock. The tests do not depend
// on where in a second they run: every event is dated at the current second
// (the worst case, since the token being replaced may be from that same
// second), and what they assert holds wherever in the second the event falls.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/examples/internal/app"
	"github.com/caekit/caekit/examples/internal/idp"
	"github.com/caekit/caekit/examples/internal/server"
	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/token"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

var allModes = []idp.NotBeforeMode{idp.NotBeforeHonor, idp.NotBeforeIgnore, idp.NotBeforeWait}

type sameSecondEnv struct {
	idp *idp.IdP
	srv *server.Server
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newSameSecondEnv starts the dev IdP in mode, with opts, and the example
// server it pushes its SETs to.
func newSameSecondEnv(t *testing.T, mode idp.NotBeforeMode, opts ...idp.Option) *sameSecondEnv {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	secret := "Bearer " + hex.EncodeToString(b)
	p := start(t, append([]idp.Option{idp.WithNotBeforeMode(mode), idp.WithPushAuth(secret)}, opts...)...)
	srv, err := server.Start(testContext(t), server.Config{
		Addr: "127.0.0.1:0", EventsAddr: "127.0.0.1:0",
		Issuer: p.Issuer(), Audience: p.Audience(), EventsAuth: secret, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if err := p.SetPushTargets(srv.EventsURL()); err != nil {
		t.Fatal(err)
	}
	return &sameSecondEnv{idp: p, srv: srv}
}

// revoke revokes alice's sessions at the IdP, which dates the event at the
// current second and pushes it to the server.
func (e *sameSecondEnv) revoke(t *testing.T) *idp.AdminResult {
	t.Helper()
	res, err := e.idp.UserAction(testContext(t), "alice", idp.ActionRevokeSessions)
	if err != nil || !res.Delivered() {
		t.Fatalf("revoke: %v %+v", err, res)
	}
	return res
}

// rawCall calls GetMessage with raw as the bearer token, without caekit's
// client: no retry, the server's answer as is.
func (e *sameSecondEnv) rawCall(t *testing.T, raw string) (error, metadata.MD) {
	t.Helper()
	cc, err := grpc.NewClient(e.srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var trailer metadata.MD
	ctx := metadata.AppendToOutgoingContext(testContext(t), "authorization", "Bearer "+raw)
	_, err = inboxv1.NewInboxServiceClient(cc).GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"}, grpc.Trailer(&trailer))
	return err, trailer
}

// aliceToken gets a CAE token for alice straight from the token endpoint.
func aliceToken(t *testing.T, p *idp.IdP, claims string) string {
	t.Helper()
	code, m := tokenReq(t, p, password("alice", claims))
	if code != http.StatusOK {
		t.Fatalf("token: %d %v", code, m)
	}
	return m["access_token"].(string)
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

// TestSameSecondCaekitClientRecovers: in every IdP mode, caekit's client
// answers a revocation challenge dated at the current second with a single
// retry that succeeds (before the fix, mode honor got a token with nbf = S
// that was refused again, and the IdP waited in every mode, hiding it), and
// the token issued before the event is refused, with the challenge asking
// for the second after the event.
func TestSameSecondCaekitClientRecovers(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			e := newSameSecondEnv(t, mode)
			ctx := testContext(t)
			c, err := app.Dial(ctx, app.Config{Server: e.srv.Addr(), IdP: e.idp.Issuer(), User: "alice", Password: idp.Password})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Inbox.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"}); err != nil {
				t.Fatalf("first call: %v", err)
			}
			before := aliceToken(t, e.idp, cp1) // issued before the event, by the same IdP
			c.TakeEvents()

			res := e.revoke(t)
			if _, err := c.Inbox.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"}); err != nil {
				t.Fatalf("call after the event (event second %d): %v", res.EventTime, err)
			}
			evs := c.TakeEvents()
			if count(evs, app.KindChallenge) != 1 || count(evs, app.KindRetry) != 1 || count(evs, app.KindNotRetried) != 0 {
				t.Fatalf("events %v: want one challenge and one successful retry", evs)
			}
			info, err := c.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ev := revocation.Event{Time: time.Unix(res.EventTime, 0)}
			if ev.RevokesToken(info.IssuedAt, info.NotBefore) {
				t.Fatalf("new token iat %d nbf %d is revoked by the event at %d", info.IssuedAt.Unix(), info.NotBefore.Unix(), res.EventTime)
			}

			// Safety: the token issued before the event is refused.
			err, trailer := e.rawCall(t, before)
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("token issued before the event: %v, want Unauthenticated", err)
			}
			ch, perr := challenge.Parse(trailer.Get(challenge.MetadataKey)...)
			if perr != nil {
				t.Fatal(perr)
			}
			if want := challenge.NotBeforeClaims(time.Unix(res.EventTime+1, 0)); ch.Claims != want {
				t.Fatalf("challenge claims %s, want %s", ch.Claims, want)
			}
		})
	}
}

// TestSameSecondPreMintedTokenRevoked: a client that asked an IdP honouring
// nbf (mode honor) for a token valid only from 40 s after issue, hoping to
// outlive an event, gains at most revocation.NotBeforeTrust: an event dated
// 10 s after the token's iat revokes it. The IdP's clock runs 10 s behind
// this host's, so the token is issued "10 s before" the event without the
// test waiting.
func TestSameSecondPreMintedTokenRevoked(t *testing.T) {
	behind := func() time.Time { return time.Now().Add(-10 * time.Second) }
	e := newSameSecondEnv(t, idp.NotBeforeHonor, idp.WithClock(behind))
	minted := behind()
	raw := aliceToken(t, e.idp, `{"access_token":{"xms_cc":{"values":["cp1"]},"nbf":{"essential":true,"value":"`+
		jsonInt(minted.Unix()+40)+`"}}}`)
	if err, _ := e.rawCall(t, raw); err != nil {
		t.Fatalf("the pre-minted token is not usable before any event (nbf within the validator's leeway): %v", err)
	}
	sub, _ := e.idp.Subject("alice")
	if err := e.srv.Store().Put(testContext(t), revocation.Event{
		ID: "evt-pre-mint", Type: revocation.TypeSessionRevoked,
		Subject: revocation.IssuerSubjectKey(e.idp.Issuer(), sub), Time: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	if err, _ := e.rawCall(t, raw); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("pre-minted token (iat %d, nbf %d) after an event 10 s later: %v, want refused", minted.Unix(), minted.Unix()+40, err)
	}
}

// azCredential is an azcore.TokenCredential for alice at the dev IdP over
// HTTP. Like azidentity with EnableCAE it declares cp1 itself and merges it
// with the challenge's claims (MSAL's ClaimsRequest merge).
type azCredential struct {
	tokenURL string
	mu       sync.Mutex
	claims   []string // the Claims of every GetToken, in order
}

func (c *azCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	c.claims = append(c.claims, o.Claims)
	c.mu.Unlock()
	claims, err := challenge.MergeClaims(o.Claims, "cp1")
	if err != nil {
		return azcore.AccessToken{}, err
	}
	form := password("alice", claims)
	form.Set("scope", strings.Join(o.Scopes, " "))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return azcore.AccessToken{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	defer resp.Body.Close()
	var m struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error_description"`
	}
	if err := jsonDecode(resp.Body, &m); err != nil || m.AccessToken == "" {
		return azcore.AccessToken{}, fmt.Errorf("token endpoint: HTTP %d: %s (%v)", resp.StatusCode, m.Error, err)
	}
	return azcore.AccessToken{Token: m.AccessToken, ExpiresOn: time.Now().Add(time.Duration(m.ExpiresIn) * time.Second)}, nil
}

// resource is an HTTP API protected like the gRPC server: the same token
// validation, the same store (the example server's, fed by the IdP's
// pushes) and the same challenge, rendered as an HTTP 401 with the
// www-authenticate value the gRPC interceptor sends in its trailer.
type resource struct {
	v     *token.Validator
	store revocation.Store
	authz string

	mu       sync.Mutex
	statuses []int
	tokens   []string
}

func (rs *resource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	code := rs.serve(w, r.Context(), raw, ok)
	rs.mu.Lock()
	rs.statuses = append(rs.statuses, code)
	rs.tokens = append(rs.tokens, raw)
	rs.mu.Unlock()
}

func (rs *resource) serve(w http.ResponseWriter, ctx context.Context, raw string, ok bool) int {
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return http.StatusUnauthorized
	}
	cl, err := rs.v.Validate(ctx, raw)
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return http.StatusUnauthorized
	}
	for _, k := range cl.Keys() {
		if ev, found := rs.store.Lookup(k); found && ev.RevokesToken(cl.IssuedAt, cl.NotBefore) {
			d := interceptor.RevocationDenial(ev, cl.IssuedAt)
			ch := &challenge.Challenge{AuthorizationURI: rs.authz, Claims: d.Claims, Reason: d.Reason, EventTime: d.EventTime}
			w.Header().Set("WWW-Authenticate", ch.Header())
			w.WriteHeader(http.StatusUnauthorized)
			return http.StatusUnauthorized
		}
	}
	_, _ = io.WriteString(w, "hello "+cl.Subject)
	return http.StatusOK
}

// TestSameSecondAzureSDKRecovers: the Azure SDK for Go's BearerTokenPolicy,
// unchanged, retries a CAE challenge once with the challenge's claims and
// without waiting. Against an IdP that honours the requested nbf (a) or
// waits for it (c), that single retry succeeds for an event dated at the
// current second. (Against mode ignore (b) it succeeds only when the IdP's
// second has turned by the time it issues: the SDK does not wait, which is
// why caekit's client does.)
func TestSameSecondAzureSDKRecovers(t *testing.T) {
	for _, mode := range []idp.NotBeforeMode{idp.NotBeforeHonor, idp.NotBeforeWait} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newSameSecondEnv(t, mode)
			ctx := testContext(t)
			v, err := token.NewValidator(ctx, token.WithIssuer(e.idp.Issuer()), token.WithAudience(e.idp.Audience()),
				token.WithDiscovery(e.idp.Issuer()), token.WithInsecureHTTP(), token.WithLogger(quiet()))
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			rs := &resource{v: v, store: e.srv.Store(), authz: e.idp.Issuer() + "/authorize"}
			hs := httptest.NewServer(rs)
			defer hs.Close()

			cred := &azCredential{tokenURL: e.idp.TokenURL()}
			bearer := runtime.NewBearerTokenPolicy(cred, []string{e.idp.Audience() + "/.default"},
				&policy.BearerTokenOptions{InsecureAllowCredentialWithHTTP: true})
			pl := runtime.NewPipeline("caekit-test", "v0.0.0", runtime.PipelineOptions{PerRetry: []policy.Policy{bearer}},
				&policy.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}})
			get := func() int {
				t.Helper()
				req, err := runtime.NewRequest(ctx, http.MethodGet, hs.URL+"/inbox/1")
				if err != nil {
					t.Fatal(err)
				}
				resp, err := pl.Do(req)
				if err != nil {
					t.Fatalf("azcore pipeline: %v", err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				return resp.StatusCode
			}
			if code := get(); code != http.StatusOK {
				t.Fatalf("first request: HTTP %d", code)
			}

			res := e.revoke(t)
			if code := get(); code != http.StatusOK {
				t.Fatalf("request after the event (second %d): HTTP %d, want 200 after the SDK's single retry", res.EventTime, code)
			}
			rs.mu.Lock()
			statuses, tokens := append([]int(nil), rs.statuses...), append([]string(nil), rs.tokens...)
			rs.mu.Unlock()
			if want := []int{200, 401, 200}; !slices.Equal(statuses, want) {
				t.Fatalf("resource answered %v, want %v (one challenge, one retry)", statuses, want)
			}
			cred.mu.Lock()
			claims := append([]string(nil), cred.claims...)
			cred.mu.Unlock()
			wantClaims := challenge.NotBeforeClaims(time.Unix(res.EventTime+1, 0))
			if len(claims) != 2 || claims[0] != "" || claims[1] != wantClaims {
				t.Fatalf("GetToken claims %q, want [\"\" %q]: the SDK must parse the challenge", claims, wantClaims)
			}

			// The HTTP challenge is the gRPC interceptor's www-authenticate
			// value for the same token, byte for byte.
			err, trailer := e.rawCall(t, tokens[1])
			if status.Code(err) != codes.Unauthenticated || len(trailer.Get(challenge.MetadataKey)) != 1 {
				t.Fatalf("gRPC with the revoked token: %v %v", err, trailer)
			}
			grpcHeader := trailer.Get(challenge.MetadataKey)[0]
			ch := &challenge.Challenge{AuthorizationURI: rs.authz, Claims: wantClaims}
			if grpcHeader != ch.Header() {
				t.Fatalf("gRPC www-authenticate %s differs from the HTTP one %s", grpcHeader, ch.Header())
			}
		})
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(v) }
