// Package inbox implements example.inbox.v1.InboxService, the toy resource
// API that caekit's examples protect: one call of each gRPC shape.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// DefaultInterval is WatchInbox's interval when the request gives none.
const DefaultInterval = 200 * time.Millisecond

// Bounds on requests.
const (
	// MinInterval is the shortest WatchInbox interval accepted.
	MinInterval = 10 * time.Millisecond
	// MaxInterval is the longest WatchInbox interval accepted.
	MaxInterval = time.Minute
	// MaxIDLength bounds GetMessage ids.
	MaxIDLength = 256
)

// SubjectFunc returns the authenticated caller of a call, "" if none.
type SubjectFunc func(ctx context.Context) string

// Service implements inboxv1.InboxServiceServer.
type Service struct {
	inboxv1.UnimplementedInboxServiceServer
	subject SubjectFunc
}

// New returns the service. subject names the caller in responses; nil means
// every caller is anonymous.
func New(subject SubjectFunc) *Service {
	if subject == nil {
		subject = func(context.Context) string { return "" }
	}
	return &Service{subject: subject}
}

// Register registers s on r.
func (s *Service) Register(r grpc.ServiceRegistrar) { inboxv1.RegisterInboxServiceServer(r, s) }

// GetMessage returns a message named by the request.
func (s *Service) GetMessage(ctx context.Context, req *inboxv1.GetMessageRequest) (*inboxv1.GetMessageResponse, error) {
	return s.Message(ctx, req.GetId())
}

// Message returns the message id for the caller of ctx: what GetMessage
// answers on every surface (gRPC, Connect, REST). An id longer than
// MaxIDLength is a codes.InvalidArgument status error.
func (s *Service) Message(ctx context.Context, id string) (*inboxv1.GetMessageResponse, error) {
	if len(id) > MaxIDLength {
		return nil, status.Errorf(codes.InvalidArgument, "id is %d bytes, at most %d", len(id), MaxIDLength)
	}
	if id == "" {
		id = "1"
	}
	sub := s.subject(ctx)
	return &inboxv1.GetMessageResponse{Id: id, Body: fmt.Sprintf("message %s for %s", id, nameOr(sub)), Subject: sub}, nil
}

// WatchInbox sends a message every interval_ms until the client cancels or
// the stream is ended by the server (e.g. by caekit on a revocation).
func (s *Service) WatchInbox(req *inboxv1.WatchInboxRequest, stream grpc.ServerStreamingServer[inboxv1.WatchInboxResponse]) error {
	err := s.Watch(stream.Context(), req.GetIntervalMs(), stream.Send)
	if ctxErr := stream.Context().Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return status.FromContextError(ctxErr).Err()
	}
	return err
}

// Interval returns the watch interval of intervalMs (0 means
// DefaultInterval), or a codes.InvalidArgument status error when it is
// outside [MinInterval, MaxInterval].
func Interval(intervalMs int32) (time.Duration, error) {
	iv := time.Duration(intervalMs) * time.Millisecond
	if intervalMs == 0 {
		iv = DefaultInterval
	}
	if iv < MinInterval || iv > MaxInterval {
		return 0, status.Errorf(codes.InvalidArgument, "interval_ms %d is outside [%d, %d]", intervalMs, MinInterval.Milliseconds(), MaxInterval.Milliseconds())
	}
	return iv, nil
}

// Watch calls send with a new message at once and then every intervalMs
// (see Interval) until ctx is done, when it returns ctx.Err(), or send
// fails, when it returns send's error: what WatchInbox streams on every
// surface (gRPC, Connect, Server-Sent Events).
func (s *Service) Watch(ctx context.Context, intervalMs int32, send func(*inboxv1.WatchInboxResponse) error) error {
	iv, err := Interval(intervalMs)
	if err != nil {
		return err
	}
	sub := nameOr(s.subject(ctx))
	t := time.NewTicker(iv)
	defer t.Stop()
	for seq := int64(1); ; seq++ {
		if err := send(&inboxv1.WatchInboxResponse{Seq: seq, Body: fmt.Sprintf("new mail #%d for %s", seq, sub)}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Chat echoes every message.
func (s *Service) Chat(stream grpc.BidiStreamingServer[inboxv1.ChatRequest, inboxv1.ChatResponse]) error {
	return echo(stream.Recv, stream.Send)
}

// echo sends every received message back until the client closes its side:
// Chat over gRPC and over Connect.
func echo(recv func() (*inboxv1.ChatRequest, error), send func(*inboxv1.ChatResponse) error) error {
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

// Upload counts messages and bytes.
func (s *Service) Upload(stream grpc.ClientStreamingServer[inboxv1.UploadRequest, inboxv1.UploadResponse]) error {
	var n, b int64
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&inboxv1.UploadResponse{Count: n, Bytes: b})
		}
		if err != nil {
			return err
		}
		n++
		b += int64(len(m.GetData()))
	}
}

func nameOr(s string) string {
	if s == "" {
		return "anonymous"
	}
	return s
}
