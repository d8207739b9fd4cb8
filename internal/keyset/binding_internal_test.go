package keyset

import (
	"crypto/ed25519"
	"math"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/caekit/caekit/internal/testclock"
)

func TestDiscoveryBinding(t *testing.T) {
	const ms = "https://login.microsoftonline.com"
	cases := []struct {
		name, url, doc string
		trusted        bool        // the document issuer was taken
		accept, refuse [][2]string // iss, tid
	}{
		{"same", "https://idp.example", "https://idp.example", true,
			[][2]string{{"https://idp.example", ""}}, [][2]string{{"https://idp.example/", ""}, {"https://other.example", ""}}},
		{"no document issuer", "https://idp.example", "", true,
			[][2]string{{"https://idp.example", ""}}, nil},
		{"trailing slash", "https://idp.example", "https://idp.example/", true,
			[][2]string{{"https://idp.example", ""}, {"https://idp.example/", ""}}, nil},
		{"Entra organizations", ms + "/organizations/v2.0", ms + "/{tenantid}/v2.0", true,
			[][2]string{{ms + "/t1/v2.0", "t1"}, {ms + "/organizations/v2.0", ""}},
			[][2]string{{ms + "/t1/v2.0", "t2"}, {ms + "/t1/v2.0", ""}, {ms + "/a/b/v2.0", "a/b"}, {ms + "/{tenantid}/v2.0", "{tenantid}"}}},
		{"Entra common, trailing slash", ms + "/common/", ms + "/{tenantid}/", true,
			[][2]string{{ms + "/t1/", "t1"}}, [][2]string{{"https://sts.windows.net/t1/", "t1"}}},
		{"Entra v1 issuer on another host", ms + "/common", "https://sts.windows.net/{tenantid}/", false,
			[][2]string{{ms + "/common", ""}}, [][2]string{{"https://sts.windows.net/t1/", "t1"}}},
		{"another provider's issuer", "https://evil.example", "https://idp.example", false,
			[][2]string{{"https://evil.example", ""}}, [][2]string{{"https://idp.example", ""}}},
		{"template on another host", "https://evil.example/x", ms + "/{tenantid}/v2.0", false,
			nil, [][2]string{{ms + "/t1/v2.0", "t1"}}},
		{"template whose instance has two segments", ms + "/a/b/v2.0", ms + "/{tenantid}/v2.0", false,
			nil, [][2]string{{ms + "/t1/v2.0", "t1"}}},
		{"template with two placeholders", "https://idp.example/x/y", "https://idp.example/{tenantid}/{tenantid}", false,
			nil, [][2]string{{"https://idp.example/t/t", "t"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, note := discoveryBinding(tc.url, tc.doc)
			if (note == "") != tc.trusted {
				t.Fatalf("note %q, want trusted=%t", note, tc.trusted)
			}
			if !b.accepts(tc.url, "") {
				t.Errorf("the discovery URL itself is not accepted")
			}
			for _, a := range tc.accept {
				if !b.accepts(a[0], a[1]) {
					t.Errorf("iss %q tid %q refused", a[0], a[1])
				}
			}
			for _, r := range tc.refuse {
				if b.accepts(r[0], r[1]) {
					t.Errorf("iss %q tid %q accepted", r[0], r[1])
				}
			}
		})
	}
	var none *issuerBinding
	if none.accepts("https://idp.example", "") {
		t.Error("a nil binding accepts")
	}
	if b, _ := discoveryBinding("https://idp.example", ""); b.accepts("", "") {
		t.Error("an empty iss is accepted")
	}
}

// TestInstallRebindsKeys: a key keeps its Key (and its cache entries)
// across refreshes only while its source's issuer binding is unchanged; a
// changed binding gives new Keys and withdraws the old ones.
func TestInstallRebindsKeys(t *testing.T) {
	cfg := Defaults()
	cfg.RotationGrace = time.Minute
	r, err := newRemote(&cfg, "https://idp.example", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public()
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k"}})
	if err != nil {
		t.Fatal(err)
	}
	now := testclock.Unix(1_900_000_000, 0)
	b1, _ := discoveryBinding("https://idp.example", "https://idp.example")
	r.bind.Store(b1)
	r.install([]jwkset.JWK{jwk}, now)
	first, err := r.key("EdDSA", "k", now)
	if err != nil || first.bind != b1 {
		t.Fatalf("first install: %v, bound to %v", err, first.bind)
	}
	r.install([]jwkset.JWK{jwk}, now)
	if again, _ := r.key("EdDSA", "k", now); again != first {
		t.Fatal("same binding: Key not reused")
	}
	b2, _ := discoveryBinding("https://idp.example", "https://idp.example/")
	r.bind.Store(b2)
	r.install([]jwkset.JWK{jwk}, now)
	second, err := r.key("EdDSA", "k", now)
	if err != nil || second == first || second.bind != b2 {
		t.Fatalf("new binding: %v, same rec %t", err, second == first)
	}
	if u := first.until.Load(); u == math.MaxInt64 || first.Live(now.Add(2*time.Minute).UnixNano()) {
		t.Fatalf("old Key not withdrawn: until %d", u)
	}
}
