package receiver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
	"github.com/caekit/caekit/revocation/ssf/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const pushAuth = "Bearer push-secret-0123456789"

// testScope lets the test transmitter (on 127.0.0.1) name the subjects of
// the test IdP "https://idp.example.test", the tenants and the e-mail
// domain the tests use: by default a transmitter may name only its own.
var testScope = []receiver.Option{
	receiver.WithSubjectIssuers("https://idp.example.test"),
	receiver.WithSubjectTenants("t1", "tid-1", "tid-2"),
	receiver.WithEmailDomains("example.com"),
}

// flakyStore is a real Memory whose Put can be made to fail, and counts Puts.
type flakyStore struct {
	*revocation.Memory
	fail atomic.Bool
	puts atomic.Int64
}

func (f *flakyStore) Put(ctx context.Context, ev revocation.Event) error {
	if f.fail.Load() {
		return errors.New("store is down")
	}
	f.puts.Add(1)
	return f.Memory.Put(ctx, ev)
}

// recorder is an Observer that keeps every Observation.
type recorder struct {
	mu  sync.Mutex
	obs []receiver.Observation
}

func (r *recorder) Observe(o receiver.Observation) {
	r.mu.Lock()
	r.obs = append(r.obs, o)
	r.mu.Unlock()
}

func (r *recorder) count(out receiver.Outcome) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.obs {
		if o.Outcome == out {
			n++
		}
	}
	return n
}

func (r *recorder) last() receiver.Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.obs) == 0 {
		return receiver.Observation{}
	}
	return r.obs[len(r.obs)-1]
}

type env struct {
	tr    *ssftest.Transmitter
	store *flakyStore
	r     *receiver.Receiver
	srv   *httptest.Server
	obs   *recorder
}

// newEnv starts a transmitter, a receiver that discovers it, and a push endpoint.
func newEnv(t *testing.T, opts ...receiver.Option) *env {
	t.Helper()
	tr := ssftest.New()
	t.Cleanup(tr.Close)
	e := &env{tr: tr, store: &flakyStore{Memory: teststore.Memory(t)}, obs: &recorder{}}
	base := []receiver.Option{
		receiver.WithIssuer(tr.Issuer), receiver.WithAudience(ssftest.Audience), receiver.WithStore(e.store),
		receiver.WithPushAuthorization(pushAuth), receiver.WithObserver(e.obs),
	}
	base = append(base, testScope...)
	r, err := receiver.New(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	e.r = r
	e.srv = httptest.NewServer(r)
	t.Cleanup(e.srv.Close)
	return e
}

// push delivers set and returns the status and decoded error body.
func (e *env) push(t *testing.T, set string) (int, errorResponse) {
	t.Helper()
	return pushTo(t, e.srv.URL, pushAuth, set)
}

func pushTo(t *testing.T, url, auth, set string) (int, errorResponse) {
	t.Helper()
	status, body, err := ssftest.Push(context.Background(), url, auth, set)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	var er errorResponse
	if status != 202 {
		if err := json.Unmarshal(body, &er); err != nil {
			t.Fatalf("status %d with non-JSON body %q", status, body)
		}
	} else if len(body) != 0 {
		t.Fatalf("202 with non-empty body %q", body)
	}
	return status, er
}

// loadSpec reads a testdata spec example, dropping // comment lines.
func loadSpec(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/spec/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if !strings.HasPrefix(strings.TrimSpace(sc.Text()), "//") {
			out.WriteString(sc.Text() + "\n")
		}
	}
	var m map[string]any
	d := json.NewDecoder(&out)
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// errorResponse is the RFC 8935 §2.3 error body, as a transmitter reads it.
type errorResponse struct {
	Err         string `json:"err"`
	Description string `json:"description"`
}

// contentTypeSET is the media type of a pushed SET (RFC 8935 §2).
const contentTypeSET = "application/secevent+jwt"

// unknownKIDRefreshBurst is how many JWKS refreshes unknown kids may trigger
// back to back (see Limits.UnknownKIDRefresh).
const unknownKIDRefreshBurst = 3

// codeOf returns the RFC 8935 code of a rejection, "" for any other error.
func codeOf(err error) string {
	var e *receiver.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// newClient returns a stream-management client, failing t on an error.
func newClient(t testing.TB, issuer string, opts ...stream.Option) *stream.Client {
	t.Helper()
	c, err := stream.New(issuer, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
