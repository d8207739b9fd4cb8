package idp_test

import (
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caekit/caekit/examples/internal/idp"
	"github.com/caekit/caekit/internal/testclock"
)

// TestStepUpACRAndAuthTime guards the dev IdP's RFC 9470 side (§4, §5;
// OIDC Core §3.1.2.1 for acr_values and max_age): user tokens carry acr and
// auth_time; refreshes keep them; acr_values steps the session up (new acr,
// auth_time now); max_age older than auth_time re-authenticates; a request
// the session already satisfies changes nothing; client_credentials refuses
// the parameters.
func TestStepUpACRAndAuthTime(t *testing.T) {
	var mu sync.Mutex
	now := testclock.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	p := start(t, idp.WithClock(clock))
	signedIn := clock().Unix()
	code, m := tokenReq(t, p, password("alice", cp1))
	if code != 200 {
		t.Fatalf("sign-in: %d %v", code, m)
	}
	c := parseAt(t, p, m["access_token"].(string), clock())
	rt := m["refresh_token"].(string)
	if c["acr"] != idp.ACRPassword || int64(c["auth_time"].(float64)) != signedIn {
		t.Fatalf("sign-in token acr %v auth_time %v, want %s %d", c["acr"], c["auth_time"], idp.ACRPassword, signedIn)
	}

	refresh := func(extra url.Values) map[string]any {
		t.Helper()
		f := refreshForm(rt, cp1)
		for k, v := range extra {
			f[k] = v
		}
		code, m := tokenReq(t, p, f)
		if code != 200 {
			t.Fatalf("refresh %v: %d %v", extra, code, m)
		}
		rt = m["refresh_token"].(string)
		return parseAt(t, p, m["access_token"].(string), clock())
	}
	authTime := func(c map[string]any) int64 { return int64(c["auth_time"].(float64)) }

	advance(10 * time.Minute)
	if c := refresh(nil); c["acr"] != idp.ACRPassword || authTime(c) != signedIn {
		t.Fatalf("plain refresh changed the authentication: %v %v", c["acr"], c["auth_time"])
	}
	// max_age 15 min: the 10-minute-old authentication satisfies it.
	if c := refresh(url.Values{"max_age": {"900"}}); authTime(c) != signedIn {
		t.Fatalf("satisfied max_age re-authenticated: auth_time %v", c["auth_time"])
	}
	// max_age 5 min: re-authenticate.
	c = refresh(url.Values{"max_age": {"300"}})
	if authTime(c) != clock().Unix() {
		t.Fatalf("max_age 300 after 10 min: auth_time %v, want now %d", c["auth_time"], clock().Unix())
	}
	advance(time.Minute)
	stepped := clock().Unix()
	c = refresh(url.Values{"acr_values": {"urn:example:mfa urn:example:hwk"}})
	if c["acr"] != "urn:example:mfa" || authTime(c) != stepped {
		t.Fatalf("step-up: acr %v auth_time %v", c["acr"], c["auth_time"])
	}
	// The session keeps the stepped-up acr and its time; asking for an acr
	// it has already is no new authentication.
	advance(time.Minute)
	if c := refresh(url.Values{"acr_values": {"urn:example:hwk urn:example:mfa"}}); c["acr"] != "urn:example:mfa" || authTime(c) != stepped {
		t.Fatalf("satisfied acr_values: acr %v auth_time %v", c["acr"], c["auth_time"])
	}

	for name, bad := range map[string]url.Values{
		"max_age word":     {"max_age": {"soon"}},
		"max_age negative": {"max_age": {"-1"}},
		"acr_values many":  {"acr_values": {strings.Repeat("a ", 17)}},
	} {
		f := refreshForm(rt, cp1)
		for k, v := range bad {
			f[k] = v
		}
		if code, m := tokenReq(t, p, f); code != 400 || m["error"] != "invalid_request" {
			t.Errorf("%s: %d %v, want invalid_request", name, code, m)
		}
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {idp.WorkloadClientID}, "client_secret": {idp.WorkloadClientSecret}, "acr_values": {"urn:example:mfa"}}
	if code, m := tokenReq(t, p, form); code != 400 || m["error"] != "invalid_request" || !strings.Contains(m["error_description"].(string), "client_credentials") {
		t.Fatalf("client_credentials with acr_values: %d %v", code, m)
	}
}
