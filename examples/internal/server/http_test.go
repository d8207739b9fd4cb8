package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/caekit/caekit/examples/internal/idp"
	"github.com/caekit/caekit/examples/internal/server"
	"github.com/caekit/caekit/interceptor/caeconnect"
	"github.com/caekit/caekit/interceptor/caehttp"
	"github.com/caekit/caekit/internal/testkit"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/proto/example/inbox/v1/inboxv1connect"
)

// protocols are the HTTP versions the front door is tested over: HTTP/1.1
// and HTTP/2 without TLS (h2c, prior knowledge), both real loopback servers.
// Each has its own user, so that revoking one's sessions leaves the other's.
var protocols = []struct {
	name  string
	major int
	set   func(*http.Protocols)
	user  string
}{
	{"HTTP/1.1", 1, func(p *http.Protocols) { p.SetHTTP1(true) }, "carol"},
	{"HTTP/2", 2, func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }, "alice"},
}

func httpClient(t *testing.T, set func(*http.Protocols)) *http.Client {
	t.Helper()
	p := new(http.Protocols)
	set(p)
	tr := &http.Transport{Protocols: p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func startHTTP(t *testing.T, logs *testkit.LogBuffer) (*idp.IdP, *server.Server) {
	t.Helper()
	p, err := idp.Listen("127.0.0.1:0", idp.WithPushAuth("Bearer push"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	s := start(t, server.Config{
		Addr: "127.0.0.1:0", EventsAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Issuer: p.Issuer(), Audience: p.Audience(), EventsAuth: "Bearer push",
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err := p.SetPushTargets(s.EventsURL()); err != nil {
		t.Fatal(err)
	}
	return p, s
}

// revoke has the IdP revoke user's sessions and checks that the server
// stored the pushed event (it answers 202 only once stored).
func revoke(ctx context.Context, t *testing.T, p *idp.IdP, user string) {
	t.Helper()
	res, err := p.UserAction(ctx, user, idp.ActionRevokeSessions)
	if err != nil || !res.Delivered() {
		t.Fatalf("revoke %s: %+v %v", user, res, err)
	}
}

func get(t *testing.T, c *http.Client, url, tok string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestHTTPRESTAndMetadata drives GET /v1/messages/{id} and the RFC 9728
// document over real HTTP/1.1 and HTTP/2 (h2c) connections: a request
// without a token is refused with 401 and a problem document, one with a
// token gets the message for its subject, and the decision log has one line
// for each, named by the route pattern.
func TestHTTPRESTAndMetadata(t *testing.T) {
	var logs testkit.LogBuffer
	p, s := startHTTP(t, &logs)
	tok := token(t, p, "carol")
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c := httpClient(t, pr.set)
			resp, body := get(t, c, s.HTTPURL()+"/v1/messages/7", "")
			if resp.ProtoMajor != pr.major {
				t.Fatalf("served over %s, want HTTP/%d", resp.Proto, pr.major)
			}
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatalf("no token: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
			}
			var prob caehttp.Problem
			if err := json.Unmarshal(body, &prob); err != nil || prob.Reason != "TOKEN_INVALID" {
				t.Fatalf("no token: problem %s (%v)", body, err)
			}

			resp, body = get(t, c, s.HTTPURL()+"/v1/messages/7", tok)
			var m server.Message
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &m) != nil || m.Subject != "carol" || m.ID != "7" {
				t.Fatalf("with token: %d %s", resp.StatusCode, body)
			}

			resp, body = get(t, c, s.ResourceMetadataURL(), "")
			var md caehttp.ResourceMetadata
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &md) != nil {
				t.Fatalf("metadata: %d %s", resp.StatusCode, body)
			}
			if md.Resource != s.HTTPURL() || len(md.AuthorizationServers) != 1 || md.AuthorizationServers[0] != p.Issuer() {
				t.Fatalf("metadata %+v, want resource %s and authorization server %s", md, s.HTTPURL(), p.Issuer())
			}
		})
	}
	if s.ResourceMetadataURL() != s.HTTPURL()+caehttp.WellKnownPath {
		t.Errorf("metadata URL %s", s.ResourceMetadataURL())
	}
	sub, _ := p.Subject("carol")
	l := logs.String()
	for _, want := range []string{
		`msg=decision method="GET /v1/messages/{id}" subject=- outcome=deny reason=TOKEN_INVALID code=401`,
		`msg=decision method="GET /v1/messages/{id}" subject=` + sub + ` outcome=allow code=200`,
	} {
		if strings.Count(l, want) != 2 {
			t.Errorf("log lacks 2 × %q:\n%s", want, l)
		}
	}
	if strings.Contains(l, tok[:40]) {
		t.Error("the token was logged")
	}
}

// TestHTTPBadInput: a malformed watch interval is a 400 saying what was wrong.
func TestHTTPBadInput(t *testing.T) {
	var logs testkit.LogBuffer
	p, s := startHTTP(t, &logs)
	tok := token(t, p, "carol")
	c := httpClient(t, protocols[0].set)
	for q, want := range map[string]string{
		"abc":                  `interval_ms \"abc\" is not a 32-bit integer`,
		"5":                    "interval_ms 5 is outside [10, 60000]",
		"99999999999999999999": "at most 16",
	} {
		resp, body := get(t, c, s.HTTPURL()+server.WatchPath+"?interval_ms="+q, tok)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), want) {
			t.Errorf("interval_ms=%s: %d %s, want 400 with %q", q, resp.StatusCode, body, want)
		}
	}
	resp, body := get(t, c, s.HTTPURL()+"/v1/messages/"+strings.Repeat("x", 300), tok)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "id is 300 bytes, at most 256") {
		t.Errorf("long id: %d %s", resp.StatusCode, body)
	}
}

// TestConnectProtocols calls the Inbox service through the front door's
// connect-go handler with each protocol a connect client speaks, over h2c
// (gRPC needs HTTP/2): refused without a token with CodeUnauthenticated,
// answered with one, and a server stream delivers.
func TestConnectProtocols(t *testing.T) {
	var logs testkit.LogBuffer
	p, s := startHTTP(t, &logs)
	tok := token(t, p, "carol")
	hc := httpClient(t, protocols[1].set)
	for name, opt := range map[string]connect.ClientOption{
		"connect": connect.WithProtoJSON(), "grpc": connect.WithGRPC(), "grpcweb": connect.WithGRPCWeb(),
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := inboxv1connect.NewInboxServiceClient(hc, s.HTTPURL(), opt)
			_, err := c.GetMessage(ctx, connect.NewRequest(&inboxv1.GetMessageRequest{Id: "3"}))
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Fatalf("no token: %v", err)
			}
			req := connect.NewRequest(&inboxv1.GetMessageRequest{Id: "3"})
			req.Header().Set("Authorization", "Bearer "+tok)
			resp, err := c.GetMessage(ctx, req)
			if err != nil || resp.Msg.GetSubject() != "carol" {
				t.Fatalf("with token: %v %v", resp, err)
			}
			wreq := connect.NewRequest(&inboxv1.WatchInboxRequest{IntervalMs: 10})
			wreq.Header().Set("Authorization", "Bearer "+tok)
			st, err := c.WatchInbox(ctx, wreq)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				if !st.Receive() {
					t.Fatalf("message %d: %v", i, st.Err())
				}
			}
			_ = st.Close()
		})
	}
	if n := strings.Count(logs.String(), `msg=decision method=/example.inbox.v1.InboxService/GetMessage subject=- outcome=deny reason=TOKEN_INVALID code=Unauthenticated`); n != 3 {
		t.Errorf("%d Connect denials logged, want 3:\n%s", n, logs.String())
	}
}

// TestConnectMessageBound: a Connect message over MaxConnectMessage is
// refused with ResourceExhausted (the handler used to read any size), and
// one under it is counted.
func TestConnectMessageBound(t *testing.T) {
	var logs testkit.LogBuffer
	p, s := startHTTP(t, &logs)
	tok := token(t, p, "carol")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := inboxv1connect.NewInboxServiceClient(httpClient(t, protocols[1].set), s.HTTPURL(), connect.WithGRPC())
	for _, tc := range []struct {
		size int
		code connect.Code
	}{{1 << 10, 0}, {server.MaxConnectMessage + 1, connect.CodeResourceExhausted}} {
		up := c.Upload(ctx)
		up.RequestHeader().Set("Authorization", "Bearer "+tok)
		_ = up.Send(&inboxv1.UploadRequest{Data: make([]byte, tc.size)})
		resp, err := up.CloseAndReceive()
		switch {
		case tc.code == 0 && (err != nil || resp.Msg.GetBytes() != int64(tc.size)):
			t.Errorf("%d bytes: %v %v", tc.size, resp, err)
		case tc.code != 0 && connect.CodeOf(err) != tc.code:
			t.Errorf("%d bytes: %v, want %v", tc.size, err, tc.code)
		}
	}
}

// TestSSECutByRevocation opens GET /v1/inbox/watch over HTTP/1.1 and over
// HTTP/2, reads events, has the IdP push a session revocation for the
// user, and expects the event stream to end (caekit cancels the request);
// the next request gets the claims challenge, which names the RFC 9728
// metadata; the decision log says the stream was cut and why.
func TestSSECutByRevocation(t *testing.T) {
	var logs testkit.LogBuffer
	p, s := startHTTP(t, &logs)
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			tok := token(t, p, pr.user)
			c := httpClient(t, pr.set)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.HTTPURL()+server.WatchPath+"?interval_ms=20", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || resp.ProtoMajor != pr.major {
				t.Fatalf("watch: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Proto)
			}
			events := make(chan server.WatchEvent)
			ended := make(chan error, 1)
			go func() {
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
						var ev server.WatchEvent
						if err := json.Unmarshal([]byte(d), &ev); err != nil {
							ended <- err
							return
						}
						select {
						case events <- ev:
						case <-ctx.Done():
						}
					}
				}
				ended <- sc.Err()
			}()
			for i := int64(1); i <= 2; i++ {
				if ev := <-events; ev.Seq != i || !strings.Contains(ev.Body, pr.user) {
					t.Fatalf("event %d: %+v", i, ev)
				}
			}
			revoke(ctx, t, p, pr.user)
			for done := false; !done; {
				select {
				case <-events: // sent before the cut
				case err := <-ended:
					if ctx.Err() != nil {
						t.Fatalf("the stream was not cut: %v", err)
					}
					done = true
				}
			}
			resp2, body := get(t, c, s.HTTPURL()+"/v1/messages/1", tok)
			wa := resp2.Header.Get("WWW-Authenticate")
			if resp2.StatusCode != http.StatusUnauthorized || !strings.Contains(wa, `error="insufficient_claims"`) ||
				!strings.Contains(wa, `resource_metadata="`+s.ResourceMetadataURL()+`"`) {
				t.Fatalf("after revocation: %d %q %s", resp2.StatusCode, wa, body)
			}
		})
	}
	if n := strings.Count(logs.String(), `method="GET /v1/inbox/watch"`); n < 2 || strings.Count(logs.String(), `outcome=cut reason=SESSION_REVOKED code=200`) != 2 {
		t.Errorf("log lacks two cut lines (%d watch lines):\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), `method="GET /v1/messages/{id}" subject=`); n != 2 || strings.Count(logs.String(), "outcome=challenge reason=SESSION_REVOKED code=401") != 2 {
		t.Errorf("log lacks two challenge lines:\n%s", logs.String())
	}
}

// TestConnectChallengeAfterRevocation: the Connect protocol surfaces the
// same challenge as the REST route, www-authenticate as an HTTP header,
// which caeconnect.ChallengeFromError reads.
func TestConnectChallengeAfterRevocation(t *testing.T) {
	var logs testkit.LogBuffer
	p, s := startHTTP(t, &logs)
	tok := token(t, p, "carol")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	revoke(ctx, t, p, "carol")
	c := inboxv1connect.NewInboxServiceClient(httpClient(t, protocols[0].set), s.HTTPURL())
	req := connect.NewRequest(&inboxv1.GetMessageRequest{})
	req.Header().Set("Authorization", "Bearer "+tok)
	_, err := c.GetMessage(ctx, req)
	ch, cerr := caeconnect.ChallengeFromError(err)
	if cerr != nil || !ch.InsufficientClaims() || ch.ResourceMetadata() != s.ResourceMetadataURL() {
		t.Fatalf("challenge %+v (%v) from %v", ch, cerr, err)
	}
	if !strings.Contains(logs.String(), "outcome=challenge reason=SESSION_REVOKED code=Unauthenticated") {
		t.Errorf("log lacks the Connect challenge:\n%s", logs.String())
	}
}

// TestHTTPNoAuth: with NoAuth the front door serves without caekit, with
// the same decision log line per request, and no RFC 9728 document.
func TestHTTPNoAuth(t *testing.T) {
	var logs testkit.LogBuffer
	s := start(t, server.Config{Addr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", NoAuth: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := httpClient(t, protocols[1].set)
	resp, body := get(t, c, s.HTTPURL()+"/v1/messages/2", "")
	var m server.Message
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &m) != nil || m.Subject != "" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, c, s.HTTPURL()+caehttp.WellKnownPath, ""); resp.StatusCode != http.StatusNotFound || s.ResourceMetadataURL() != "" {
		t.Errorf("NoAuth serves RFC 9728 metadata: %d", resp.StatusCode)
	}
	if want := `msg=decision method="GET /v1/messages/{id}" subject=- outcome=allow code=200`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs.String())
	}
}
