package receiver_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

// rawPayload is a SET payload with %s for an extra top-level member and %s
// for an extra member of the subject, so that tests can inject exactly the
// bytes they need.
func rawPayload(tr *ssftest.Transmitter, extraTop, extraSub string) []byte {
	return fmt.Appendf(nil, `{"iss":%q,"aud":%q,"jti":"jti-%d","iat":%d%s,"sub_id":{"format":"iss_sub","iss":"https://idp.example.test","sub":"alice"%s},"events":{%q:{}}}`,
		tr.Issuer, ssftest.Audience, time.Now().UnixNano(), time.Now().Unix(), extraTop, extraSub, ssf.RISCAccountDisabled)
}

const rawHeader = `{"alg":"RS256","typ":"secevent+jwt","kid":"k1"}`

// TestStrictSETParsing (issue 12 item 4): SETs are decoded as strictly as
// access tokens, by the same code (internal/jose), over the real push
// handler. Before the fix the SET path used json.Unmarshal (last duplicate
// wins, bad UTF-8 silently replaced) and lenient base64url: each SET below
// was accepted with 202.
func TestStrictSETParsing(t *testing.T) {
	e := newEnv(t)
	// The baseline is accepted, so each refusal below is the injected defect.
	if st, er := e.push(t, e.tr.SignRaw([]byte(rawHeader), rawPayload(e.tr, "", ""))); st != http.StatusAccepted {
		t.Fatalf("baseline raw SET: %d %+v", st, er)
	}
	canonical := e.tr.SignRaw([]byte(rawHeader), rawPayload(e.tr, "", ""))
	// A 2048-bit RSA signature is 256 bytes: its last base64url character
	// carries 2 bits and 4 zero bits. Setting a zero bit keeps the decoded
	// bytes but makes the encoding non-canonical.
	last := canonical[len(canonical)-1]
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	nonCanonical := canonical[:len(canonical)-1] + string(alphabet[strings.IndexByte(alphabet, last)|1])

	for _, c := range []struct {
		name, set, want string
	}{
		{"duplicate top-level iss", e.tr.SignRaw([]byte(rawHeader), rawPayload(e.tr, `,"iss":"https://evil.test"`, "")), `duplicate member "iss"`},
		{"duplicate subject sub", e.tr.SignRaw([]byte(rawHeader), rawPayload(e.tr, "", `,"sub":"bob"`)), `duplicate member "sub"`},
		{"duplicate escaped name", e.tr.SignRaw([]byte(rawHeader), rawPayload(e.tr, `,"\u006a\u0074\u0069":"other"`, "")), `duplicate member "jti"`},
		{"duplicate header alg", e.tr.SignRaw([]byte(`{"alg":"RS256","typ":"secevent+jwt","kid":"k1","alg":"none"}`), rawPayload(e.tr, "", "")), `duplicate member "alg"`},
		{"bad UTF-8", e.tr.SignRaw([]byte(rawHeader), rawPayload(e.tr, ",\"txn\":\"\xff\"", "")), "not valid UTF-8"},
		{"non-canonical base64url signature", nonCanonical, "canonical"},
	} {
		st, er := e.push(t, c.set)
		if st != http.StatusBadRequest || er.Err != receiver.CodeInvalidRequest || !strings.Contains(er.Description, c.want) {
			t.Errorf("%s: %d %+v, want 400 invalid_request saying %q", c.name, st, er, c.want)
		}
	}
	if n := e.store.puts.Load(); n != 1 {
		t.Errorf("%d events stored, want only the baseline's", n)
	}
}

// TestSETKeyMustFitAlg (issue 12 item 4): the key named by kid must be of
// the algorithm's type and curve, the rule access tokens follow
// (jose.KeyFits): a P-384 key is not an ES256 key, an EC key is not an RSA
// key. Refused with invalid_key, saying why. (Before, both were refused too,
// by the signature check, but as "signature does not verify"; the curve
// rule now matches the token validator's.)
func TestSETKeyMustFitAlg(t *testing.T) {
	tr := ssftest.New()
	defer tr.Close()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := receiver.New(context.Background(), receiver.WithIssuer(tr.Issuer), receiver.WithAudience(ssftest.Audience),
		receiver.WithStore(teststore.Memory(t)), receiver.WithPublicKey("ec", &p384.PublicKey), receiver.WithAlgorithms("ES256", "ES384"), testScope[0],
		receiver.WithPushAuthorization(pushAuth))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	srv := httptest.NewServer(r)
	defer srv.Close()
	// sign signs with the P-384 key under the given alg header, by hand:
	// golang-jwt will not sign ES256 with a P-384 key.
	sign := func(alg string, h crypto.Hash) string {
		hb, _ := json.Marshal(map[string]any{"alg": alg, "typ": "secevent+jwt", "kid": "ec"})
		pb, _ := json.Marshal(tr.Claims(ssf.RISCAccountDisabled, nil, userSub))
		signing := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(pb)
		hh := h.New()
		hh.Write([]byte(signing))
		r, s, err := ecdsa.Sign(rand.Reader, p384, hh.Sum(nil))
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 96)
		r.FillBytes(sig[:48])
		s.FillBytes(sig[48:])
		return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	if st, er := pushTo(t, srv.URL, pushAuth, sign("ES256", crypto.SHA256)); st != http.StatusBadRequest || er.Err != receiver.CodeInvalidKey || !strings.Contains(er.Description, "curve") {
		t.Errorf("ES256 with a P-384 key, pushed: %d %+v, want 400 invalid_key naming the curve", st, er)
	}
	if _, err := r.Receive(context.Background(), []byte(sign("ES384", crypto.SHA384))); err != nil {
		t.Errorf("ES384 with a P-384 key: %v", err)
	}
	// RS256 header naming the EC key.
	if _, err := r.Receive(context.Background(), []byte(tr.SignWith(tr.Claims(ssf.RISCAccountDisabled, nil, userSub), map[string]any{"kid": "ec"}))); codeOf(err) != receiver.CodeInvalidKey || !strings.Contains(err.Error(), "needs an RSA key") {
		t.Errorf("RS256 naming an EC key: %v, want invalid_key saying it needs an RSA key", err)
	}
}

// TestUnknownKIDAfterRefreshIsInvalidKey (issue 12 item 3): over the real
// push handler, a kid that the transmitter's JWKS still lacks after a
// successful refresh is answered 400 {"err":"invalid_key"} with a
// description naming the kid; with the JWKS endpoint failing it is 503 with
// Retry-After, and the SET is accepted once the key is published.
func TestUnknownKIDAfterRefreshIsInvalidKey(t *testing.T) {
	e := newEnv(t)
	forged := e.tr.SignWith(e.tr.Claims(ssf.RISCAccountDisabled, nil, userSub), map[string]any{"kid": "never-published"})
	st, retry, er := pushRaw(t, e.srv.URL, forged)
	if st != http.StatusBadRequest || er.Err != receiver.CodeInvalidKey || !strings.Contains(er.Description, `"never-published"`) || retry != "" {
		t.Fatalf("kid absent after a successful refresh: %d %q %+v, want 400 invalid_key naming the kid", st, retry, er)
	}
	e.tr.SetJWKSDown(true)
	e.tr.RotateKey("k2", false)
	set, _ := e.tr.Event(ssf.RISCAccountDisabled, nil, userSub)
	if st, retry, er := pushRaw(t, e.srv.URL, set); st != http.StatusServiceUnavailable || retry == "" || er.Err != "temporarily_unavailable" {
		t.Fatalf("JWKS endpoint failing: %d %q %+v, want 503 with Retry-After", st, retry, er)
	}
	e.tr.SetJWKSDown(false)
	if st, _, er := pushRaw(t, e.srv.URL, set); st != http.StatusAccepted {
		t.Fatalf("after the key is published: %d %+v", st, er)
	}
}
