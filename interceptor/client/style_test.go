package client_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
)

// TestDeprecatedChallengeTwinsAgreeWithExtract guards issue 17 step 5's "one
// way to get a challenge out of an error": client.IsChallenge and
// challenge.FromError are deprecated wrappers of challenge.Extract and must
// answer exactly as it does (same challenge, ok == (error == nil)) for a
// claims challenge, a plain rejection, a malformed challenge and a non-CAE
// error, so that moving to Extract changes nothing.
func TestDeprecatedChallengeTwinsAgreeWithExtract(t *testing.T) {
	claims := &challenge.Challenge{Claims: challenge.AuthContextClaims("c2")}
	cases := map[string]error{
		"claims challenge": claims.Status(codes.Unauthenticated, "step-up").Err(),
		"invalid_token":    (&challenge.Challenge{Error: challenge.ErrorInvalidToken}).Status(codes.Unauthenticated, "bad").Err(),
		"no challenge":     status.Error(codes.Unauthenticated, "bare"),
		"other code":       status.Error(codes.Unavailable, "down"),
		"not a status":     errors.New("plain"),
		"nil":              nil,
	}
	for name, err := range cases {
		t.Run(name, func(t *testing.T) {
			want, werr := challenge.Extract(err)
			got, ok := client.IsChallenge(err)         //nolint:staticcheck // the deprecated twin under test
			got2, ok2 := challenge.FromError(err, nil) //nolint:staticcheck // the deprecated twin under test
			if ok != (werr == nil) || ok2 != (werr == nil) {
				t.Fatalf("IsChallenge ok=%v, FromError ok=%v; Extract error %v", ok, ok2, werr)
			}
			if (want == nil) != (got == nil) || (want == nil) != (got2 == nil) {
				t.Fatalf("challenges differ: Extract %+v, IsChallenge %+v, FromError %+v", want, got, got2)
			}
			if want != nil && (want.Error != got.Error || want.Claims != got.Claims || want.Claims != got2.Claims) {
				t.Fatalf("challenges differ: Extract %+v, IsChallenge %+v, FromError %+v", want, got, got2)
			}
		})
	}
	// A malformed challenge: FromError (with the trailer) is false, and only
	// Extract says why.
	bad := status.Error(codes.Unauthenticated, "x")
	trl := metadata.Pairs(challenge.MetadataKey, `Bearer realm="`)
	if _, ok := challenge.FromError(bad, trl); ok { //nolint:staticcheck // the deprecated twin under test
		t.Error("FromError accepted an unparsable www-authenticate")
	}
	if _, xerr := challenge.Extract(bad, trl); xerr == nil || errors.Is(xerr, challenge.ErrNoChallenge) {
		t.Errorf("Extract(malformed) = %v; want a descriptive error that is not ErrNoChallenge", xerr)
	}
}

// TestNewReportsAllBadOptions guards issue 17 step 5's rule for
// constructors: New reports every bad argument in one error (errors.Join),
// where it used to stop at the first, and reports a nil option with its
// position instead of panicking on it.
func TestNewReportsAllBadOptions(t *testing.T) {
	c, err := client.New(nil,
		client.WithFetchTimeout(0),
		nil,
		client.WithRefreshBackoff(2*time.Second, time.Second),
		client.WithCapabilities("cp1", " "),
		client.WithIdempotentStreams("Upload"),
	)
	if err == nil {
		_ = c.Close()
		t.Fatal("New accepted a nil source and five bad options")
	}
	for _, want := range []string{
		"nil TokenSource",
		"option 1 is nil",
		"fetch timeout must be positive, got 0s",
		"refresh backoff must satisfy 0 < min <= max, got 2s..1s",
		"client capability 1 is empty",
		`method "Upload" is not a full gRPC method name`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestCloseWaitsForFetches guards "Close waits for what it owns": a token
// fetch still running on the client's goroutine (its caller gave up) is
// ended and waited for by Close, so that no goroutine of the client is left
// when Close returns. The source marks its return; a Close that only
// signalled the fetch would usually return before that mark, and goleak
// then checks that nothing of the client is left (no sleep in the test).
func TestCloseWaitsForFetches(t *testing.T) {
	before := goleak.IgnoreCurrent()
	started := make(chan struct{})
	var returned atomic.Bool
	src := client.TokenSourceFunc(func(ctx context.Context, _ client.TokenRequest) (*client.Token, error) {
		close(started)
		<-ctx.Done() // until Close (the fetch timeout is 30 s)
		returned.Store(true)
		return nil, ctx.Err()
	})
	c, err := client.New(src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := c.Token(ctx, "s")
		got <- err
	}()
	<-started
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("Token after its ctx was cancelled: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !returned.Load() {
		t.Fatal("Close returned while the token fetch was still running")
	}
	if err := goleak.Find(before); err != nil {
		t.Fatalf("goroutines left after Close: %v", err)
	}
	if _, err := c.Token(context.Background(), "s"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Token after Close: %v, want ErrClosed", err)
	}
}
