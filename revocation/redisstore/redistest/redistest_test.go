package redistest_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/caekit/caekit/revocation/redisstore/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// do sends one inline command and returns the first reply line.
func do(t *testing.T, addr, cmd string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

func TestStartKillRestartPersists(t *testing.T) {
	srv := redistest.Start(t, redistest.WithPersistence())
	if got, err := do(t, srv.Addr(), "SET k v"); err != nil || got != "+OK" {
		t.Fatalf("SET = %q, %v", got, err)
	}
	srv.Kill()
	if _, err := do(t, srv.Addr(), "PING"); err == nil {
		t.Fatal("PING succeeded after Kill")
	}
	srv.Restart()
	if got, err := do(t, srv.Addr(), "GET k"); err != nil || got != "$1" {
		t.Fatalf("GET after restart = %q, %v; want the value written before the kill", got, err)
	}
	if !strings.HasPrefix(srv.URL(), "redis://127.0.0.1:") {
		t.Fatalf("URL = %q", srv.URL())
	}
}

func TestWithoutPersistenceRestartsEmpty(t *testing.T) {
	srv := redistest.Start(t)
	if _, err := do(t, srv.Addr(), "SET k v"); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Restart()
	if got, err := do(t, srv.Addr(), "GET k"); err != nil || got != "$-1" {
		t.Fatalf("GET after restart = %q, %v; want nil", got, err)
	}
}

func TestProxyCutRestore(t *testing.T) {
	srv := redistest.Start(t)
	p := redistest.NewProxy(t, srv.Addr())
	if got, err := do(t, p.Addr(), "PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING via proxy = %q, %v", got, err)
	}
	p.Cut()
	if _, err := do(t, p.Addr(), "PING"); err == nil {
		t.Fatal("PING via a cut proxy succeeded")
	}
	p.Restore()
	if got, err := do(t, p.Addr(), "PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING after restore = %q, %v", got, err)
	}
}

func TestProxyStall(t *testing.T) {
	srv := redistest.Start(t)
	p := redistest.NewProxy(t, srv.Addr())
	p.Stall()
	c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Fatal("a stalled proxy answered")
	}
	p.Restore()
	if got, err := do(t, p.Addr(), "PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING after restore = %q, %v", got, err)
	}
}

func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	if len(c.Addrs()) != 3 {
		t.Fatalf("Addrs = %v", c.Addrs())
	}
	info, err := redistest.Command(c.Addrs()[0], "CLUSTER INFO")
	if err != nil || !strings.Contains(info, "cluster_known_nodes:3") {
		t.Fatalf("CLUSTER INFO = %q, %v", info, err)
	}
}

func TestSentinelFailover(t *testing.T) {
	t0 := time.Now()
	set := redistest.StartSentinel(t, 2, 1)
	t.Logf("started in %v", time.Since(t0))
	t0 = time.Now()
	defer func() { t.Logf("failover in %v", time.Since(t0)) }()
	if got := set.CurrentPrimary(); got != set.Primary.Addr() {
		t.Fatalf("CurrentPrimary = %q, want %s", got, set.Primary.Addr())
	}
	set.Primary.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for set.CurrentPrimary() == set.Primary.Addr() {
		if time.Now().After(deadline) {
			t.Fatal("no failover within 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := set.CurrentPrimary()
	if got != set.Replicas[0].Addr() && got != set.Replicas[1].Addr() {
		t.Fatalf("promoted %q, not one of the replicas", got)
	}
}

func TestClusterWithReplicasFailover(t *testing.T) {
	c := redistest.StartClusterWithReplicas(t, 3, 1, 500*time.Millisecond)
	if len(c.Nodes) != 6 || len(c.Masters()) != 3 {
		t.Fatalf("%d nodes, %d masters; want 6 and 3", len(c.Nodes), len(c.Masters()))
	}
	dead := c.Masters()[0]
	dead.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for len(c.Masters()) != 3 {
		if time.Now().After(deadline) {
			t.Fatal("no replica took over within 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
