package ssf_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

// FuzzParseSET signs arbitrary claim payloads with a trusted key and feeds
// them through SET validation, subject parsing and mapping, and the store:
// nothing may panic, every refusal must carry an RFC 8935 code, and every
// acknowledged revoking event must have been stored.
func FuzzParseSET(f *testing.F) {
	tr := ssftest.New()
	defer tr.Close()
	kid, priv := tr.PrivateKey()
	seeds, _ := filepath.Glob("testdata/spec/*.json")
	for _, s := range seeds {
		m := loadSpec(f, filepath.Base(s))
		m["iss"], m["aud"], m["iat"] = "https://tr.test", "aud", 1700000000
		b, _ := json.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte(`{"iss":"https://tr.test","aud":["aud"],"iat":1700000000,"jti":"j","events":{"x":{}}}`))
	f.Add([]byte(`{"iss":"https://tr.test","aud":"aud","iat":1700000000,"jti":"j","sub_id":{"format":"aliases","identifiers":[{"format":"complex","user":{"format":"opaque","id":"u"}}]},"events":{"https://schemas.openid.net/secevent/risc/event-type/account-purged":{}}}`))
	f.Add([]byte(`{"iss":"https://tr.test","aud":"aud","iat":1.7e9,"toe":-1,"jti":"j","events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{"subject":{"subject_type":"ip-addresses","ip-addresses":["::1"]},"event_timestamp":1e300}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"iss":"https://tr.test","aud":"aud","iat":1700000000,"jti":"j","sub_id":{"format":"complex","session":{"format":"complex"}},"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{}}}`))
	at := time.Unix(1700000000, 0)
	clock := func() time.Time { return at }
	f.Fuzz(func(t *testing.T, payload []byte) {
		store := revocation.NewMemory(revocation.WithClock(clock))
		r, err := ssf.New(context.Background(), ssf.WithIssuer("https://tr.test"), ssf.WithAudience("aud"),
			ssf.WithStore(store), ssf.WithPublicKey(kid, &priv.PublicKey), ssf.WithClock(clock),
			ssf.WithCriticalSubjectMembers("group"))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		signing := b64(`{"alg":"RS256","typ":"secevent+jwt","kid":"`+kid+`"}`) + "." + b64(string(payload))
		sig, err := jwt.SigningMethodRS256.Sign(signing, priv)
		if err != nil {
			t.Fatal(err)
		}
		raw := signing + "." + b64(string(sig))
		res, err := r.Receive(context.Background(), []byte(raw))
		if err != nil {
			if ssf.CodeOf(err) == "" {
				t.Fatalf("refusal without a code: %v", err)
			}
			return
		}
		if !res.Outcome.Acknowledged() {
			t.Fatalf("accepted with outcome %s", res.Outcome)
		}
		for _, k := range res.Keys {
			if !k.Valid() {
				t.Fatalf("invalid key %v", k)
			}
		}
		// Subject parsing on its own must not panic either.
		var m map[string]json.RawMessage
		if json.Unmarshal(payload, &m) == nil {
			_, _ = ssf.ParseSubject(m["sub_id"])
		}
	})
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
