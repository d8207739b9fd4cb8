package interceptor_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/teststore"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

// obsEnv is a server over bufconn whose interceptor chain the test chooses.
type obsEnv struct {
	srv    *interceptor.Server
	store  *revocation.Memory
	inbox  *testkit.Inbox
	client inboxv1.InboxServiceClient
	conn   *grpc.ClientConn
}

// newObsEnv starts a server with the unary and stream interceptors built by
// chain from the caekit Server (so tests can put others around it).
func newObsEnv(t *testing.T, chain func(*interceptor.Server) []grpc.ServerOption, opts ...interceptor.Option) *obsEnv {
	t.Helper()
	e := &obsEnv{store: teststore.Memory(t), inbox: newInbox()}
	s, err := interceptor.New(newValidator(t), append([]interceptor.Option{
		interceptor.WithStore(e.store), interceptor.WithAuthorizationURI(testAuthzURI),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = s
	if chain == nil {
		chain = func(s *interceptor.Server) []grpc.ServerOption { return s.ServerOptions() }
	}
	t.Cleanup(func() { _ = s.Close() }) // last: after the connection is closed and the server stopped
	gs := grpc.NewServer(chain(s)...)
	inboxv1.RegisterInboxServiceServer(gs, e.inbox)
	e.conn = testkit.ServeBufconn(t, gs)
	e.client = inboxv1.NewInboxServiceClient(e.conn)
	return e
}

func (e *obsEnv) get(ctx context.Context) error {
	_, err := e.client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"})
	return err
}

// openChat opens a Chat stream and completes one round trip.
func (e *obsEnv) openChat(t *testing.T, raw string) inboxv1.InboxService_ChatClient {
	t.Helper()
	chat, err := e.client.Chat(withToken(testCtx(t), raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&inboxv1.ChatRequest{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); err != nil {
		t.Fatal(err)
	}
	return chat
}

// collect reads every metric of the reader, by instrument name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// attrKey renders an attribute set as "k=v,k=v" (sorted by key).
func attrKey(s attribute.Set) string {
	var b []string
	for _, kv := range s.ToSlice() {
		b = append(b, string(kv.Key)+"="+kv.Value.Emit())
	}
	return strings.Join(b, ",")
}

// sums returns an int64 sum's values by attribute set.
func sums(t *testing.T, m metricdata.Metrics) map[string]int64 {
	t.Helper()
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is %T, want Sum[int64]", m.Name, m.Data)
	}
	out := map[string]int64{}
	for _, dp := range s.DataPoints {
		out[attrKey(dp.Attributes)] = dp.Value
	}
	return out
}

func gaugeInt(t *testing.T, m metricdata.Metrics) int64 {
	t.Helper()
	g, ok := m.Data.(metricdata.Gauge[int64])
	if !ok || len(g.DataPoints) != 1 {
		t.Fatalf("%s: %#v", m.Name, m.Data)
	}
	return g.DataPoints[0].Value
}

const getMethod = "example.inbox.v1.InboxService/GetMessage"

func TestMetricsDecisions(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	e := newObsEnv(t, nil, interceptor.WithMeterProvider(mp))
	ctx := testCtx(t)

	good := mint(t, tok{sid: "s-ok"})
	for range 3 {
		if err := e.get(withToken(ctx, good)); err != nil {
			t.Fatal(err)
		}
	}
	revoked := mint(t, tok{sid: "s-rev"})
	putSession(t, e.store, "s-rev", revocation.TypePasswordChanged)
	if err := e.get(withToken(ctx, revoked)); statusCode(err) != codes.Unauthenticated {
		t.Fatalf("revoked: %v", err)
	}
	if err := e.get(withToken(ctx, "not-a-jwt")); statusCode(err) != codes.Unauthenticated {
		t.Fatalf("invalid: %v", err)
	}
	if err := e.get(ctx); statusCode(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}

	// A stream: allowed when it opens, then cut by an event.
	chat := e.openChat(t, mint(t, tok{sid: "s-chat"}))
	if a := sums(t, collect(t, reader)[interceptor.MetricStreamsActive]); a[""] != 1 {
		t.Fatalf("active streams: %v, want 1", a)
	}
	putSession(t, e.store, "s-chat", revocation.TypeSessionRevoked)
	if _, err := chat.Recv(); statusCode(err) != codes.Unauthenticated {
		t.Fatalf("stream not cut: %v", err)
	}

	got := collect(t, reader)
	dec := sums(t, got[interceptor.MetricDecisions])
	want := map[string]int64{
		"caekit.outcome=allow,rpc.method=" + getMethod:                               3,
		"caekit.outcome=deny,caekit.reason=PASSWORD_CHANGED,rpc.method=" + getMethod: 1,
		"caekit.outcome=deny,caekit.reason=TOKEN_INVALID,rpc.method=" + getMethod:    2,
		"caekit.outcome=allow,rpc.method=example.inbox.v1.InboxService/Chat":         1,
	}
	if fmt.Sprint(dec) != fmt.Sprint(want) {
		t.Fatalf("decisions:\n got %v\nwant %v", dec, want)
	}
	cuts := sums(t, got[interceptor.MetricStreamCuts])
	if cuts["caekit.reason=SESSION_REVOKED,rpc.method=example.inbox.v1.InboxService/Chat"] != 1 || len(cuts) != 1 {
		t.Fatalf("cuts: %v", cuts)
	}

	h, ok := got[interceptor.MetricCheckDuration].Data.(metricdata.Histogram[float64])
	if !ok || got[interceptor.MetricCheckDuration].Unit != "s" {
		t.Fatalf("duration: %#v", got[interceptor.MetricCheckDuration])
	}
	var n uint64
	for _, dp := range h.DataPoints {
		n += dp.Count
		if mx, ok := dp.Max.Value(); !ok || mx <= 0 || mx > 10 {
			t.Fatalf("implausible duration max %v for %s", mx, attrKey(dp.Attributes))
		}
	}
	if n != 7 {
		t.Fatalf("duration count %d, want 7 (one per decision)", n)
	}

	if v := gaugeInt(t, got[interceptor.MetricStoreEntries]); v != 2 {
		t.Fatalf("store entries %d, want 2", v)
	}
	if v := gaugeInt(t, got[interceptor.MetricStoreHealthy]); v != 1 {
		t.Fatalf("store healthy %d, want 1", v)
	}
	if _, ok := got[interceptor.MetricStoreStaleness]; ok {
		t.Fatal("staleness reported for a store without Staleness()")
	}
	if a := sums(t, got[interceptor.MetricStreamsActive]); a[""] != 0 {
		t.Fatalf("active streams after the cut: %v", a)
	}
}

// stalenessStore is a real Memory that also reports staleness and can turn
// unhealthy, like the Redis store.
type stalenessStore struct {
	*revocation.Memory
	mu    sync.Mutex
	stale time.Duration
}

func (s *stalenessStore) Staleness() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stale
}

func (s *stalenessStore) Health() error {
	if s.Staleness() > time.Minute {
		return revocation.ErrStale
	}
	return nil
}

func TestMetricsStoreGaugesAndActiveStreams(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	st := &stalenessStore{Memory: teststore.Memory(t), stale: 1500 * time.Millisecond}
	s, err := interceptor.New(newValidator(t), interceptor.WithStore(st), interceptor.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, reader)
	g, ok := got[interceptor.MetricStoreStaleness].Data.(metricdata.Gauge[float64])
	if !ok || len(g.DataPoints) != 1 || g.DataPoints[0].Value != 1.5 || got[interceptor.MetricStoreStaleness].Unit != "s" {
		t.Fatalf("staleness: %#v", got[interceptor.MetricStoreStaleness])
	}
	st.mu.Lock()
	st.stale = time.Hour
	st.mu.Unlock()
	if v := gaugeInt(t, collect(t, reader)[interceptor.MetricStoreHealthy]); v != 0 {
		t.Fatalf("healthy %d for a stale store", v)
	}

	// Close unregisters the callbacks: nothing is observed any more.
	s.Close()
	if m, ok := collect(t, reader)[interceptor.MetricStoreStaleness]; ok {
		t.Fatalf("observed after Close: %#v", m)
	}
}

func TestMetricsActiveStreams(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	e := newObsEnv(t, nil, interceptor.WithMeterProvider(mp))
	a := e.openChat(t, mint(t, tok{sid: "s-a"}))
	b := e.openChat(t, mint(t, tok{sid: "s-b"}))
	if v := sums(t, collect(t, reader)[interceptor.MetricStreamsActive])[""]; v != 2 {
		t.Fatalf("active %d, want 2", v)
	}
	_ = a.CloseSend()
	_ = b.CloseSend()
	for _, c := range []inboxv1.InboxService_ChatClient{a, b} {
		if _, err := c.Recv(); err == nil {
			t.Fatal("stream still open")
		}
	}
	if v := sums(t, collect(t, reader)[interceptor.MetricStreamsActive])[""]; v != 0 {
		t.Fatalf("active %d after the streams ended, want 0", v)
	}
}

// Past MaxMetricMethods distinct methods, further methods collapse into
// MethodOther. Unknown methods reach the interceptors only through an
// unknown-service handler, as in a proxy.
func TestMetricsMethodsBounded(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	e := newObsEnv(t, func(s *interceptor.Server) []grpc.ServerOption {
		return append(s.ServerOptions(), grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error { return nil }))
	}, interceptor.WithMeterProvider(mp))
	ctx := withToken(testCtx(t), mint(t, tok{}))
	const extra = 8
	for i := range interceptor.MaxMetricMethods + extra {
		desc := &grpc.StreamDesc{ServerStreams: true}
		st, err := e.conn.NewStream(ctx, desc, fmt.Sprintf("/proxy.Svc/M%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.RecvMsg(new(inboxv1.GetMessageResponse)); !errors.Is(err, io.EOF) {
			t.Fatalf("method %d: %v, want the handler's clean end (EOF)", i, err)
		}
	}
	dec := sums(t, collect(t, reader)[interceptor.MetricDecisions])
	if len(dec) != interceptor.MaxMetricMethods+1 {
		t.Fatalf("%d series, want %d", len(dec), interceptor.MaxMetricMethods+1)
	}
	if v := dec["caekit.outcome=allow,rpc.method="+interceptor.MethodOther]; v != extra {
		t.Fatalf("%s: %d, want %d", interceptor.MethodOther, v, extra)
	}
}

// auditLog is an audit hook that keeps the records it receives.
type auditLog struct {
	mu   sync.Mutex
	recs []interceptor.AuditRecord
}

func (a *auditLog) hook(_ context.Context, r interceptor.AuditRecord) {
	a.mu.Lock()
	a.recs = append(a.recs, r)
	a.mu.Unlock()
}

func (a *auditLog) all() []interceptor.AuditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]interceptor.AuditRecord(nil), a.recs...)
}

func TestAuditHook(t *testing.T) {
	var audit auditLog
	now := time.Now().Truncate(time.Second)
	e := newObsEnv(t, nil, interceptor.WithAuditHook(audit.hook), interceptor.WithClock(func() time.Time { return now }))
	ctx := testCtx(t)

	// Allowed calls are not audited.
	if err := e.get(withToken(ctx, mint(t, tok{sub: "alice", sid: "s-ok", iat: now.Add(-time.Minute)}))); err != nil {
		t.Fatal(err)
	}
	if n := len(audit.all()); n != 0 {
		t.Fatalf("%d records for an allowed call", n)
	}

	// A revoked unary call.
	raw := mint(t, tok{sub: "alice", sid: "s-rev", iat: now.Add(-time.Minute)})
	evTime := now.Add(-time.Second)
	if err := e.store.Put(context.Background(), revocation.Event{ID: "jti-evt-1", Type: revocation.TypeUserDisabled, Subject: revocation.SessionKey(testIssuer, "s-rev"), Time: evTime}); err != nil {
		t.Fatal(err)
	}
	if err := e.get(withToken(ctx, raw)); statusCode(err) != codes.Unauthenticated {
		t.Fatal(err)
	}
	recs := audit.all()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	r := recs[0]
	if r.Phase != interceptor.PhaseUnary || r.Method != inboxv1.InboxService_GetMessage_FullMethodName || r.Subject != "alice" ||
		r.Tenant != testTenant || r.Code != codes.Unauthenticated || r.Reason != caev1.Reason_REASON_USER_DISABLED ||
		r.ReasonName() != "USER_DISABLED" || r.EventID != "jti-evt-1" || !r.EventTime.Equal(evTime) || !r.Time.Equal(now) ||
		r.TokenHash != token.Hash(raw) || r.Peer == nil || r.Description == "" {
		t.Fatalf("unary record: %+v", r)
	}

	// A stream refused when it opens.
	chat, err := e.client.Chat(withToken(ctx, raw))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); statusCode(err) != codes.Unauthenticated {
		t.Fatal(err)
	}
	if recs = audit.all(); len(recs) != 2 || recs[1].Phase != interceptor.PhaseStreamOpen || recs[1].EventID != "jti-evt-1" {
		t.Fatalf("stream-open record: %+v", recs)
	}

	// A stream cut mid-flight.
	live := mint(t, tok{sub: "bob", sid: "s-live", iat: now.Add(-time.Minute)})
	chat = e.openChat(t, live)
	if err := e.store.Put(context.Background(), revocation.Event{ID: "jti-evt-2", Type: revocation.TypeSessionRevoked, Subject: revocation.SessionKey(testIssuer, "s-live"), Time: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); statusCode(err) != codes.Unauthenticated {
		t.Fatalf("stream not cut: %v", err)
	}
	recs = audit.all()
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	r = recs[2]
	if r.Phase != interceptor.PhaseMidStream || r.Method != inboxv1.InboxService_Chat_FullMethodName || r.Subject != "bob" ||
		r.Reason != caev1.Reason_REASON_SESSION_REVOKED || r.EventID != "jti-evt-2" || r.TokenHash != token.Hash(live) || r.Peer == nil {
		t.Fatalf("mid-stream record: %+v", r)
	}

	// An invalid token: no subject, the hash of what was sent.
	if err := e.get(withToken(ctx, "garbage.token.value")); statusCode(err) != codes.Unauthenticated {
		t.Fatal(err)
	}
	r = audit.all()[3]
	if r.Subject != "" || r.Reason != caev1.Reason_REASON_TOKEN_INVALID || r.TokenHash != token.Hash("garbage.token.value") || r.EventID != "" {
		t.Fatalf("invalid-token record: %+v", r)
	}
	for _, r := range audit.all() {
		if s := fmt.Sprintf("%+v", r); strings.Contains(s, raw) || strings.Contains(s, live) || strings.Contains(s, "garbage.token.value") {
			t.Fatalf("a token leaked into an audit record: %s", s)
		}
	}
}

// syncWriter is a goroutine-safe log sink that can pick out JSON log lines.
type syncWriter struct{ testkit.LogBuffer }

// lines returns the JSON log lines with the given msg.
func (w *syncWriter) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(w.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("bad log line %q: %v", sc.Text(), err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// finished returns the logging interceptor's "finished call" line for method.
func (w *syncWriter) finished(t *testing.T, method string) map[string]any {
	t.Helper()
	var last map[string]any
	for _, m := range w.lines(t, "finished call") {
		if m["grpc.method"] == method {
			last = m
		}
	}
	if last == nil {
		t.Fatalf("no finished-call line for %s in:\n%s", method, w.String())
	}
	return last
}

func slogLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

func wantFields(t *testing.T, line map[string]any, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, _ := line[k].(string); got != v {
			t.Errorf("%s = %q, want %q (line %v)", k, line[k], v, line)
		}
	}
}

// A go-grpc-middleware logging interceptor chained before caekit's logs the
// caekit fields of allowed calls, denials and streams cut mid-flight; no
// token ever reaches a log line, neither its nor the kit's own.
func TestLoggingFieldsForUpstreamLoggingInterceptor(t *testing.T) {
	var out syncWriter
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	lopts := []logging.Option{logging.WithLogOnEvents(logging.StartCall, logging.FinishCall, logging.PayloadReceived, logging.PayloadSent)}
	e := newObsEnv(t, func(s *interceptor.Server) []grpc.ServerOption {
		return []grpc.ServerOption{
			grpc.ChainUnaryInterceptor(logging.UnaryServerInterceptor(slogLogger(logger), lopts...), s.UnaryServerInterceptor()),
			grpc.ChainStreamInterceptor(logging.StreamServerInterceptor(slogLogger(logger), lopts...), s.StreamServerInterceptor()),
		}
	}, interceptor.WithLogger(logger))
	ctx := testCtx(t)

	good := mint(t, tok{sub: "alice", sid: "s-ok"})
	if err := e.get(withToken(ctx, good)); err != nil {
		t.Fatal(err)
	}
	wantFields(t, out.finished(t, "GetMessage"), map[string]string{
		interceptor.FieldSubject: "alice", interceptor.FieldTenant: testTenant, interceptor.FieldDecision: "allow", "grpc.code": "OK",
	})

	revoked := mint(t, tok{sub: "carol", sid: "s-rev"})
	putSession(t, e.store, "s-rev", revocation.TypePasswordChanged)
	if err := e.get(withToken(ctx, revoked)); statusCode(err) != codes.Unauthenticated {
		t.Fatal(err)
	}
	wantFields(t, out.finished(t, "GetMessage"), map[string]string{
		interceptor.FieldSubject: "carol", interceptor.FieldDecision: "deny", interceptor.FieldReason: "PASSWORD_CHANGED", "grpc.code": "Unauthenticated",
	})

	forged := good[:strings.LastIndexByte(good, '.')] + ".AAAA"
	if err := e.get(withToken(ctx, forged)); statusCode(err) != codes.Unauthenticated {
		t.Fatal(err)
	}
	wantFields(t, out.finished(t, "GetMessage"), map[string]string{
		interceptor.FieldSubject: "", interceptor.FieldDecision: "deny", interceptor.FieldReason: "TOKEN_INVALID",
	})

	// A stream: allowed, then cut mid-flight; the finished-call line says deny.
	live := mint(t, tok{sub: "dave", sid: "s-live"})
	chat := e.openChat(t, live)
	putSession(t, e.store, "s-live", revocation.TypeSessionRevoked)
	if _, err := chat.Recv(); statusCode(err) != codes.Unauthenticated {
		t.Fatalf("stream not cut: %v", err)
	}
	e.waitInboxReturned(t, "chat")
	wantFields(t, out.finished(t, "Chat"), map[string]string{
		interceptor.FieldSubject: "dave", interceptor.FieldDecision: "deny", interceptor.FieldReason: "SESSION_REVOKED", "grpc.code": "Unauthenticated",
	})
	// Lines logged while the stream was allowed said so.
	var sawAllow bool
	for _, l := range out.lines(t, "request received") {
		if l["grpc.method"] == "Chat" && l[interceptor.FieldDecision] == "allow" && l[interceptor.FieldSubject] == "dave" {
			sawAllow = true
		}
	}
	if !sawAllow {
		t.Errorf("no allowed request-received line for Chat:\n%s", out.String())
	}

	// The kit's own denial lines carry the same field names.
	kit := out.lines(t, "caekit: stream ended")
	if len(kit) != 1 {
		t.Fatalf("kit lines: %v", kit)
	}
	wantFields(t, kit[0], map[string]string{interceptor.FieldSubject: "dave", interceptor.FieldReason: "SESSION_REVOKED", "phase": "mid_stream", "token": token.Hash(live)})

	all := out.String()
	for _, raw := range []string{good, revoked, forged, live} {
		if strings.Contains(all, raw) || strings.Contains(all, raw[strings.LastIndexByte(raw, '.')+1:]) {
			t.Fatalf("a token leaked into the logs:\n%s", all)
		}
	}
}

// With WithInjectLoggingFields, a logging interceptor chained after caekit's
// sees the fields of allowed calls; WithoutLoggingFields sets none.
func TestLoggingFieldsInjectedAndDisabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  interceptor.Option
		want string
	}{
		{"inject", interceptor.WithInjectLoggingFields(), "alice"},
		{"without", interceptor.WithoutLoggingFields(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out syncWriter
			logger := slog.New(slog.NewJSONHandler(&out, nil))
			inner := tc.name == "inject"
			e := newObsEnv(t, func(s *interceptor.Server) []grpc.ServerOption {
				li := logging.UnaryServerInterceptor(slogLogger(logger))
				if inner {
					return []grpc.ServerOption{grpc.ChainUnaryInterceptor(s.UnaryServerInterceptor(), li)}
				}
				return []grpc.ServerOption{grpc.ChainUnaryInterceptor(li, s.UnaryServerInterceptor())}
			}, tc.opt)
			if err := e.get(withToken(testCtx(t), mint(t, tok{sub: "alice"}))); err != nil {
				t.Fatal(err)
			}
			got, present := out.finished(t, "GetMessage")[interceptor.FieldSubject]
			if tc.want == "" && present {
				t.Fatalf("fields set despite WithoutLoggingFields: %v", got)
			}
			if tc.want != "" && got != tc.want {
				t.Fatalf("subject %v, want %q", got, tc.want)
			}
		})
	}
}

// waitInboxReturned waits until the named handler of the test service returned.
func (e *obsEnv) waitInboxReturned(t *testing.T, name string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case n := <-e.inbox.Returned:
			if n == name {
				return
			}
		case <-timeout:
			t.Fatalf("handler %s did not return", name)
		}
	}
}
