package client_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

func TestServerStreamChallengedBeforeFirstResponseReopens(t *testing.T) {
	e := newEnv(t, envConfig{})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	e.revoke()
	before := e.sends.Load()
	st, err := e.api.WatchInbox(e.ctx(), &inboxv1.WatchInboxRequest{IntervalMs: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		if m.GetSeq() != int64(i+1) {
			t.Fatalf("seq %d, want %d", m.GetSeq(), i+1)
		}
	}
	if got := e.sends.Load() - before; got != 2 {
		t.Fatalf("stream opens = %d, want 2", got)
	}
	if e.idp.Count() != 2 || e.obs.count(client.EventRetry) != 1 {
		t.Fatalf("token requests %d, retries %d", e.idp.Count(), e.obs.count(client.EventRetry))
	}
}

func TestServerStreamChallengedAfterFirstResponseSurfacesAndRefreshes(t *testing.T) {
	e := newEnv(t, envConfig{})
	st, err := e.api.WatchInbox(e.ctx(), &inboxv1.WatchInboxRequest{IntervalMs: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	e.revoke()
	for {
		_, err = st.Recv()
		if err != nil {
			break
		}
	}
	ch, xerr := challenge.Extract(err)
	ok := xerr == nil
	if status.Code(err) != codes.Unauthenticated || !ok || !ch.InsufficientClaims() {
		t.Fatalf("err = %v, want the claims challenge", err)
	}
	if e.sends.Load() != 1 {
		t.Fatalf("stream re-opened after a response: %d opens", e.sends.Load())
	}
	// A new token is fetched anyway (on its own goroutine, so the error
	// reached the application at once): the application's next call waits
	// for that one fetch and succeeds without another challenge.
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	if e.idp.Count() != 2 || e.obs.count(client.EventChallenge) != 1 {
		t.Fatalf("next call needed %d token requests, %d challenges", e.idp.Count(), e.obs.count(client.EventChallenge))
	}
}

func upload(t *testing.T, e *env, n int) (*inboxv1.UploadResponse, error) {
	t.Helper()
	st, err := e.api.Upload(e.ctx())
	if err != nil {
		return nil, err
	}
	for i := range n {
		if err := st.Send(&inboxv1.UploadRequest{Data: []byte(strings.Repeat("x", i+1))}); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
	}
	return st.CloseAndRecv()
}

func TestClientStreamReplayWithinBuffer(t *testing.T) {
	e := newEnv(t, envConfig{clientOpts: []client.Option{client.WithStreamReplayBuffer(8, 1<<10)}})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	e.revoke()
	resp, err := upload(t, e, 5)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetCount() != 5 || resp.GetBytes() != 1+2+3+4+5 {
		t.Fatalf("server saw %d messages, %d bytes; want all 5 replayed", resp.GetCount(), resp.GetBytes())
	}
	if e.idp.Count() != 2 || e.obs.count(client.EventRetry) != 1 {
		t.Fatalf("token requests %d retries %d", e.idp.Count(), e.obs.count(client.EventRetry))
	}
}

func TestClientStreamPastBufferFailsButRefreshes(t *testing.T) {
	e := newEnv(t, envConfig{clientOpts: []client.Option{client.WithStreamReplayBuffer(2, 1<<10)}})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	e.revoke()
	_, err := upload(t, e, 5)
	if ch, xerr := challenge.Extract(err); xerr != nil || !ch.InsufficientClaims() {
		t.Fatalf("err = %v, want the challenge", err)
	}
	if e.obs.count(client.EventRetry) != 0 || e.obs.count(client.EventNotRetried) != 1 {
		t.Fatalf("retries %d not-retried %d", e.obs.count(client.EventRetry), e.obs.count(client.EventNotRetried))
	}
	// Refreshed: the next upload works with the cached new token.
	resp, err := upload(t, e, 5)
	if err != nil || resp.GetCount() != 5 {
		t.Fatalf("next upload: %v %v", resp, err)
	}
	if e.idp.Count() != 2 {
		t.Fatalf("token requests = %d, want 2", e.idp.Count())
	}
}

func TestClientStreamByteLimit(t *testing.T) {
	e := newEnv(t, envConfig{clientOpts: []client.Option{client.WithStreamReplayBuffer(100, 8)}})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	e.revoke()
	if _, err := upload(t, e, 5); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("err = %v, want Unauthenticated past the byte limit", err)
	}
}

func TestBidiStreamChallengedAtOpenReplays(t *testing.T) {
	e := newEnv(t, envConfig{})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	e.revoke()
	st, err := e.api.Chat(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "b"} {
		if err := st.Send(&inboxv1.ChatRequest{Text: s}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"a", "b"} {
		m, err := st.Recv()
		if err != nil || m.GetText() != want {
			t.Fatalf("recv %q: %v %v", want, m, err)
		}
	}
	// After the first response the stream is a plain stream.
	if err := st.Send(&inboxv1.ChatRequest{Text: "c"}); err != nil {
		t.Fatal(err)
	}
	if m, err := st.Recv(); err != nil || m.GetText() != "c" {
		t.Fatalf("recv c: %v %v", m, err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	if e.idp.Count() != 2 {
		t.Fatalf("token requests %d", e.idp.Count())
	}
}

func TestStreamReplayDisabled(t *testing.T) {
	e := newEnv(t, envConfig{clientOpts: []client.Option{client.WithStreamReplayBuffer(0, 0)}})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	e.revoke()
	if _, err := upload(t, e, 1); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("err = %v", err)
	}
	if resp, err := upload(t, e, 1); err != nil || resp.GetCount() != 1 {
		t.Fatalf("next upload %v %v", resp, err)
	}
}
