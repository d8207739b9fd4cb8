package main

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"

	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// service is the InboxService every case serves: the same handlers, so that
// the cases differ only in their interceptors. GetMessage answers a fixed
// message; WatchInbox streams messages back to back (interval_ms 0) or one
// per interval until the client goes away.
type service struct {
	inboxv1.UnimplementedInboxServiceServer
}

const messageBody = "Your quarterly report is ready. Open it from the shared drive before Friday."

// GetMessage returns a fixed message.
func (service) GetMessage(_ context.Context, req *inboxv1.GetMessageRequest) (*inboxv1.GetMessageResponse, error) {
	return &inboxv1.GetMessageResponse{Id: req.GetId(), Subject: "Quarterly report", Body: messageBody}, nil
}

// WatchInbox streams messages until the call ends.
func (service) WatchInbox(req *inboxv1.WatchInboxRequest, st grpc.ServerStreamingServer[inboxv1.WatchInboxResponse]) error {
	ctx := st.Context()
	msg := &inboxv1.WatchInboxResponse{Body: messageBody}
	var tick <-chan time.Time
	if ms := req.GetIntervalMs(); ms > 0 {
		t := time.NewTicker(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	for seq := int64(1); ; seq++ {
		msg.Seq = seq
		if err := st.Send(msg); err != nil {
			return err
		}
		if tick == nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
		}
	}
}

// Upload receives messages until the client closes its side, then answers
// their count and size (a client stream).
func (service) Upload(st grpc.ClientStreamingServer[inboxv1.UploadRequest, inboxv1.UploadResponse]) error {
	var n, size int64
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return st.SendAndClose(&inboxv1.UploadResponse{Count: n, Bytes: size})
		}
		if err != nil {
			return err
		}
		n++
		size += int64(len(m.GetData()))
	}
}
