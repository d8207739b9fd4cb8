package logout_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation/logout"
)

// FuzzParseLogoutToken feeds arbitrary strings to the logout-token parser
// (.ci/fuzz discovers it): it must never panic, and whatever it accepts must
// satisfy §2.6 (an iss, a jti, sid or sub, and keys to revoke under).
func FuzzParseLogoutToken(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	const iss = "https://idp.example"
	now := func() time.Time { return t0 }
	v, err := token.NewValidator(context.Background(), token.WithIssuer(iss), token.WithAudience(clientID),
		token.WithStaticKey("k1", &key.PublicKey), token.WithClock(now), token.WithLogger(discard))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = v.Close() })
	r, err := logout.New(context.Background(), logout.WithStore(teststore.Memory(f)), logout.WithKeys(v),
		logout.WithAudience(clientID), logout.WithClock(now), logout.WithLogger(discard))
	if err != nil {
		f.Fatal(err)
	}
	sign := func(c jwt.MapClaims, typ string) string {
		hdr := map[string]any{}
		if typ != "" {
			hdr["typ"] = typ
		}
		return testkit.Minter{Alg: "ES256", KID: "k1", Key: key}.MintHeader(f, c, hdr)
	}
	ev := map[string]any{logout.EventBackChannelLogout: map[string]any{}}
	f.Add(sign(jwt.MapClaims{"iss": iss, "aud": clientID, "iat": t0.Unix(), "jti": "a", "sid": "s", "events": ev}, "logout+jwt"))
	f.Add(sign(jwt.MapClaims{"iss": iss, "aud": []string{clientID, "x"}, "iat": t0.Unix(), "jti": "b", "sub": "u", "events": ev}, ""))
	f.Add(sign(jwt.MapClaims{"iss": iss, "aud": clientID, "iat": t0.Unix(), "jti": "c", "sub": "u", "nonce": "n", "events": ev}, "JWT"))
	f.Add(sign(jwt.MapClaims{"iss": iss, "aud": clientID, "iat": t0.Unix(), "exp": t0.Unix() + 60, "jti": "d", "sid": "s", "events": map[string]any{logout.EventBackChannelLogout: 1}}, ""))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, raw string) {
		lt, err := r.ParseLogoutToken(raw)
		if err != nil {
			return
		}
		if lt.Issuer != iss || lt.JTI == "" || (lt.SessionID == "" && lt.Subject == "") || lt.IssuedAt.IsZero() {
			t.Fatalf("accepted an incomplete logout token: %+v", lt)
		}
		for _, k := range lt.Keys() {
			if !k.Valid() || k.Scope != iss {
				t.Fatalf("invalid key %v", k)
			}
		}
	})
}
