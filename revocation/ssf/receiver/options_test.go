package receiver_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

// wantAll fails t unless err is non-nil and its text names every want.
func wantAll(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("constructor accepted bad options")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not report %q:\n%v", w, err)
		}
	}
}

// TestNewReportsEveryBadOption guards issue 17 step 5 for New: every bad
// option is reported at once (errors.Join), nil options included (before,
// a nil option panicked and only the first problem was reported), and an
// option of NewPoller given to New is named.
func TestNewReportsEveryBadOption(t *testing.T) {
	_, err := receiver.New(context.Background(),
		nil,
		receiver.WithAudience("a"),
		receiver.WithLimits(receiver.Limits{MaxBodySize: -1, PollMaxEvents: -2}),
		receiver.WithLogger(nil),
		receiver.WithAlgorithms("none", "RS256"),
		receiver.WithPollAuthorization("Bearer x"),
		receiver.WithEmailDomains(""),
	)
	wantAll(t, err,
		"option 0 is nil",
		"WithIssuer is required",
		"WithStore is required",
		"MaxBodySize is negative",
		"PollMaxEvents is negative",
		"WithLogger: nil logger",
		`algorithm "none" is never accepted`,
		"WithPollAuthorization is an option of NewPoller",
		"WithEmailDomains: ",
	)
}

// TestNewPollerReportsEveryBadOption guards issue 17 step 5 for NewPoller:
// one Option type for New and NewPoller, every bad one reported, nil ones
// included, and New's options refused by name.
func TestNewPollerReportsEveryBadOption(t *testing.T) {
	e := newEnv(t)
	_, err := receiver.NewPoller(e.r, "http://203.0.113.7/poll",
		nil,
		receiver.WithIssuer("https://elsewhere.example"),
		receiver.WithLimits(receiver.Limits{PollMinBackoff: -1}),
		receiver.WithReturnImmediately(-1),
		receiver.WithHTTPClient(nil),
	)
	wantAll(t, err,
		"option 0 is nil",
		"WithIssuer is an option of New",
		"PollMinBackoff is negative",
		"WithReturnImmediately: interval -1ns is negative",
		"WithHTTPClient: nil client",
		"poll endpoint", // plain http off loopback
	)
	if _, err := receiver.NewPoller(nil, e.tr.PollURL()); err == nil {
		t.Fatal("NewPoller accepted a nil Receiver")
	}
	// A Poller starts from its Receiver's settings; its own options are enough.
	if _, err := receiver.NewPoller(e.r, e.tr.PollURL(), receiver.WithLimits(receiver.Limits{PollMaxEvents: 5})); err != nil {
		t.Fatal(err)
	}
}

// TestNewCtxBoundsInitialisationOnly guards issue 17 step 5's ctx rule:
// New's ctx bounds the discovery only. Cancelled once New returned, it
// must stop neither the background JWKS refresh nor the refresh a rotated
// kid triggers: the Receiver lives until Close.
func TestNewCtxBoundsInitialisationOnly(t *testing.T) {
	tr := ssftest.New()
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := receiver.New(ctx, receiver.WithIssuer(tr.Issuer), receiver.WithAudience(ssftest.Audience),
		receiver.WithStore(teststore.Memory(t)), receiver.WithPushAuthorization(pushAuth),
		receiver.WithSubjectIssuers("https://idp.example.test"),
		receiver.WithLimits(receiver.Limits{JWKSRefresh: 10 * time.Millisecond}))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	hits := tr.JWKSHits()
	testkit.Eventually(t, "background JWKS refresh after New's ctx ended", func() bool { return tr.JWKSHits() > hits+1 })
	srv := httptest.NewServer(r)
	defer srv.Close()
	tr.RotateKey("after-cancel", false)
	set, _ := tr.Event(ssf.CAEPSessionRevoked, nil, map[string]any{"format": "iss_sub", "iss": "https://idp.example.test", "sub": "alice"})
	if status, er := pushTo(t, srv.URL, pushAuth, set); status != 202 {
		t.Fatalf("SET signed with a key published after New's ctx ended: %d %+v", status, er)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
