//go:build failover

package redisstore_test

// The long form of the failover scenarios (issue 18), behind the build tag
// "failover":
//
//	go test -tags failover -run TestFailoverLong -timeout 20m -v ./revocation/redisstore/ -failover.load 20s
//
// Each scenario runs with the durability default (WAIT 1) and, for
// comparison, with WithReplicaAcks(0, 0): the latter may lose acknowledged
// events when a primary dies, and the test reports how many instead of
// failing. A shorter -failover.load gives a quicker run.

import (
	"flag"
	"testing"
	"time"

	"github.com/caekit/caekit/revocation/redisstore"
)

var failoverLoad = flag.Duration("failover.load", 20*time.Second, "load duration after the fault in the long failover scenarios")

func longPlan() loadPlan {
	return loadPlan{interval: 2 * time.Millisecond, warmup: 2 * time.Second, after: *failoverLoad}
}

func TestFailoverLong(t *testing.T) {
	t.Run("sentinel/wait=1", func(t *testing.T) {
		t.Logf("sentinel, primary SIGKILLed, WAIT 1: %s", sentinelFailover(t, longPlan(), true))
	})
	t.Run("sentinel/wait=0", func(t *testing.T) {
		plan := longPlan()
		plan.lossExpected = true
		t.Logf("sentinel, primary SIGKILLed, WAIT 0: %s", sentinelFailover(t, plan, false, redisstore.WithReplicaAcks(0, 0)))
	})
	t.Run("cluster/wait=1", func(t *testing.T) {
		t.Logf("cluster, one master SIGKILLed, WAIT 1: %s", clusterFailover(t, longPlan()))
	})
	t.Run("cluster/wait=0", func(t *testing.T) {
		plan := longPlan()
		plan.lossExpected = true
		t.Logf("cluster, one master SIGKILLed, WAIT 0: %s", clusterFailover(t, plan, redisstore.WithReplicaAcks(0, 0)))
	})
	t.Run("partition", func(t *testing.T) {
		plan := longPlan()
		plan.healIn = *failoverLoad / 2
		t.Logf("partition, two replicas cut off for %v: %s", plan.healIn, partition(t, plan))
	})
}
