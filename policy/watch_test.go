package policy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caekit/caekit/policy"
)

const policyV1 = `locations:
  - name: hq
    ranges: [203.0.113.0/24]
rules:
  - methods: ["*"]
    allow_locations: [hq]
`

const policyV2 = `locations:
  - name: hq
    ranges: [203.0.113.0/24, 8.8.8.0/24]
rules:
  - methods: ["*"]
    allow_locations: [hq]
`

const policyBroken = `locations:
  - name: hq
    ranges: [203.0.113.0/24, 8.8.8.0/33]
rules:
  - methods: ["*"]
    allow_locations: [hq]
`

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// replaceAtomically writes like editors and config managers do: a temporary
// file renamed over the original.
func replaceAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func nextReload(t *testing.T, ch <-chan policy.Reload) policy.Reload {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no reload reported")
		return policy.Reload{}
	}
}

func TestWatchReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyV1)
	e := newEngine(t, &policy.Policy{})
	reloads := make(chan policy.Reload, 16)
	w, err := policy.Watch(context.Background(), path, e,
		policy.WithInterval(5*time.Millisecond), policy.WithWatchLogger(quiet),
		policy.WithOnReload(func(r policy.Reload) { reloads <- r }))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	outside := req("/a.B/C", "8.8.8.8", claimsAt("", t0, "a"), t0)
	if e.LocationCheck().Check(ctx, outside) == nil {
		t.Fatal("initial file not in force")
	}

	// A good new version, written in place.
	writeFile(t, path, policyV2)
	if r := nextReload(t, reloads); r.Err != nil || r.Path != path || r.Hash == "" {
		t.Fatalf("reload = %+v", r)
	}
	if d := e.LocationCheck().Check(ctx, outside); d != nil {
		t.Fatalf("v2 not in force: %+v", d)
	}

	// A broken version: rejected, reported with file and line; v2 stays.
	replaceAtomically(t, path, policyBroken)
	r := nextReload(t, reloads)
	if r.Err == nil || !strings.Contains(r.Err.Error(), path+":3:") || !strings.Contains(r.Err.Error(), "invalid CIDR") {
		t.Fatalf("broken reload = %+v", r)
	}
	if d := e.LocationCheck().Check(ctx, outside); d != nil {
		t.Fatalf("last good policy not kept: %+v", d)
	}

	// Back to v1 by atomic rename: in force again.
	replaceAtomically(t, path, policyV1)
	if r := nextReload(t, reloads); r.Err != nil {
		t.Fatalf("reload = %+v", r)
	}
	if e.LocationCheck().Check(ctx, outside) == nil {
		t.Fatal("v1 not in force after rename")
	}

	// The file disappears: reported once, policy kept.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if r := nextReload(t, reloads); r.Err == nil {
		t.Fatalf("missing file reload = %+v", r)
	}
	if e.LocationCheck().Check(ctx, outside) == nil {
		t.Fatal("policy lost when the file vanished")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_ = w.Close() // idempotent
}

func TestWatchInitialErrors(t *testing.T) {
	dir := t.TempDir()
	e := newEngine(t, &policy.Policy{})
	if _, err := policy.Watch(context.Background(), filepath.Join(dir, "none.yaml"), e); err == nil {
		t.Fatal("missing file accepted")
	}
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, policyBroken)
	if _, err := policy.Watch(context.Background(), bad, e); err == nil || !strings.Contains(err.Error(), "bad.yaml:3:") {
		t.Fatalf("err = %v", err)
	}
	if _, err := policy.Watch(context.Background(), bad, e, policy.WithInterval(0)); err == nil {
		t.Fatal("zero interval accepted")
	}
}

// TestWatchCtxBoundsInitialisationOnly guards issue 17 step 5's rule that a
// constructor's ctx bounds initialisation only: Watch used to stop watching
// when its ctx ended, unlike NewValidator and redisstore.New. Now a ctx
// cancelled after Watch returns leaves the watcher reloading until Close,
// which waits for its goroutine (the goroutine's exit hook has run when
// Close returns; goleak in TestMain checks the rest), and a ctx already
// done makes Watch fail.
func TestWatchCtxBoundsInitialisationOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyV1)
	e := newEngine(t, &policy.Policy{})
	reloads := make(chan policy.Reload, 16)
	var exited atomic.Int32
	defer policy.OnWatcherExit(func() { exited.Add(1) })()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := policy.Watch(ctx, path, e, policy.WithInterval(time.Millisecond), policy.WithWatchLogger(quiet),
		policy.WithOnReload(func(r policy.Reload) { reloads <- r }))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	writeFile(t, path, policyV2)
	if r := nextReload(t, reloads); r.Err != nil {
		t.Fatalf("reload after Watch's ctx ended = %+v", r)
	}
	outside := req("/a.B/C", "8.8.8.8", claimsAt("", t0, "a"), t0)
	if d := e.LocationCheck().Check(context.Background(), outside); d != nil {
		t.Fatalf("v2 not in force after Watch's ctx ended: %+v", d)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if exited.Load() != 1 {
		t.Fatal("Close returned before the watcher's goroutine ended")
	}
	if _, err := policy.Watch(ctx, path, e); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch with a done ctx: err = %v, want context.Canceled", err)
	}
}

// TestWatchReportsAllBadOptions guards issue 17 step 5's rule for
// constructors: every bad argument in one error (errors.Join), a nil option
// reported with its position instead of a panic.
func TestWatchReportsAllBadOptions(t *testing.T) {
	_, err := policy.Watch(context.Background(), "unused.yaml", nil, policy.WithInterval(0), nil)
	if err == nil {
		t.Fatal("Watch accepted a nil engine, a zero interval and a nil option")
	}
	for _, want := range []string{"watch interval 0s is not positive", "Watch needs an Engine", "watch option 1 is nil"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestNewEngineReportsAllBadOptions: the same rule for NewEngine.
func TestNewEngineReportsAllBadOptions(t *testing.T) {
	_, err := policy.NewEngine(&policy.Policy{}, policy.WithChallengeAnswerWindow(0), nil,
		policy.WithIssuedAtSkew(-time.Second), policy.WithStrictIPv6Prefix(129), policy.WithChallengeMemory(0, time.Hour))
	if err == nil {
		t.Fatal("NewEngine accepted five bad options")
	}
	for _, want := range []string{
		"challenge answer window 0s is not positive",
		"option 1 is nil",
		"issued-at skew -1s is negative",
		"strict IPv6 prefix /129 outside /1../128",
		"challenge memory needs at least 1 entry",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
