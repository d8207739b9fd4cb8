package stream_test

import (
	"strings"
	"testing"

	"github.com/caekit/caekit/revocation/ssf/stream"
)

// TestNewReportsEveryBadOption guards issue 17 step 5 for stream.New: it
// reports every bad option at once (errors.Join), nil options included, and
// a bad issuer. Before, New returned no error: a nil option panicked, a nil
// HTTP client was silently replaced and a bad issuer surfaced only on the
// first request.
func TestNewReportsEveryBadOption(t *testing.T) {
	_, err := stream.New("http://transmitter.example.test",
		nil,
		stream.WithHTTPClient(nil),
		stream.WithBearerToken(""),
		stream.WithConfiguration(nil),
	)
	if err == nil {
		t.Fatal("New accepted bad options")
	}
	for _, want := range []string{
		"option 0 is nil",
		"WithHTTPClient: nil client",
		"WithBearerToken: the token is empty",
		"WithConfiguration: nil configuration",
		"issuer: ", // plain http off loopback
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not report %q:\n%v", want, err)
		}
	}
	if _, err := stream.New("https://transmitter.example.test", stream.WithBearerToken("t")); err != nil {
		t.Fatalf("good options refused: %v", err)
	}
}
