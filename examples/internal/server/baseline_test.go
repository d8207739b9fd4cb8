package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/examples/internal/server"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// TestNoAuthKeepsObservability guards issue 16 item 1: the -no-auth
// baseline used to run without the decision log, the OpenTelemetry SDK and
// the Prometheus exporter, so comparing it with the CAE mode charged all of
// them to caekit. Now it writes the same decision line per call and serves
// the same exporter with the same gRPC server metrics.
func TestNoAuthKeepsObservability(t *testing.T) {
	var logs bytes.Buffer
	s := start(t, server.Config{Addr: "127.0.0.1:0", EventsAddr: "127.0.0.1:0", NoAuth: true, Metrics: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if s.EventsURL() != "" || s.Store() != nil {
		t.Fatal("NoAuth server has an events endpoint or a store")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := inboxv1.NewInboxServiceClient(dial(t, s.Addr())).GetMessage(ctx, &inboxv1.GetMessageRequest{}); err != nil {
		t.Fatal(err)
	}
	want := "msg=decision method=/example.inbox.v1.InboxService/GetMessage subject=- outcome=allow code=OK"
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs.String())
	}
	if s.MetricsURL() == "" {
		t.Fatal("no metrics endpoint with Metrics")
	}
	resp, err := http.Get(s.MetricsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, w := range []string{`rpc_server_call_duration_seconds_count{`, `rpc_method="GetMessage"`, `rpc_grpc_status_code="0"`} {
		if !strings.Contains(string(body), w) {
			t.Errorf("metrics lack %s:\n%s", w, body)
		}
	}
}
