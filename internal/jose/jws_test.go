package jose_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/internal/jose"
)

// TestParseJWS guards the shared compact-JWS parser the logout receivers
// use: every structural defect is refused with ErrJWS and a message saying
// what was wrong, and a good token verifies with its key only.
func TestParseJWS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "x"})
	tok.Header["kid"], tok.Header["typ"] = "k1", "logout+jwt"
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	es256 := func(alg string) bool { return alg == "ES256" }
	j, err := jose.ParseJWS(raw, 8192, es256)
	if err != nil || j.Alg != "ES256" || j.Kid != "k1" || !j.HasKID || j.Typ != "logout+jwt" || string(j.Claims["iss"]) != `"x"` {
		t.Fatalf("ParseJWS = %+v, %v", j, err)
	}
	if i, err := jose.VerifyJWS(j, []any{&other.PublicKey, &key.PublicKey}); err != nil || i != 1 {
		t.Fatalf("VerifyJWS = %d, %v; want key 1", i, err)
	}
	if _, err := jose.VerifyJWS(j, []any{&other.PublicKey}); !errors.Is(err, jose.ErrJWS) {
		t.Fatalf("VerifyJWS with the wrong key: %v", err)
	}

	b := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	parts := strings.Split(raw, ".")
	for name, c := range map[string]struct{ raw, want string }{
		"empty":             {"", "empty"},
		"too large":         {raw + strings.Repeat("A", 9000), "limit"},
		"two parts":         {"a.b", "parts"},
		"JWE":               {"a.b.c.d.e", "JWE"},
		"padded header":     {parts[0] + "=." + parts[1] + "." + parts[2], "base64url"},
		"header not object": {b(`[1]`) + "." + parts[1] + "." + parts[2], "not a JSON object"},
		"duplicate alg":     {b(`{"alg":"ES256","alg":"none"}`) + "." + parts[1] + "." + parts[2], "duplicate"},
		"no alg":            {b(`{"kid":"k1"}`) + "." + parts[1] + "." + parts[2], "no alg"},
		"alg none":          {b(`{"alg":"none"}`) + "." + parts[1] + ".", "never accepted"},
		"alg not allowed":   {b(`{"alg":"RS256"}`) + "." + parts[1] + "." + parts[2], "allow-list"},
		"kid not a string":  {b(`{"alg":"ES256","kid":7}`) + "." + parts[1] + "." + parts[2], "kid must be a string"},
		"typ null":          {b(`{"alg":"ES256","typ":null}`) + "." + parts[1] + "." + parts[2], "typ must be a string"},
		"crit":              {b(`{"alg":"ES256","crit":["x"]}`) + "." + parts[1] + "." + parts[2], "crit"},
		"payload not JSON":  {parts[0] + "." + b(`nope`) + "." + parts[2], "payload"},
		"payload bad UTF-8": {parts[0] + "." + b("{\"a\":\"\xff\"}") + "." + parts[2], "UTF-8"},
		"bad signature b64": {parts[0] + "." + parts[1] + ".!!", "signature"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := jose.ParseJWS(c.raw, 8192, es256)
			if !errors.Is(err, jose.ErrJWS) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrJWS mentioning %q", err, c.want)
			}
		})
	}
}

// TestSplitJWSDefersPayload guards the order the access-token validator
// relies on: SplitJWS checks the header and signature encoding only, so a
// payload defect is found after the signature verifies; CheckAlg's errors
// carry ErrAlg so that callers answer with their algorithm error class.
func TestSplitJWSDefersPayload(t *testing.T) {
	b := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	raw := b(`{"alg":"ES256","kid":"k"}`) + "." + b(`{"a":1,"a":2}`) + "." + b("sig")
	j, err := jose.SplitJWS(raw, 1024)
	if err != nil || j.Alg != "ES256" || j.Kid != "k" || !j.HasKID {
		t.Fatalf("SplitJWS = %+v, %v", j, err)
	}
	if _, err := j.PayloadJSON(); !errors.Is(err, jose.ErrJWS) || !strings.Contains(err.Error(), "payload") {
		t.Fatalf("PayloadJSON: %v", err)
	}
	if err := j.CheckAlg(func(string) bool { return false }); !errors.Is(err, jose.ErrAlg) || !errors.Is(err, jose.ErrJWS) {
		t.Fatalf("CheckAlg not allowed: %v", err)
	}
	n, err := jose.SplitJWS(b(`{"alg":"nOnE"}`)+"."+b(`{}`)+".", 1024)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.CheckAlg(func(string) bool { return true }); !errors.Is(err, jose.ErrAlg) || !strings.Contains(err.Error(), "never accepted") {
		t.Fatalf("CheckAlg none: %v", err)
	}
}
