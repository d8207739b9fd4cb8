// Package ssftest provides an SSF transmitter on loopback for tests: it signs
// Security Event Tokens with its own RSA keys and serves its
// /.well-known/ssf-configuration, its JWKS, a stream management API, a
// verification endpoint and an RFC 8936 poll endpoint.
//
// It is a test double of a real transmitter, built on net/http/httptest; it
// is not a production transmitter.
package ssftest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Audience is the default aud of SETs signed by a Transmitter.
const Audience = "https://receiver.example.test"

// ManagementToken is the bearer token the management endpoints require.
const ManagementToken = "ssftest-management-token"

// Transmitter is a test SSF transmitter. Create it with New and Close it.
type Transmitter struct {
	// Server is the loopback HTTP server; Issuer is its URL.
	Server *httptest.Server
	// Issuer is the transmitter's issuer (the server URL).
	Issuer string

	mu       sync.Mutex
	keys     []signingKey // keys[0] signs
	stream   map[string]any
	status   string
	states   []string
	queue    []queued // poll queue, oldest first
	acked    map[string]bool
	setErrs  map[string]map[string]string
	polls    []map[string]any
	pushResp []int
	arrival  chan struct{}

	jwksHits atomic.Int64
	jwksDown atomic.Bool
	seq      atomic.Int64
}

type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

type queued struct {
	jti, set string
}

var (
	keyMu   sync.Mutex
	keyPool []*rsa.PrivateKey
	keyNext int
)

// key returns an RSA-2048 key; keys are generated once per process and reused
// across transmitters to keep tests fast.
func key(i int) *rsa.PrivateKey {
	keyMu.Lock()
	defer keyMu.Unlock()
	for len(keyPool) <= i {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keyPool = append(keyPool, k)
	}
	return keyPool[i]
}

// New starts a transmitter on 127.0.0.1.
func New() *Transmitter {
	t := &Transmitter{
		keys:    []signingKey{{kid: "k1", key: key(0)}},
		acked:   map[string]bool{},
		setErrs: map[string]map[string]string{},
		status:  "enabled",
		arrival: make(chan struct{}, 1),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/ssf-configuration", t.serveConfig)
	mux.HandleFunc("GET /jwks", t.serveJWKS)
	mux.HandleFunc("/streams", t.auth(t.serveStreams))
	mux.HandleFunc("GET /status", t.auth(t.serveStatus))
	mux.HandleFunc("POST /verify", t.auth(t.serveVerify))
	mux.HandleFunc("POST /poll", t.auth(t.servePoll))
	t.Server = httptest.NewServer(mux)
	t.Issuer = t.Server.URL
	return t
}

// Close stops the server.
func (t *Transmitter) Close() { t.Server.Close() }

// Configuration is the document served at /.well-known/ssf-configuration.
func (t *Transmitter) Configuration() map[string]any {
	return map[string]any{
		"spec_version":               "1_0",
		"issuer":                     t.Issuer,
		"jwks_uri":                   t.Issuer + "/jwks",
		"delivery_methods_supported": []string{"urn:ietf:rfc:8935", "urn:ietf:rfc:8936"},
		"configuration_endpoint":     t.Issuer + "/streams",
		"status_endpoint":            t.Issuer + "/status",
		"verification_endpoint":      t.Issuer + "/verify",
		"authorization_schemes":      []map[string]string{{"spec_urn": "urn:ietf:rfc:6750"}},
	}
}

// PollURL is the RFC 8936 poll endpoint.
func (t *Transmitter) PollURL() string { return t.Issuer + "/poll" }

// JWKSHits counts JWKS fetches.
func (t *Transmitter) JWKSHits() int64 { return t.jwksHits.Load() }

// SetJWKSDown makes the JWKS endpoint answer 503 while down is true.
func (t *Transmitter) SetJWKSDown(down bool) { t.jwksDown.Store(down) }

// RotateKey adds a new signing key with kid and signs with it from now on. The
// old keys stay published unless dropOld is true.
func (t *Transmitter) RotateKey(kid string, dropOld bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := signingKey{kid: kid, key: key(len(t.keys))}
	if dropOld {
		t.keys = []signingKey{k}
		return
	}
	t.keys = append([]signingKey{k}, t.keys...)
}

// PrivateKey returns the current signing key, for tests that forge variants.
func (t *Transmitter) PrivateKey() (kid string, k *rsa.PrivateKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.keys[0].kid, t.keys[0].key
}

// JWKS returns the public JWK Set document.
func (t *Transmitter) JWKS() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []map[string]string
	for _, k := range t.keys {
		keys = append(keys, map[string]string{
			"kty": "RSA", "kid": k.kid, "use": "sig", "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(k.key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(bigEndian(k.key.E)),
		})
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

func bigEndian(e int) []byte {
	var b []byte
	for ; e > 0; e >>= 8 {
		b = append([]byte{byte(e)}, b...)
	}
	return b
}

// Claims returns standard SET claims for one event: iss, aud (Audience), a
// fresh jti, iat now, events {eventType: payload}, and sub_id when subID is
// not nil. Modify the map before signing to build variants.
func (t *Transmitter) Claims(eventType string, payload map[string]any, subID map[string]any) map[string]any {
	if payload == nil {
		payload = map[string]any{}
	}
	c := map[string]any{
		"iss":    t.Issuer,
		"aud":    Audience,
		"jti":    "jti-" + strconv.FormatInt(t.seq.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"iat":    time.Now().Unix(),
		"events": map[string]any{eventType: payload},
	}
	if subID != nil {
		c["sub_id"] = subID
	}
	return c
}

// Sign signs claims as a SET with RS256, typ secevent+jwt and the current kid.
func (t *Transmitter) Sign(claims map[string]any) string {
	return t.SignWith(claims, nil)
}

// SignWith signs claims with header overrides (a nil value deletes a header).
func (t *Transmitter) SignWith(claims map[string]any, header map[string]any) string {
	kid, k := t.PrivateKey()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(claims))
	tok.Header["typ"] = "secevent+jwt"
	tok.Header["kid"] = kid
	for h, v := range header {
		if v == nil {
			delete(tok.Header, h)
		} else {
			tok.Header[h] = v
		}
	}
	s, err := tok.SignedString(k)
	if err != nil {
		panic(err)
	}
	return s
}

// SignRaw signs the exact header and payload bytes (no re-encoding) with
// RS256 and the current key, for tests that need JSON a JSON encoder would
// never produce (duplicate members, bad UTF-8).
func (t *Transmitter) SignRaw(header, payload []byte) string {
	_, k := t.PrivateKey()
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := jwt.SigningMethodRS256.Sign(signing, k)
	if err != nil {
		panic(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Event signs a one-event SET with standard claims and returns it with its jti.
func (t *Transmitter) Event(eventType string, payload, subID map[string]any) (set, jti string) {
	c := t.Claims(eventType, payload, subID)
	return t.Sign(c), c["jti"].(string)
}

// Push delivers set to a push endpoint as a transmitter would and returns
// the status code and body.
func Push(ctx context.Context, endpoint, authorization, set string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewBufferString(set))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// Enqueue adds a SET to the poll queue.
func (t *Transmitter) Enqueue(jti, set string) {
	t.mu.Lock()
	t.queue = append(t.queue, queued{jti: jti, set: set})
	t.mu.Unlock()
	select {
	case t.arrival <- struct{}{}:
	default:
	}
}

// Acked reports whether jti was acknowledged by a poller.
func (t *Transmitter) Acked(jti string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.acked[jti]
}

// SetErr returns the error a poller reported for jti, if any.
func (t *Transmitter) SetErr(jti string) (map[string]string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.setErrs[jti]
	return e, ok
}

// Queued returns the number of SETs not yet acknowledged or refused.
func (t *Transmitter) Queued() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue)
}

// PollRequests returns the decoded bodies of every poll request so far.
func (t *Transmitter) PollRequests() []map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]map[string]any(nil), t.polls...)
}

// States returns the states received by the verification endpoint.
func (t *Transmitter) States() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.states...)
}

// PushResponses returns the status codes of the pushes made by the
// verification endpoint.
func (t *Transmitter) PushResponses() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]int(nil), t.pushResp...)
}

func (t *Transmitter) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+ManagementToken {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (t *Transmitter) serveConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, t.Configuration())
}

func (t *Transmitter) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	t.jwksHits.Add(1)
	if t.jwksDown.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(t.JWKS())
}

func (t *Transmitter) serveStreams(w http.ResponseWriter, r *http.Request) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := r.URL.Query().Get("stream_id")
	switch r.Method {
	case http.MethodPost:
		if t.stream != nil {
			writeJSON(w, http.StatusConflict, map[string]string{"error": "stream exists"})
			return
		}
		var in map[string]any
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		in["stream_id"] = "stream-1"
		in["iss"] = t.Issuer
		in["events_supported"] = []string{"https://schemas.openid.net/secevent/caep/event-type/session-revoked"}
		in["events_delivered"] = in["events_requested"]
		if d, ok := in["delivery"].(map[string]any); ok && d["method"] == "urn:ietf:rfc:8936" {
			d["endpoint_url"] = t.PollURL()
		}
		t.stream = in
		writeJSON(w, http.StatusCreated, in)
	case http.MethodGet:
		if t.stream == nil || id != t.stream["stream_id"] {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such stream"})
			return
		}
		writeJSON(w, http.StatusOK, t.stream)
	case http.MethodPatch, http.MethodPut:
		var in map[string]any
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil || t.stream == nil || in["stream_id"] != t.stream["stream_id"] {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such stream"})
			return
		}
		if r.Method == http.MethodPut {
			in["iss"] = t.Issuer
			t.stream = in
		} else {
			for k, v := range in {
				t.stream[k] = v
			}
		}
		writeJSON(w, http.StatusOK, t.stream)
	case http.MethodDelete:
		if t.stream == nil || id != t.stream["stream_id"] {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such stream"})
			return
		}
		t.stream = nil
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (t *Transmitter) serveStatus(w http.ResponseWriter, r *http.Request) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := r.URL.Query().Get("stream_id")
	if t.stream == nil || id != t.stream["stream_id"] {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such stream"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"stream_id": id, "status": t.status})
}

// serveVerify records the state and, for a push stream, pushes the
// verification SET to the receiver before answering 204.
func (t *Transmitter) serveVerify(w http.ResponseWriter, r *http.Request) {
	var in struct {
		StreamID string `json:"stream_id"`
		State    string `json:"state"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	t.mu.Lock()
	stream := t.stream
	t.states = append(t.states, in.State)
	var endpoint, authz, method string
	if stream != nil {
		if d, ok := stream["delivery"].(map[string]any); ok {
			endpoint, _ = d["endpoint_url"].(string)
			authz, _ = d["authorization_header"].(string)
			method, _ = d["method"].(string)
		}
	}
	t.mu.Unlock()
	if stream == nil || in.StreamID != stream["stream_id"] {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such stream"})
		return
	}
	payload := map[string]any{}
	if in.State != "" {
		payload["state"] = in.State
	}
	set, jti := t.Event("https://schemas.openid.net/secevent/ssf/event-type/verification", payload,
		map[string]any{"format": "opaque", "id": in.StreamID})
	if method == "urn:ietf:rfc:8935" {
		status, _, err := Push(r.Context(), endpoint, authz, set)
		if err != nil {
			status = -1
		}
		t.mu.Lock()
		t.pushResp = append(t.pushResp, status)
		t.mu.Unlock()
	} else {
		t.Enqueue(jti, set)
	}
	w.WriteHeader(http.StatusNoContent)
}

// servePoll implements RFC 8936: it applies ack and setErrs, then returns up
// to maxEvents queued SETs (waiting up to one second for one unless
// returnImmediately), with moreAvailable.
func (t *Transmitter) servePoll(w http.ResponseWriter, r *http.Request) {
	var in struct {
		MaxEvents         *int                         `json:"maxEvents"`
		ReturnImmediately bool                         `json:"returnImmediately"`
		Ack               []string                     `json:"ack"`
		SetErrs           map[string]map[string]string `json:"setErrs"`
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(raw, &in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"err": "invalid_request", "description": err.Error()})
		return
	}
	var rec map[string]any
	_ = json.Unmarshal(raw, &rec)
	t.mu.Lock()
	t.polls = append(t.polls, rec)
	done := map[string]bool{}
	for _, j := range in.Ack {
		t.acked[j] = true
		done[j] = true
	}
	for j, e := range in.SetErrs {
		t.setErrs[j] = e
		done[j] = true
	}
	kept := t.queue[:0]
	for _, q := range t.queue {
		if !done[q.jti] {
			kept = append(kept, q)
		}
	}
	t.queue = kept
	t.mu.Unlock()

	max := 1000
	if in.MaxEvents != nil {
		max = *in.MaxEvents
	}
	if max > 0 && !in.ReturnImmediately && t.Queued() == 0 {
		timer := time.NewTimer(time.Second)
		select {
		case <-t.arrival:
		case <-timer.C:
		case <-r.Context().Done():
		}
		timer.Stop()
	}
	t.mu.Lock()
	sets := map[string]string{}
	for _, q := range t.queue {
		if len(sets) >= max {
			break
		}
		sets[q.jti] = q.set
	}
	more := len(t.queue) > len(sets)
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"sets": sets, "moreAvailable": more})
}

// String describes the transmitter.
func (t *Transmitter) String() string { return fmt.Sprintf("ssftest.Transmitter(%s)", t.Issuer) }
