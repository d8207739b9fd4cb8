package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster, each node a Server.
type Cluster struct {
	// Nodes are the cluster's nodes: masters only for StartCluster, masters
	// and replicas (in the order redis-cli assigned them) for
	// StartClusterWithReplicas. Masters tells which is which now.
	Nodes []*Server
}

// StartCluster starts n (at least 3) cluster-enabled servers on loopback,
// joins them with redis-cli --cluster create (redis-cli must be on PATH,
// Debian: apt-get install redis-tools) and waits until every node reports
// cluster_state:ok. The nodes stop when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return startCluster(t, n, 0, 0)
}

// StartClusterWithReplicas is StartCluster with replicas replicas per
// master and the given cluster-node-timeout (how long a master may be
// unreachable before its replica takes over; 0 means 2 s). It returns once
// the cluster is ok and every master has its replicas in sync.
func StartClusterWithReplicas(t testing.TB, masters, replicas int, nodeTimeout time.Duration) *Cluster {
	t.Helper()
	if replicas < 1 {
		t.Fatalf("redistest: StartClusterWithReplicas needs at least one replica per master, got %d", replicas)
	}
	return startCluster(t, masters, replicas, nodeTimeout)
}

func startCluster(t testing.TB, n, replicas int, nodeTimeout time.Duration) *Cluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters, got %d", n)
	}
	Path(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		msg := "redis-cli not found on PATH; install it (Debian/Ubuntu: apt-get install redis-tools) to run the Redis Cluster tests"
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s (%s=1 requires it)", msg, RequireEnv)
		}
		t.Skip(msg)
	}
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for i := 0; i < n*(1+replicas); i++ {
		s := Start(t, func(c *config) { c.cluster, c.nodeTimeout = true, nodeTimeout })
		c.Nodes = append(c.Nodes, s)
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(startTimeout)
	for _, s := range c.Nodes {
		for {
			info, err := Command(s.Addr(), "CLUSTER INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not ready: %v %q", s.Addr(), err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if replicas > 0 {
		waitUntil(t, "every master's replicas to be in sync", func() (bool, string) {
			masters := c.Masters()
			if len(masters) != n {
				return false, fmt.Sprintf("%d masters", len(masters))
			}
			for _, m := range masters {
				info, err := Command(m.Addr(), "INFO replication")
				if err != nil || infoInt(info, "connected_slaves") != replicas || strings.Count(info, "state=online") != replicas {
					return false, fmt.Sprintf("%s: %v %s", m.Addr(), err, info)
				}
			}
			return true, ""
		})
		for _, m := range c.Masters() {
			WaitReplicas(t, m.Addr(), replicas)
		}
	}
	return c
}

// Masters returns the live nodes that report role:master now.
func (c *Cluster) Masters() []*Server {
	var m []*Server
	for _, s := range c.Nodes {
		if info, err := Command(s.Addr(), "INFO replication"); err == nil && strings.Contains(info, "role:master") {
			m = append(m, s)
		}
	}
	return m
}

// Addrs returns the host:port of every node.
func (c *Cluster) Addrs() []string { return addrs(c.Nodes) }

// addrs returns the host:port of each server.
func addrs(servers []*Server) []string {
	a := make([]string, len(servers))
	for i, s := range servers {
		a[i] = s.Addr()
	}
	return a
}
