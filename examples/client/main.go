// Command client calls the example inbox server through caekit's client
// interceptors, signing in at the development IdP, and prints every result
// and every transparent recovery: challenge received, token re-acquired,
// call retried.
//
//	go run ./examples/client -server 127.0.0.1:8500 -idp http://127.0.0.1:8400 -user alice -password password
//	go run ./examples/client -watch            # stream instead of polling
//	go run ./examples/client -no-cae           # a client without the cp1 capability
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/examples/internal/app"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

func main() {
	var cfg app.Config
	flag.StringVar(&cfg.Server, "server", "127.0.0.1:8500", "inbox server gRPC address")
	flag.StringVar(&cfg.IdP, "idp", "http://127.0.0.1:8400", "identity provider (issuer URL)")
	flag.StringVar(&cfg.User, "user", "alice", "user name (password grant); empty for client_credentials")
	flag.StringVar(&cfg.Password, "password", "password", "password")
	flag.StringVar(&cfg.ClientID, "client-id", "", "client id (client_credentials when -user is empty)")
	flag.StringVar(&cfg.ClientSecret, "client-secret", "", "client secret")
	flag.StringVar(&cfg.Audience, "audience", app.DefaultAudience, "API audience")
	flag.BoolVar(&cfg.NoCAE, "no-cae", false, "behave as a client without the cp1 capability")
	interval := flag.Duration("interval", time.Second, "time between calls")
	n := flag.Int("n", 10, "number of calls (0: until interrupted)")
	watch := flag.Bool("watch", false, "stream WatchInbox instead of calling GetMessage; reconnect when the stream ends")
	flag.Parse()

	start := time.Now()
	stamp := func() string { return fmt.Sprintf("%8.3fs", time.Since(start).Seconds()) }
	cfg.OnEvent = func(e app.Event) { fmt.Printf("%s    ↳ %s\n", stamp(), e) }

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := app.Dial(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	defer c.Close()

	failed := false
	if *watch {
		failed = runWatch(ctx, c, *interval, *n, stamp)
	} else {
		for i := 1; *n == 0 || i <= *n; i++ {
			t0 := time.Now()
			resp, err := c.Inbox.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: fmt.Sprint(i)})
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				failed = true
				fmt.Printf("%s  GetMessage #%d failed: %s\n", stamp(), i, describe(err))
			} else {
				fmt.Printf("%s  GetMessage #%d → %q (%s)\n", stamp(), i, resp.GetBody(), time.Since(t0).Round(time.Microsecond))
			}
			select {
			case <-ctx.Done():
			case <-time.After(*interval):
				continue
			}
			break
		}
	}
	if failed {
		os.Exit(1)
	}
}

// runWatch keeps a WatchInbox stream open, reconnecting when it ends, until
// n messages have arrived (0: until interrupted).
func runWatch(ctx context.Context, c *app.Client, interval time.Duration, n int, stamp func() string) (failed bool) {
	got := 0
	for attempt := 1; ctx.Err() == nil; attempt++ {
		s, err := c.Inbox.WatchInbox(ctx, &inboxv1.WatchInboxRequest{IntervalMs: int32(interval / time.Millisecond)})
		if err != nil {
			fmt.Printf("%s  WatchInbox failed: %s\n", stamp(), describe(err))
			return true
		}
		fmt.Printf("%s  WatchInbox open (stream %d)\n", stamp(), attempt)
		for {
			m, err := s.Recv()
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, io.EOF) {
					return false
				}
				fmt.Printf("%s  stream ended: %s\n", stamp(), describe(err))
				if status.Code(err) == codes.PermissionDenied || attempt > 5 {
					return true
				}
				break // reconnect: the client interceptor has fetched a fresh token
			}
			got++
			fmt.Printf("%s  #%d %s\n", stamp(), m.GetSeq(), m.GetBody())
			if n > 0 && got >= n {
				return false
			}
		}
	}
	return false
}

func describe(err error) string {
	s, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	return s.Code().String() + ": " + s.Message()
}
