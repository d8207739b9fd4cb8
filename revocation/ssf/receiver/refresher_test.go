package receiver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

// newReceiver builds a receiver for tr with the test scope and opts, closed
// at cleanup.
func newReceiver(t *testing.T, tr *ssftest.Transmitter, opts ...receiver.Option) (*receiver.Receiver, *httptest.Server) {
	t.Helper()
	base := []receiver.Option{
		receiver.WithIssuer(tr.Issuer), receiver.WithAudience(ssftest.Audience), receiver.WithStore(teststore.Memory(t)),
		receiver.WithPushAuthorization(pushAuth),
	}
	r, err := receiver.New(context.Background(), append(append(base, testScope...), opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

// TestJWKSRetriedWithBackoff (issue 17 step 1) guards that the SET
// receiver's JWKS is kept by the kit's one refresher (internal/jwks), which
// retries a failed fetch with backoff (from one second) instead of waiting
// a whole refresh interval: with jwkset's HTTP storage, used before, a JWKS
// endpoint that was down when the receiver started was asked again only
// after WithJWKSRefresh's interval (an hour here), or by an unknown-kid SET.
func TestJWKSRetriedWithBackoff(t *testing.T) {
	tr := ssftest.New()
	t.Cleanup(tr.Close)
	tr.SetJWKSDown(true)
	_, srv := newReceiver(t, tr, receiver.WithLimits(receiver.Limits{JWKSRefresh: time.Hour, UnknownKIDRefresh: time.Hour}))
	start := tr.JWKSHits()
	tr.SetJWKSDown(false)
	testkit.Eventually(t, "a background retry of the JWKS fetch", func() bool { return tr.JWKSHits() > start })
	hits := tr.JWKSHits()
	set, _ := tr.Event(ssf.RISCAccountDisabled, nil, userSub)
	if st, er := pushTo(t, srv.URL, pushAuth, set); st != http.StatusAccepted {
		t.Fatalf("push after the retry: %d %+v", st, er)
	}
	if tr.JWKSHits() != hits {
		t.Fatal("the SET needed an on-demand refresh: the background retry did not install the keys")
	}
}

// TestOneBadJWKDoesNotTakeTheSetDown (issue 17 step 1) guards the kit's JWK
// Set rule for SETs: a key that does not parse is skipped (and logged), as
// for access tokens, and the others serve. With jwkset's HTTP storage, used
// before, one invalid JWK failed the whole refresh, so every SET was
// answered 503 until the transmitter fixed its JWKS.
func TestOneBadJWKDoesNotTakeTheSetDown(t *testing.T) {
	tr := ssftest.New()
	t.Cleanup(tr.Close)
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var doc map[string][]map[string]any
		_ = json.Unmarshal(tr.JWKS(), &doc)
		doc["keys"] = append(doc["keys"], map[string]any{"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AA", "y": "AA"})
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(jwksSrv.Close)
	_, srv := newReceiver(t, tr, receiver.WithJWKSURL(jwksSrv.URL))
	set, _ := tr.Event(ssf.RISCAccountDisabled, nil, userSub)
	if st, er := pushTo(t, srv.URL, pushAuth, set); st != http.StatusAccepted {
		t.Fatalf("push: %d %+v, want 202 with the good key of a JWKS that also holds a broken one", st, er)
	}
}
