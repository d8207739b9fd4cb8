package receiver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

// pushRaw delivers set and returns the status, the Retry-After header and
// the decoded error body.
func pushRaw(t *testing.T, url, set string) (int, string, errorResponse) {
	t.Helper()
	status, retry, er, err := tryPush(url, set)
	if err != nil {
		t.Fatal(err)
	}
	return status, retry, er
}

// tryPush is pushRaw for any goroutine.
func tryPush(url, set string) (int, string, errorResponse, error) {
	var er errorResponse
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(set))
	if err != nil {
		return 0, "", er, err
	}
	req.Header.Set("Content-Type", contentTypeSET)
	req.Header.Set("Authorization", pushAuth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", er, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		if err := json.NewDecoder(resp.Body).Decode(&er); err != nil {
			return 0, "", er, fmt.Errorf("status %d with a body that is not JSON: %w", resp.StatusCode, err)
		}
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), er, nil
}

// TestUnknownKIDIsTemporary: a SET whose kid the transmitter's JWKS does not
// publish (yet) is answered as temporarily unavailable on every way in, is
// not remembered, and is accepted and stored once the key is published.
func TestUnknownKIDIsTemporary(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.tr.SetJWKSDown(true)
	e.tr.RotateKey("k2", false)
	set, jti := e.tr.Event(ssf.RISCAccountDisabled, nil, userSub)

	status, retry, er := pushRaw(t, e.srv.URL, set)
	if status != http.StatusServiceUnavailable || er.Err != "temporarily_unavailable" {
		t.Fatalf("push: %d %+v, want 503 temporarily_unavailable", status, er)
	}
	if want := strconv.Itoa(int(5 * time.Second / time.Second)); retry != want {
		t.Fatalf("Retry-After %q, want %q (the unknown-kid refresh interval)", retry, want)
	}
	if !strings.Contains(er.Description, `"k2"`) || !strings.Contains(er.Description, "could not be refreshed") {
		t.Fatalf("description does not say what failed: %q", er.Description)
	}
	_, err := e.r.Receive(ctx, []byte(set))
	if !errors.Is(err, receiver.ErrKeysUnavailable) || errors.Is(err, receiver.ErrStore) || codeOf(err) != "" {
		t.Fatalf("Receive: %v, want ErrKeysUnavailable and no RFC 8935 code", err)
	}
	if n := e.obs.count(receiver.OutcomeKeysUnavailable); n != 2 {
		t.Fatalf("%d keys_unavailable observations, want 2", n)
	}
	if o := e.obs.last(); o.JTI != "" || o.EventType != "" || o.SET != nil {
		t.Fatalf("an unverified SET's claims reached the observer: %+v", o)
	}
	if receiver.OutcomeKeysUnavailable.Acknowledged() || receiver.OutcomeKeysUnavailable.String() != "keys_unavailable" {
		t.Fatalf("OutcomeKeysUnavailable: acknowledged %v, name %q", receiver.OutcomeKeysUnavailable.Acknowledged(), receiver.OutcomeKeysUnavailable)
	}
	if e.store.puts.Load() != 0 {
		t.Fatal("an unverified SET reached the store")
	}

	// Published: the same SET is processed as a first delivery, not
	// answered from the dedup memory.
	e.tr.SetJWKSDown(false)
	res, err := e.r.Receive(ctx, []byte(set))
	if err != nil || res.Duplicate || res.Outcome != receiver.OutcomeStored || res.JTI != jti {
		t.Fatalf("after the key is published: %+v %v", res, err)
	}
	if ev, ok := e.store.Lookup(userKey); !ok || ev.ID != jti {
		t.Fatalf("not stored: %+v %v", ev, ok)
	}
	if res, err := e.r.Receive(ctx, []byte(set)); err != nil || !res.Duplicate {
		t.Fatalf("redelivery of the accepted SET: %+v %v", res, err)
	}
}

// TestUnknownKIDFloodIsRateLimited: SETs with made-up kids cost the
// transmitter's JWKS endpoint at most UnknownKIDRefreshBurst requests within
// the refresh interval, however many arrive, and never wait; SETs with the
// known kid keep working meanwhile.
func TestUnknownKIDFloodIsRateLimited(t *testing.T) {
	e := newEnv(t) // default: 5 s interval, so no refill during the test
	hits := e.tr.JWKSHits()
	const n = 60
	var wg sync.WaitGroup
	statuses := make([]int, n)
	start := time.Now()
	for w := range 6 {
		wg.Go(func() {
			for i := w; i < n; i += 6 {
				forged := e.tr.SignWith(e.tr.Claims(ssf.RISCAccountDisabled, nil, userSub), map[string]any{"kid": fmt.Sprintf("forged-%d", i)})
				st, _, _, err := tryPush(e.srv.URL, forged)
				if err != nil {
					t.Error(err)
				}
				statuses[i] = st
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	// The SETs that got a refresh are refused (the JWKS was fetched and
	// lacks their kid: 400 invalid_key); the rest found the refresh
	// rate-limited and are answered 503.
	refused := 0
	for i, st := range statuses {
		switch st {
		case http.StatusBadRequest:
			refused++
		case http.StatusServiceUnavailable:
		default:
			t.Fatalf("forged kid %d: status %d, want 400 or 503", i, st)
		}
	}
	if refused != unknownKIDRefreshBurst {
		t.Fatalf("%d forged SETs refused with invalid_key, want %d (one per allowed refresh)", refused, unknownKIDRefreshBurst)
	}
	if got := e.tr.JWKSHits() - hits; got != unknownKIDRefreshBurst {
		t.Fatalf("%d SETs with unknown kids caused %d JWKS fetches, want %d", n, got, unknownKIDRefreshBurst)
	}
	if elapsed > 4*time.Second {
		t.Fatalf("the flood took %v: refused SETs waited for the limiter", elapsed)
	}
	if _, err := e.r.Receive(context.Background(), []byte(e.tr.SignWith(e.tr.Claims(ssf.RISCAccountDisabled, nil, userSub), map[string]any{"kid": "forged-x"}))); err == nil ||
		!strings.Contains(err.Error(), "moments ago") {
		t.Fatalf("rate-limited look-up: %v, want an error saying the refresh is rate-limited", err)
	}
	set, _ := e.tr.Event(ssf.RISCAccountDisabled, nil, userSub)
	if st, er := e.push(t, set); st != http.StatusAccepted {
		t.Fatalf("known kid during the flood: %d %+v", st, er)
	}
}

// TestRotatedKeyAcceptedOnRetry: after the unknown-kid refreshes are used
// up, a SET signed with a freshly published key is answered 503 with a
// Retry-After, and a transmitter that honours it gets the SET accepted on the
// next try.
func TestRotatedKeyAcceptedOnRetry(t *testing.T) {
	const interval = time.Second
	e := newEnv(t, receiver.WithLimits(receiver.Limits{JWKSRefresh: time.Hour, UnknownKIDRefresh: interval}))
	start := time.Now()
	for i := range unknownKIDRefreshBurst {
		forged := e.tr.SignWith(e.tr.Claims(ssf.RISCAccountDisabled, nil, userSub), map[string]any{"kid": fmt.Sprint("forged-", i)})
		if st, _, er := pushRaw(t, e.srv.URL, forged); st != http.StatusBadRequest || er.Err != receiver.CodeInvalidKey {
			t.Fatalf("forged kid, JWKS refreshed without it: %d %+v, want 400 invalid_key", st, er)
		}
	}
	e.tr.RotateKey("k2", false) // published at once
	set, jti := e.tr.Event(ssf.RISCAccountDisabled, nil, userSub)
	status, retry, er := pushRaw(t, e.srv.URL, set)
	if time.Since(start) < interval { // otherwise the limiter has refilled: either answer is right
		if status != http.StatusServiceUnavailable || !strings.Contains(er.Description, "moments ago") {
			t.Fatalf("first delivery within the limit: %d %+v, want 503 (rate-limited refresh)", status, er)
		}
	}
	if status == http.StatusServiceUnavailable {
		secs, err := strconv.Atoi(retry)
		if err != nil || secs != 1 {
			t.Fatalf("Retry-After %q, want 1", retry)
		}
		time.Sleep(time.Duration(secs) * time.Second)
		if status, _, er = pushRaw(t, e.srv.URL, set); status != http.StatusAccepted {
			t.Fatalf("retry after Retry-After: %d %+v, want 202", status, er)
		}
	}
	if ev, ok := e.store.Lookup(userKey); !ok || ev.ID != jti {
		t.Fatalf("not stored: %+v %v", ev, ok)
	}
}

// TestPollKeysUnavailableRedelivered: a polled SET whose key cannot be
// obtained is neither acknowledged nor reported in setErrs; the transmitter
// offers it again and it is acknowledged once the key is published.
func TestPollKeysUnavailableRedelivered(t *testing.T) {
	e := newEnv(t)
	e.tr.SetJWKSDown(true)
	e.tr.RotateKey("k2", false)
	set, jti := e.tr.Event(ssf.RISCAccountDisabled, nil, userSub)
	e.tr.Enqueue(jti, set)
	p := newPoller(t, e, receiver.WithReturnImmediately(time.Millisecond))
	ctx := context.Background()

	res, err := p.Poll(ctx)
	if !errors.Is(err, receiver.ErrKeysUnavailable) || errors.Is(err, receiver.ErrStore) || res.Received != 1 || res.Unstored != 1 ||
		res.Acknowledged != 0 || res.Rejected != 0 || p.Pending() != 0 {
		t.Fatalf("poll while the key is unavailable: %+v %v pending %d", res, err, p.Pending())
	}
	e.tr.SetJWKSDown(false)
	res, err = p.Poll(ctx)
	if err != nil || res.Received != 1 || res.Acknowledged != 1 {
		t.Fatalf("poll once the key is published: %+v %v", res, err)
	}
	if _, err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if !e.tr.Acked(jti) || e.tr.Queued() != 0 {
		t.Fatal("not acknowledged once the key was published")
	}
	if se, ok := e.tr.SetErr(jti); ok {
		t.Fatalf("reported to the transmitter as refused: %v", se)
	}
	if _, ok := e.store.Lookup(userKey); !ok {
		t.Fatal("not stored")
	}
}

// TestStaticKeysUnknownKIDAndBadJWK: with configured keys, which are all
// there is, an unknown kid (or a SET without kid when no key has the empty
// kid) is refused with RFC 8935 invalid_key (issue 12 item 3: it used to be
// a 503 temporarily_unavailable, an unregistered code that made the
// transmitter retry forever), and so is a configured key that does not fit
// the SET.
func TestStaticKeysUnknownKIDAndBadJWK(t *testing.T) {
	tr := ssftest.New()
	defer tr.Close()
	kid, priv := tr.PrivateKey()
	base := []receiver.Option{receiver.WithIssuer(tr.Issuer), receiver.WithAudience(ssftest.Audience), receiver.WithStore(teststore.Memory(t))}
	newR := func(opts ...receiver.Option) *receiver.Receiver {
		r, err := receiver.New(context.Background(), append(append(base, testScope...), opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	claims := func() map[string]any { return tr.Claims(ssf.RISCAccountDisabled, nil, userSub) }
	ctx := context.Background()

	pub := newR(receiver.WithPublicKey(kid, &priv.PublicKey))
	for name, set := range map[string]string{
		"unknown kid": tr.SignWith(claims(), map[string]any{"kid": "other"}),
		"no kid":      tr.SignWith(claims(), map[string]any{"kid": nil}),
	} {
		if _, err := pub.Receive(ctx, []byte(set)); errors.Is(err, receiver.ErrKeysUnavailable) || codeOf(err) != receiver.CodeInvalidKey {
			t.Errorf("WithPublicKey, %s: %v, want invalid_key", name, err)
		}
	}
	if _, err := pub.Receive(ctx, []byte(tr.Sign(claims()))); err != nil {
		t.Fatalf("WithPublicKey, known kid: %v", err)
	}

	jwks := newR(receiver.WithJWKS(tr.JWKS()))
	if _, err := jwks.Receive(ctx, []byte(tr.SignWith(claims(), map[string]any{"kid": "other"}))); errors.Is(err, receiver.ErrKeysUnavailable) || codeOf(err) != receiver.CodeInvalidKey {
		t.Fatalf("WithJWKS, unknown kid: %v, want invalid_key", err)
	}
	if _, err := jwks.Receive(ctx, []byte(tr.Sign(claims()))); err != nil {
		t.Fatalf("WithJWKS, known kid: %v", err)
	}
	empty := newR(receiver.WithJWKS([]byte(`{"keys":[]}`)))
	if _, err := empty.Receive(ctx, []byte(tr.SignWith(claims(), map[string]any{"kid": nil}))); codeOf(err) != receiver.CodeInvalidKey {
		t.Fatalf("WithJWKS without keys, no kid: %v, want invalid_key", err)
	}

	// The JWK says RS384, the SET is RS256: the key is known but unusable.
	mismatch := strings.Replace(string(tr.JWKS()), `"alg":"RS256"`, `"alg":"RS384"`, 1)
	if mismatch == string(tr.JWKS()) {
		t.Fatal("test setup: the JWKS has no alg to change")
	}
	bad := newR(receiver.WithJWKS([]byte(mismatch)))
	if _, err := bad.Receive(ctx, []byte(tr.Sign(claims()))); codeOf(err) != receiver.CodeInvalidKey || errors.Is(err, receiver.ErrKeysUnavailable) {
		t.Fatalf("JWK alg mismatch: %v, want invalid_key", err)
	}
}

// TestNoKIDAgainstJWKS: a SET without kid is checked against every key of
// the transmitter's JWKS.
func TestNoKIDAgainstJWKS(t *testing.T) {
	e := newEnv(t)
	set := e.tr.SignWith(e.tr.Claims(ssf.RISCAccountDisabled, nil, userSub), map[string]any{"kid": nil})
	if st, er := e.push(t, set); st != http.StatusAccepted {
		t.Fatalf("no kid, key in the JWKS: %d %+v", st, er)
	}
}
