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

// SentinelBinary is the name of the Sentinel binary looked up on PATH.
const SentinelBinary = "redis-sentinel"

// MasterName is the name the Sentinels of StartSentinel monitor.
const MasterName = "caekit"

// SentinelSet is a primary, its replicas and the Sentinels monitoring them,
// all on loopback.
type SentinelSet struct {
	// Primary is the server that was primary at start; after a failover it
	// is no longer (see CurrentPrimary).
	Primary *Server
	// Replicas replicate Primary at start.
	Replicas []*Server
	// Sentinels monitor Primary under MasterName.
	Sentinels []*Server
	// DownAfter is how long a primary must be unreachable before the
	// Sentinels consider it down.
	DownAfter time.Duration
	// Links are the proxies each replica replicates through, with
	// WithReplicationLinks (else nil): stalling one starves its replica of
	// the primary's writes.
	Links []*Proxy
}

// SentinelOption configures StartSentinel.
type SentinelOption func(*sentinelConfig)

type sentinelConfig struct{ links bool }

// WithReplicationLinks makes every replica replicate through its own Proxy
// (SentinelSet.Links), so that a test can keep writes from reaching the
// replicas while everything else stays up.
func WithReplicationLinks() SentinelOption { return func(c *sentinelConfig) { c.links = true } }

// StartSentinel starts a primary, replicas replicas of it and sentinels
// Sentinels (quorum: a majority of them) with a short down-after period, and
// waits until every replica is in sync and every Sentinel knows every
// replica. It needs redis-sentinel on PATH (Debian: apt-get install
// redis-sentinel); without it the test is skipped, or fails when
// CAEKIT_REQUIRE_REDIS=1. Everything stops when the test ends.
func StartSentinel(t testing.TB, replicas, sentinels int, opts ...SentinelOption) *SentinelSet {
	t.Helper()
	var cfg sentinelConfig
	for _, o := range opts {
		o(&cfg)
	}
	if replicas < 1 || sentinels < 1 {
		t.Fatalf("redistest: StartSentinel needs at least one replica and one sentinel, got %d and %d", replicas, sentinels)
	}
	Path(t)
	bin, err := exec.LookPath(SentinelBinary)
	if err != nil {
		msg := "redis-sentinel not found on PATH; install it (Debian/Ubuntu: apt-get install redis-sentinel) to run the Sentinel failover tests"
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s (%s=1 requires it)", msg, RequireEnv)
		}
		t.Skip(msg)
	}
	set := &SentinelSet{DownAfter: time.Second}
	set.Primary = Start(t)
	for i := 0; i < replicas; i++ {
		upstream := set.Primary.Addr()
		if cfg.links {
			p := NewProxy(t, upstream)
			set.Links = append(set.Links, p)
			upstream = p.Addr()
		}
		set.Replicas = append(set.Replicas, Start(t, ReplicaOf(upstream)))
	}
	waitUntil(t, "the replicas to be in sync", func() (bool, string) {
		info, err := Command(set.Primary.Addr(), "INFO replication")
		if err != nil {
			return false, err.Error()
		}
		return infoInt(info, "connected_slaves") == replicas && strings.Count(info, "state=online") == replicas, info
	})
	WaitReplicas(t, set.Primary.Addr(), replicas)
	conf := []string{
		fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d", MasterName, set.Primary.port, sentinels/2+1),
		fmt.Sprintf("sentinel down-after-milliseconds %s %d", MasterName, set.DownAfter.Milliseconds()),
		fmt.Sprintf("sentinel failover-timeout %s 5000", MasterName),
		fmt.Sprintf("sentinel parallel-syncs %s %d", MasterName, replicas),
	}
	for i := 0; i < sentinels; i++ {
		s := Start(t, func(c *config) { c.sentinel, c.binary = conf, bin })
		set.Sentinels = append(set.Sentinels, s)
	}
	want := fmt.Sprintf("slaves=%d,sentinels=%d", replicas, sentinels)
	for _, s := range set.Sentinels {
		waitUntil(t, "sentinel "+s.Addr()+" to know every replica and sentinel", func() (bool, string) {
			info, err := Command(s.Addr(), "INFO sentinel")
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(info, "status=ok") && strings.Contains(info, want), info
		})
	}
	return set
}

// SentinelAddrs returns the host:port of every Sentinel.
func (s *SentinelSet) SentinelAddrs() []string { return addrs(s.Sentinels) }

// CurrentPrimary returns the address the first live Sentinel reports for
// MasterName (from INFO sentinel), or "" if none answers.
func (s *SentinelSet) CurrentPrimary() string {
	for _, x := range s.Sentinels {
		info, err := Command(x.Addr(), "INFO sentinel")
		if err != nil {
			continue
		}
		if _, rest, ok := strings.Cut(info, "address="); ok {
			addr, _, _ := strings.Cut(rest, ",")
			return addr
		}
	}
	return ""
}

// waitUntil polls cond every 20 ms until it holds, failing t after the
// start timeout with the last detail cond returned.
func waitUntil(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: timed out after %v waiting for %s; last: %s", startTimeout, what, detail)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// infoInt returns the integer field name from an INFO reply, or -1.
func infoInt(info, name string) int {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	return -1
}
