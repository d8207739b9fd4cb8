package testkit

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// NoSubject is the Subject GetMessage reports when the caller is unknown.
const NoSubject = "<none>"

// DefaultWatchEvery is WatchInbox's interval when neither the request nor
// Inbox.WatchEvery names one.
const DefaultWatchEvery = 200 * time.Millisecond

// Inbox is the InboxService that caekit's tests call through the
// interceptors. It echoes what it is sent and records what happened to its
// handlers, so that a test can prove a cut stream's handler really ended.
//
// Use it by pointer; set the fields before serving it.
type Inbox struct {
	inboxv1.UnimplementedInboxServiceServer

	// Subject reads the authenticated caller's subject from a handler's
	// context. Tests wrap interceptor.ClaimsFromContext; the kit cannot
	// import the interceptor itself (its tests import the kit). Nil: the
	// caller is never known.
	Subject func(context.Context) (string, bool)
	// RequireSubject makes GetMessage fail with codes.Internal when Subject
	// finds no caller: the interceptor let a call through without claims.
	RequireSubject bool
	// WatchEvery is WatchInbox's interval when the request's interval_ms is
	// not positive; zero means DefaultWatchEvery.
	WatchEvery time.Duration
	// Returned, if not nil, receives the name ("watch", "chat", "upload") of
	// each streaming handler as it returns; a full channel drops the name.
	Returned chan string

	// CtxDone counts the streaming handlers that returned with their
	// context cancelled.
	CtxDone atomic.Int32
	// Uploaded counts the Upload messages the handler received (applied).
	Uploaded atomic.Int64
}

// NewInbox returns an Inbox whose Returned channel holds 64 names.
func NewInbox() *Inbox { return &Inbox{Returned: make(chan string, 64)} }

func (s *Inbox) note(name string, ctx context.Context) {
	if ctx.Err() != nil {
		s.CtxDone.Add(1)
	}
	if s.Returned == nil {
		return
	}
	select {
	case s.Returned <- name:
	default:
	}
}

// GetMessage greets the caller: Body is "hello <subject>" ("hello" when the
// caller is unknown) and Subject is the caller's subject, or NoSubject.
func (s *Inbox) GetMessage(ctx context.Context, r *inboxv1.GetMessageRequest) (*inboxv1.GetMessageResponse, error) {
	sub, ok := "", false
	if s.Subject != nil {
		sub, ok = s.Subject(ctx)
	}
	if !ok {
		if s.RequireSubject {
			return nil, status.Error(codes.Internal, "no claims in the handler context")
		}
		return &inboxv1.GetMessageResponse{Id: r.GetId(), Body: "hello", Subject: NoSubject}, nil
	}
	return &inboxv1.GetMessageResponse{Id: r.GetId(), Body: "hello " + sub, Subject: sub}, nil
}

// WatchInbox sends a numbered message every interval_ms (or WatchEvery)
// until the stream's context ends.
func (s *Inbox) WatchInbox(r *inboxv1.WatchInboxRequest, st grpc.ServerStreamingServer[inboxv1.WatchInboxResponse]) error {
	defer s.note("watch", st.Context())
	iv := time.Duration(r.GetIntervalMs()) * time.Millisecond
	if iv <= 0 {
		iv = s.WatchEvery
	}
	if iv <= 0 {
		iv = DefaultWatchEvery
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for seq := int64(1); ; seq++ {
		if err := st.Send(&inboxv1.WatchInboxResponse{Seq: seq, Body: "m"}); err != nil {
			return err
		}
		select {
		case <-st.Context().Done():
			return st.Context().Err()
		case <-t.C:
		}
	}
}

// Chat echoes every message. It deliberately ignores its context: between
// messages it sits in Recv until Recv fails (the stream is idle, its handler
// blocked in RecvMsg), and it ends cleanly when the client closes its side.
func (s *Inbox) Chat(st grpc.BidiStreamingServer[inboxv1.ChatRequest, inboxv1.ChatResponse]) error {
	defer s.note("chat", st.Context())
	return EchoChat(st.Recv, st.Send)
}

// EchoChat is the Chat method's loop over any transport's bidirectional
// stream (a gRPC stream's Recv and Send, a connect.BidiStream's Receive and
// Send): it sends back the text of every message recv returns, returns nil
// when recv reports io.EOF (the client closed its side), and returns any
// other error of recv or send.
func EchoChat(recv func() (*inboxv1.ChatRequest, error), send func(*inboxv1.ChatResponse) error) error {
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := send(&inboxv1.ChatResponse{Text: m.GetText()}); err != nil {
			return err
		}
	}
}

// Upload counts the messages and bytes it receives (each message also in
// Uploaded, as it arrives) and answers with both totals.
func (s *Inbox) Upload(st grpc.ClientStreamingServer[inboxv1.UploadRequest, inboxv1.UploadResponse]) error {
	defer s.note("upload", st.Context())
	var n, b int64
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return st.SendAndClose(&inboxv1.UploadResponse{Count: n, Bytes: b})
		}
		if err != nil {
			return err
		}
		n++
		b += int64(len(m.GetData()))
		s.Uploaded.Add(1)
	}
}

// ClaimsSubject adapts a claims reader such as interceptor.ClaimsFromContext
// to Inbox.Subject, given how to read the subject from the claims. subject
// is called only when from reports claims.
func ClaimsSubject[C any](from func(context.Context) (C, bool), subject func(C) string) func(context.Context) (string, bool) {
	return func(ctx context.Context) (string, bool) {
		c, ok := from(ctx)
		if !ok {
			return "", false
		}
		return subject(c), true
	}
}
