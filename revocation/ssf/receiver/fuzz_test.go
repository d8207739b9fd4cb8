package receiver_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/internal/testclock"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/ssf/receiver"
)

// fuzzKey signs the SETs of the fuzz targets. Ed25519 signatures are cheap
// and deterministic: the same input always takes the same path, which the
// fuzzer's coverage feedback and minimisation rely on.
var fuzzKey = ed25519.NewKeyFromSeed([]byte("caekit-ssf-fuzz-key-seed-32bytes"))

const fuzzIssuer = "https://tr.test"

var fuzzNow = testclock.Unix(1700000000, 0)

// fuzzReceiver returns a fresh receiver and store, so that each input runs
// from the same state (no dedup or store carry-over between executions).
func fuzzReceiver(t testing.TB, opts ...receiver.Option) (*receiver.Receiver, *revocation.Memory) {
	clock := func() time.Time { return fuzzNow }
	store := teststore.Memory(t, revocation.WithClock(clock))
	base := []receiver.Option{receiver.WithIssuer(fuzzIssuer), receiver.WithAudience("aud"), receiver.WithStore(store),
		receiver.WithPublicKey("k", fuzzKey.Public()), receiver.WithAlgorithms("EdDSA"), receiver.WithClock(clock),
		receiver.WithCriticalSubjectMembers("group")}
	r, err := receiver.New(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r, store
}

// signSET signs payload as a SET with fuzzKey.
func signSET(t testing.TB, payload []byte) []byte {
	signing := b64(`{"alg":"EdDSA","typ":"secevent+jwt","kid":"k"}`) + "." + b64(string(payload))
	sig, err := jwt.SigningMethodEdDSA.Sign(signing, fuzzKey)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(signing + "." + b64(string(sig)))
}

// FuzzParseSET signs arbitrary claim payloads with a trusted key and feeds
// them through SET validation, subject parsing and mapping, and the store:
// nothing may panic, every refusal must carry an RFC 8935 code, and every
// acknowledged revoking event must have been stored.
//
// It used to stall at 0 execs/sec: each execution started nothing slow by
// itself, but signed with RSA-2048 (about 1-2 ms, more under -race or load)
// and the fuzzer spends up to -fuzzminimizetime (60 s) minimising every new
// interesting input, during which no executions are counted. With slow
// executions a minimisation took ~45 s; with Ed25519 (tens of µs) it takes
// well under a second.
func FuzzParseSET(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/spec/*.json")
	for _, s := range seeds {
		m := loadSpec(f, filepath.Base(s))
		m["iss"], m["aud"], m["iat"] = fuzzIssuer, "aud", 1700000000
		b, _ := json.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte(`{"iss":"https://tr.test","aud":["aud"],"iat":1700000000,"jti":"j","events":{"x":{}}}`))
	f.Add([]byte(`{"iss":"https://tr.test","aud":"aud","iat":1700000000,"jti":"j","sub_id":{"format":"aliases","identifiers":[{"format":"complex","user":{"format":"opaque","id":"u"}}]},"events":{"https://schemas.openid.net/secevent/risc/event-type/account-purged":{}}}`))
	f.Add([]byte(`{"iss":"https://tr.test","aud":"aud","iat":1.7e9,"toe":-1,"jti":"j","events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{"subject":{"subject_type":"ip-addresses","ip-addresses":["::1"]},"event_timestamp":1e300}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"iss":"https://tr.test","aud":"aud","iat":1700000000,"jti":"j","sub_id":{"format":"complex","session":{"format":"complex"}},"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{}}}`))
	f.Add([]byte(`{"iss":"https://tr.test","aud":"aud","iat":1700000000,"jti":"j","sub_id":{"format":"iss_sub","iss":"https://idp","sub":"u"},"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{"event_timestamp":1699999999}}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		var evTime time.Time
		r, store := fuzzReceiver(t, receiver.WithObserver(receiver.ObserverFunc(func(o receiver.Observation) {
			if o.SET != nil {
				evTime = o.SET.EventTime
			}
		})))
		defer r.Close()
		res, err := r.Receive(context.Background(), signSET(t, payload))
		if err != nil {
			if codeOf(err) == "" {
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
			// Stored, unless already past the store's retention (Put
			// accepts such an event and drops it).
			if _, ok := store.Lookup(k); !ok && fuzzNow.Sub(evTime) <= store.Retention() {
				t.Fatalf("acknowledged event for %v is not in the store", k)
			}
		}
		if res.Outcome == receiver.OutcomeStored && len(res.Keys) == 0 {
			t.Fatal("stored with no keys")
		}
		// A redelivery is a duplicate with the same outcome.
		again, err := r.Receive(context.Background(), signSET(t, payload))
		if err != nil || !again.Duplicate || again.Outcome != res.Outcome {
			t.Fatalf("redelivery: %+v, %v", again, err)
		}
	})
}

// FuzzReceiveCompact feeds arbitrary bytes as the compact SET itself, to
// exercise everything before and around the signature check (splitting,
// base64, the JWS header, key selection): nothing may panic, nothing
// unsigned may be accepted, and every refusal carries an RFC 8935 code
// (a SET whose kid finds no key is not refused but ErrKeysUnavailable).
func FuzzReceiveCompact(f *testing.F) {
	valid := signSET(f, []byte(`{"iss":"https://tr.test","aud":"aud","iat":1700000000,"jti":"j","sub_id":{"format":"opaque","id":"s"},"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{}}}`))
	f.Add(valid)
	parts := strings.Split(string(valid), ".")
	f.Add([]byte(parts[0] + "." + parts[1] + "."))
	f.Add([]byte(b64(`{"alg":"none","typ":"secevent+jwt"}`) + "." + parts[1] + "."))
	f.Add([]byte(b64(`{"alg":"HS256","typ":"secevent+jwt","kid":"k"}`) + "." + parts[1] + "." + parts[2]))
	f.Add([]byte(b64(`{"alg":"EdDSA","typ":"secevent+jwt","kid":"k","crit":["x"]}`) + "." + parts[1] + "." + parts[2]))
	f.Add([]byte("a.b.c.d.e"))
	f.Add([]byte(" \n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, _ := fuzzReceiver(t)
		defer r.Close()
		res, err := r.Receive(context.Background(), raw)
		if err != nil {
			// A kid other than "k" finds no key: temporary, not a refusal.
			if codeOf(err) == "" && !errors.Is(err, receiver.ErrKeysUnavailable) {
				t.Fatalf("refusal without a code: %v", err)
			}
			return
		}
		if res == nil {
			t.Fatal("nil result without an error")
		}
		// Accepted: the bytes must carry a valid signature by fuzzKey.
		p := strings.Split(strings.TrimSpace(string(raw)), ".")
		sig, err := base64.RawURLEncoding.DecodeString(p[2])
		if err != nil || !ed25519.Verify(fuzzKey.Public().(ed25519.PublicKey), []byte(p[0]+"."+p[1]), sig) {
			t.Fatalf("accepted a SET without a valid signature: %q", raw)
		}
	})
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
