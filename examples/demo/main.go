// Command demo shows Continuous Access Evaluation for gRPC and HTTP end to
// end: it starts the development IdP, the example server and the example
// client in one process on free loopback ports and narrates thirteen steps,
// with timings (12: the Azure SDK for Go on the REST route; 13: a
// Server-Sent Events stream cut by an event).
//
//	go run ./examples/demo
//	go run ./examples/demo -store redis://127.0.0.1:6379/0 -replicas 3
//
// It exits 0 only if every step behaved as expected.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/caekit/caekit/examples/internal/demo"
)

func main() {
	store := flag.String("store", "", "redis:// URL: run step 9 with replicas sharing revocations")
	replicas := flag.Int("replicas", 3, "server replicas in step 9")
	verbose := flag.Bool("v", false, "also print the servers' and IdP's logs (decision log) to stderr")
	flag.Parse()

	opts := demo.Options{Out: os.Stdout, Color: isTerminal(os.Stdout), Store: *store, Replicas: *replicas}
	if *verbose {
		opts.ServerLog = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rep, err := demo.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(2)
	}
	if f := rep.Failed(); f != nil {
		os.Exit(1)
	}
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("NO_COLOR") == ""
}
