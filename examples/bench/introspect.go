package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The resource server's credentials at the introspection endpoint.
const (
	introspectClientID     = "inbox-api"
	introspectClientSecret = "inbox-api-secret-for-the-benchmark-only"
	maxIntrospectionBody   = 64 << 10
)

// introspection is an RFC 7662 section 2.2 response.
type introspection struct {
	Active    bool         `json:"active"`
	Scope     string       `json:"scope,omitempty"`
	ClientID  string       `json:"client_id,omitempty"`
	Username  string       `json:"username,omitempty"`
	TokenType string       `json:"token_type,omitempty"`
	Exp       int64        `json:"exp,omitempty"`
	Iat       int64        `json:"iat,omitempty"`
	Nbf       int64        `json:"nbf,omitempty"`
	Sub       string       `json:"sub,omitempty"`
	Aud       audienceList `json:"aud,omitempty"`
	Iss       string       `json:"iss,omitempty"`
	Jti       string       `json:"jti,omitempty"`
}

// audienceList is an aud member: a string or an array of strings.
type audienceList []string

// UnmarshalJSON accepts aud as a string or an array of strings.
func (a *audienceList) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audienceList{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	*a = ss
	return nil
}

// authServer is the authorization server's RFC 7662 endpoint on loopback
// HTTP. It knows the tokens it issued (a map lookup, the cheapest possible
// token store) and answers with their metadata. It runs in the benchmark's
// process, so its CPU time counts against the Introspection case, as an
// authorization server on the same host would.
type authServer struct {
	url  string
	srv  *http.Server
	done chan struct{}

	mu     sync.RWMutex
	tokens map[string]*introspection
}

func startAuthServer() (*authServer, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("introspection endpoint: listen: %w", err)
	}
	as := &authServer{
		url:    "http://" + lis.Addr().String() + "/oauth2/introspect",
		done:   make(chan struct{}),
		tokens: map[string]*introspection{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/introspect", as.introspect)
	as.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(as.done)
		_ = as.srv.Serve(lis)
	}()
	return as, nil
}

func (as *authServer) close() {
	_ = as.srv.Close()
	<-as.done
}

// register records an issued token, as the authorization server would when
// minting it.
func (as *authServer) register(raw string, c jwt.MapClaims) {
	num := func(k string) int64 {
		switch v := c[k].(type) {
		case int64:
			return v
		case float64:
			return int64(v)
		}
		return 0
	}
	str := func(k string) string { s, _ := c[k].(string); return s }
	r := &introspection{
		Active: true, Scope: str("scp"), ClientID: str("azp"), Username: str("preferred_username"),
		TokenType: "Bearer", Exp: num("exp"), Iat: num("iat"), Nbf: num("nbf"), Sub: str("sub"),
		Aud: audienceList{str("aud")}, Iss: str("iss"), Jti: str("jti"),
	}
	as.mu.Lock()
	as.tokens[raw] = r
	as.mu.Unlock()
}

func (as *authServer) introspect(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(id), []byte(introspectClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(introspectClientSecret)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		http.Error(w, "client authentication failed", http.StatusUnauthorized)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxIntrospectionBody)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	raw := r.PostForm.Get("token")
	as.mu.RLock()
	rec := as.tokens[raw]
	as.mu.RUnlock()
	resp := introspection{Active: false}
	if rec != nil && time.Now().Unix() < rec.Exp {
		resp = *rec
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(&resp)
}

// introspector is the resource server's side: it asks the endpoint about
// every call's token, over a keep-alive connection pool.
type introspector struct {
	url       string
	client    *http.Client
	transport *http.Transport
}

func newIntrospector(endpoint string) *introspector {
	tr := &http.Transport{
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512, // no connection churn at concurrency 64
		IdleConnTimeout:     90 * time.Second,
	}
	return &introspector{url: endpoint, transport: tr, client: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

func (in *introspector) close() { in.transport.CloseIdleConnections() }

var errInactive = errors.New("token is not active")

// check introspects raw and applies the resource server's own rules.
func (in *introspector) check(ctx context.Context, raw string) (*introspection, error) {
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.url, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("introspection request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(introspectClientID, introspectClientSecret)
	resp, err := in.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspection: %w", err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxIntrospectionBody))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("introspection: HTTP %d", resp.StatusCode)
	}
	var r introspection
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxIntrospectionBody)).Decode(&r); err != nil {
		return nil, fmt.Errorf("introspection response: %w", err)
	}
	if !r.Active {
		return nil, errInactive
	}
	now := time.Now().Unix()
	audOK := false
	for _, a := range r.Aud {
		audOK = audOK || a == audience
	}
	switch {
	case r.Iss != issuer:
		return nil, errors.New("wrong issuer")
	case !audOK:
		return nil, errors.New("wrong audience")
	case r.Exp <= now:
		return nil, errors.New("expired")
	case !strings.Contains(" "+r.Scope+" ", " Inbox.Read "):
		return nil, errors.New("missing scope Inbox.Read")
	}
	return &r, nil
}

type introspectionKey struct{}

// authFunc is the go-grpc-middleware AuthFunc of the Introspection case.
func (in *introspector) authFunc(ctx context.Context) (context.Context, error) {
	raw, err := auth.AuthFromMD(ctx, "bearer")
	if err != nil {
		return nil, err
	}
	r, err := in.check(ctx, raw)
	if err != nil {
		if errors.Is(err, errInactive) {
			return nil, status.Error(codes.Unauthenticated, "invalid token")
		}
		return nil, status.Error(codes.Unauthenticated, "token could not be introspected")
	}
	return context.WithValue(ctx, introspectionKey{}, r), nil
}
