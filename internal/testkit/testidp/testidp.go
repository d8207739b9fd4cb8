// Package testidp is a small OAuth 2.0 identity provider on loopback for
// caekit's client tests: a token endpoint (password and client_credentials
// grants) that issues ES256 JWT access tokens and honours the CAE parts of
// a claims request (xms_cc capabilities, nbf and acrs), and the RFC 9470
// step-up parameters acr_values and max_age (the first acr value becomes
// the token's acr; a max_age older than the auth_time set with SetClaim
// gives a fresh auth_time, as a re-authentication would).
package testidp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Test identities and token parameters.
const (
	Issuer       = "https://idp.test/tenant-1/v2.0"
	Audience     = "api://inbox"
	Scope        = "api://inbox/.default"
	Tenant       = "tenant-1"
	KID          = "idp-k1"
	ClientID     = "app"
	ClientSecret = "s3cret"
	Username     = "alice"
	Password     = "pw"
	SessionID    = "sid-alice"
)

// Request is what the token endpoint received, minus secrets.
type Request struct {
	GrantType string // grant_type
	Scope     string // scope
	Claims    string // claims, the claims request, if any
	ACRValues string // acr_values (RFC 9470 §4), if any
	MaxAge    string // max_age (RFC 9470 §4), if any
}

// IdP is the test identity provider. Its fields are set before use.
type IdP struct {
	// Lifetime of issued tokens (default 1h).
	Lifetime time.Duration
	// RefreshIn, when set, is sent as refresh_in (seconds).
	RefreshIn time.Duration

	srv *httptest.Server
	key *ecdsa.PrivateKey

	mu         sync.Mutex
	requests   []Request
	down       int // >0: answer 503; -1: forever
	delay      time.Duration
	claims     map[string]any // SetClaim
	ignoreACRS bool
}

// New starts an IdP on a loopback port. Close it when done.
func New() *IdP {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	i := &IdP{key: k, Lifetime: time.Hour}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", i.token)
	i.srv = httptest.NewServer(mux)
	return i
}

// Close stops the server.
func (i *IdP) Close() { i.srv.Close() }

// TokenURL is the token endpoint.
func (i *IdP) TokenURL() string { return i.srv.URL + "/token" }

// URL is the server's base URL.
func (i *IdP) URL() string { return i.srv.URL }

// PublicKey verifies the issued tokens.
func (i *IdP) PublicKey() *ecdsa.PublicKey { return &i.key.PublicKey }

// Requests returns the token requests received so far.
func (i *IdP) Requests() []Request {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]Request(nil), i.requests...)
}

// Count is len(Requests()).
func (i *IdP) Count() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.requests)
}

// SetDown makes the endpoint answer 503 temporarily_unavailable (true) or
// work again (false).
func (i *IdP) SetDown(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.down = 0
	if down {
		i.down = -1
	}
}

// SetDelay delays every answer.
func (i *IdP) SetDelay(d time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.delay = d
}

// SetClaim makes every token issued from now on carry the claim name with
// value v, over what the grant itself puts there (a policy test's ipaddr,
// sid, or another sub); a nil v leaves the claim out of the tokens.
func (i *IdP) SetClaim(name string, v any) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.claims == nil {
		i.claims = map[string]any{}
	}
	i.claims[name] = v
}

// SetIgnoreACRS makes the IdP ignore the acrs part of claims requests and
// the acr_values parameter (true), like an IdP whose conditional access
// does not define the context, or honour them again (false).
func (i *IdP) SetIgnoreACRS(ignore bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.ignoreACRS = ignore
}

func writeErr(w http.ResponseWriter, code int, e, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": e, "error_description": desc})
}

func (i *IdP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeErr(w, 400, "invalid_request", err.Error())
		return
	}
	f := r.PostForm
	i.mu.Lock()
	i.requests = append(i.requests, Request{GrantType: f.Get("grant_type"), Scope: f.Get("scope"), Claims: f.Get("claims"), ACRValues: f.Get("acr_values"), MaxAge: f.Get("max_age")})
	down, delay, ignoreACRS := i.down, i.delay, i.ignoreACRS
	extra := maps.Clone(i.claims)
	i.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if down != 0 {
		writeErr(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the test IdP is down")
		return
	}
	id, sec := f.Get("client_id"), f.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, sec = u, p
	}
	if id != ClientID || sec != ClientSecret {
		writeErr(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	now := time.Now()
	claims := jwt.MapClaims{"iss": Issuer, "aud": Audience, "tid": Tenant, "azp": ClientID, "jti": strconv.FormatInt(now.UnixNano(), 36)}
	switch f.Get("grant_type") {
	case "client_credentials":
		claims["sub"], claims["oid"], claims["idtyp"] = "app-sp", "app-sp", "app"
	case "password":
		if f.Get("username") != Username || f.Get("password") != Password {
			writeErr(w, http.StatusBadRequest, "invalid_grant", "AADSTS50126: invalid username or password")
			return
		}
		claims["sub"], claims["oid"], claims["sid"] = Username, "oid-"+Username, SessionID
	default:
		writeErr(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+f.Get("grant_type"))
		return
	}
	for k, v := range extra {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	iat := now.Unix()
	if c := f.Get("claims"); c != "" {
		var req struct {
			AccessToken struct {
				XMSCC struct {
					Values []string `json:"values"`
				} `json:"xms_cc"`
				NBF  *struct{ Value string } `json:"nbf"`
				ACRS *struct{ Value string } `json:"acrs"`
			} `json:"access_token"`
		}
		if err := json.Unmarshal([]byte(c), &req); err != nil {
			writeErr(w, 400, "invalid_request", "claims is not valid JSON: "+err.Error())
			return
		}
		if v := req.AccessToken.XMSCC.Values; len(v) > 0 {
			claims["xms_cc"] = v
		}
		if n := req.AccessToken.NBF; n != nil {
			v, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil {
				writeErr(w, 400, "invalid_request", "nbf value is not a number")
				return
			}
			// Honour the requested nbf literally: issue at it, never
			// later (a revocation challenge asks for the second after
			// the event, so that is enough; issue 12 item 2).
			iat = max(iat, v)
		}
		if a := req.AccessToken.ACRS; a != nil && !ignoreACRS {
			claims["acrs"] = []string{a.Value}
		}
	}
	if v := strings.Fields(f.Get("acr_values")); len(v) > 0 && !ignoreACRS {
		claims["acr"] = v[0]
	}
	if v := f.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeErr(w, 400, "invalid_request", "max_age is not a number of seconds")
			return
		}
		// Re-authenticate when the last authentication is older than
		// max_age (OIDC Core §3.1.2.1).
		if at, ok := claims["auth_time"].(int64); !ok || now.Unix()-at > n {
			claims["auth_time"] = now.Unix()
		}
	}
	claims["iat"], claims["nbf"] = iat, iat
	exp := now.Add(i.Lifetime)
	claims["exp"] = exp.Unix()
	j := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	j.Header["kid"] = KID
	j.Header["typ"] = "at+jwt"
	s, err := j.SignedString(i.key)
	if err != nil {
		writeErr(w, 500, "server_error", err.Error())
		return
	}
	resp := map[string]any{"access_token": s, "token_type": "Bearer", "expires_in": int64(i.Lifetime / time.Second)}
	if i.RefreshIn > 0 {
		resp["refresh_in"] = fmt.Sprint(int64(i.RefreshIn / time.Second))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}
