package inbox

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"google.golang.org/grpc/status"

	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/proto/example/inbox/v1/inboxv1connect"
)

// Connect returns s as a connect-go handler (inboxv1connect), for the
// Connect, gRPC and gRPC-Web protocols: the same answers as the gRPC service.
func (s *Service) Connect() inboxv1connect.InboxServiceHandler { return connectService{s} }

type connectService struct{ s *Service }

// GetMessage answers as Service.GetMessage does.
func (c connectService) GetMessage(ctx context.Context, req *connect.Request[inboxv1.GetMessageRequest]) (*connect.Response[inboxv1.GetMessageResponse], error) {
	m, err := c.s.Message(ctx, req.Msg.GetId())
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(m), nil
}

// WatchInbox streams as Service.WatchInbox does.
func (c connectService) WatchInbox(ctx context.Context, req *connect.Request[inboxv1.WatchInboxRequest], stream *connect.ServerStream[inboxv1.WatchInboxResponse]) error {
	err := c.s.Watch(ctx, req.Msg.GetIntervalMs(), stream.Send)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return connect.NewError(connect.CodeCanceled, err)
	}
	return connectError(err)
}

// Chat echoes every message.
func (c connectService) Chat(_ context.Context, stream *connect.BidiStream[inboxv1.ChatRequest, inboxv1.ChatResponse]) error {
	return echo(stream.Receive, stream.Send)
}

// Upload counts messages and bytes.
func (c connectService) Upload(_ context.Context, stream *connect.ClientStream[inboxv1.UploadRequest]) (*connect.Response[inboxv1.UploadResponse], error) {
	var n, b int64
	for stream.Receive() {
		n++
		b += int64(len(stream.Msg().GetData()))
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return connect.NewResponse(&inboxv1.UploadResponse{Count: n, Bytes: b}), nil
}

// connectError turns a gRPC status error of the service into a connect
// error with the same code (the two code spaces are the same numbers);
// other errors (a stream's own) pass unchanged.
func connectError(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	if st, ok := status.FromError(err); ok {
		return connect.NewError(connect.Code(st.Code()), errors.New(st.Message()))
	}
	return err
}
