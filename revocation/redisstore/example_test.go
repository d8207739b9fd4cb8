package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/redisstore"
)

// Every replica of a service opens a Store on the same Redis. An event Put
// on one replica is enforced on all of them; Lookup never leaves the process.
// (Not run: it needs a Redis server at localhost:6379.)
func ExampleNewFromURL() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := redisstore.NewFromURL(ctx, "redis://localhost:6379/0",
		redisstore.WithPrefix("inbox:"),
		redisstore.WithStaleAfter(30*time.Second),
		redisstore.WithStalenessPolicy(redisstore.FailClosed))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// The SSF receiver acknowledges an event only once Put returns nil.
	err = store.Put(ctx, revocation.Event{
		ID:      "set-jti-1",
		Type:    revocation.TypeUserDisabled,
		Subject: revocation.ObjectKey("tenant-id", "object-id"),
		Time:    time.Now(),
	})
	if err != nil {
		log.Fatal(err)
	}
	ev, revoked := store.Lookup(revocation.ObjectKey("tenant-id", "object-id"))
	fmt.Println(revoked, ev.Type, store.Health())
}

// With Sentinel or Cluster, build the client and pass it to New; the caller
// keeps ownership of the client. Set ContextTimeoutEnabled so that Put
// honours its context's deadline. (Not run: it needs a Redis Cluster.)
func ExampleNew_cluster() {
	ctx := context.Background()
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: []string{"redis-0:6379", "redis-1:6379", "redis-2:6379"},
		// Let Put give up when its context's deadline passes.
		ContextTimeoutEnabled: true,
	})
	defer client.Close()
	store, err := redisstore.New(ctx, client, redisstore.WithStalenessPolicy(redisstore.KeepLastKnown))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	fmt.Println(store.Len())
}

func ExampleStalenessPolicy() {
	fmt.Println(redisstore.FailClosed, redisstore.KeepLastKnown)
	// Output: fail_closed keep_last_known
}

// A replica that may be cut off from Redis for long (a zone outage of a few
// minutes at thousands of events a second) keeps a longer change log, so
// that it catches up on what it missed instead of reloading every event.
// Every replica sharing the prefix should use the same length. (Not run: it
// needs Redis Sentinel.)
func ExampleWithChangeLog() {
	ctx := context.Background()
	client := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            "caekit",
		SentinelAddrs:         []string{"sentinel-0:26379", "sentinel-1:26379", "sentinel-2:26379"},
		ContextTimeoutEnabled: true,
	})
	defer client.Close()
	store, err := redisstore.New(ctx, client, redisstore.WithChangeLog(1_000_000))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	fmt.Println(store.Len())
}
