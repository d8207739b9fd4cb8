// Package redisstore is a revocation.Store shared by the replicas of a
// service through Redis (single node, Sentinel or Cluster, via
// redis.UniversalClient from github.com/redis/go-redis/v9).
//
// # Hot path
//
// Every replica keeps a local mirror, a revocation.Memory. Lookup reads only
// the mirror, and Health is two atomic loads and a monotonic clock read, with
// no allocation: no call ever waits on Redis.
//
// # Write path
//
// Put validates the event (including length bounds: MaxScopeLen,
// MaxSubjectIDLen, MaxEventIDLen, and a time at most
// revocation.MaxFutureSkew ahead of the store's clock), then runs one Lua script on the subject's
// key, <prefix>rev:<kind>:<len scope>:<scope>:<id>. The script keeps only the
// newest event per subject: it writes the event, with a TTL equal to its
// relevance window (event time + retention, the longest token lifetime plus
// leeway), only when the key holds no event at the same time or later, and in
// that case PUBLISHes it on <prefix>events in the same atomic step. An older
// event arriving late (from a slow writer or another replica) never overwrites
// a newer one. Put returns nil only after Redis has answered, so an SSF
// receiver never acknowledges an event that was lost; then it applies the
// event to its own mirror and notifies subscribers.
//
// # Durability across failover
//
// Redis replicates asynchronously: a primary that dies before a replica
// copies a write loses it, and with it an event the store had already
// acknowledged. WithReplicaAcks makes Put send WAIT n on the script's
// connection and fail (ErrNotReplicated: the receiver answers 503, the
// transmitter retries) unless n replicas confirm in time. The default is 1
// for a Sentinel or Cluster client whose primaries have replicas, 0
// otherwise. The failover tests (failover_test.go) measure what each
// setting guarantees; the README's Redis section has the figures.
//
// # Fan-out: Pub/Sub plus resynchronisation, not Streams
//
// Replicas learn of each other's events through Pub/Sub, and reload the
// whole state with SCAN after every (re)subscription: at start, after a
// dropped connection, a Redis restart or a Sentinel failover; in a Cluster
// also when the cluster's epoch changes (a failover) and a few heartbeats
// after a resubscription; and at the latest every WithResyncInterval.
//
// A message is only a hint: anyone allowed to PUBLISH on the channel could
// have sent it. A replica reads the key the message names and applies what
// Redis holds, so a message with no key behind it changes nothing. A
// resynchronisation makes the mirror a copy of Redis: an entry whose key is
// gone (deleted by an operator, or expired early) is removed once a second
// read, at least StaleAfter later, confirms that it is still gone, so that
// a node briefly serving without its data during a failover cannot lift
// revocations. Pub/Sub alone is
// at-most-once, but the mirror needs only the newest event per subject, and
// that is exactly what the keys hold; so subscribe-then-scan is a complete
// recovery, whatever was published while a replica was away. The store
// subscribes before it scans, and applying an event is idempotent and
// newest-wins, so nothing falls between the two.
//
// Streams were considered: they give a replayable log with IDs, so a
// reconnecting replica could read from its checkpoint instead of scanning.
// They were not chosen because
//   - the log must be trimmed, and a replica away longer than the trimmed
//     window needs the full SCAN anyway, so Streams add a second path rather
//     than replace one;
//   - in Cluster one stream is one key on one node: every write from every
//     subject would go through that node, and writing the subject's key and
//     appending to the stream atomically would force every key into one hash
//     slot. With Pub/Sub every operation touches a single key, keys spread
//     over the whole cluster, no hash tags are needed, and PUBLISH reaches
//     subscribers on every node;
//   - Pub/Sub delivery on a healthy connection is a single push, well within
//     the target of 100 ms at p99 from Put on one replica to enforcement on
//     all (see BenchmarkPropagation).
//
// The cost is that a reconnect reloads the whole key space (one pipelined GET
// per SCAN batch); with the default retention that is every subject revoked
// in the last 28 hours, typically thousands of keys, which loads in
// milliseconds.
//
// # Staleness
//
// The store tracks when it last confirmed that its mirror is in step with
// Redis: a live, resynchronised subscription that delivered a message or
// answered a heartbeat PING (every WithHeartbeat when idle; a subscription
// silent for three heartbeats is reconnected). Staleness reports the time
// since then. Past WithStaleAfter the StalenessPolicy applies:
//
//   - FailClosed, the default: Health returns an error wrapping
//     revocation.ErrStale and interceptors refuse calls with Unavailable
//     until the store has reconnected and reloaded. The risk is availability:
//     a Redis outage longer than StaleAfter (default 30 s) takes every
//     replica's protected API down with it.
//   - KeepLastKnown: Health stays nil and the mirror keeps enforcing what it
//     knew. The risk is security: an event ingested by another replica that
//     can still reach Redis (a partition, not a full outage) is not enforced
//     here until contact returns. During a full outage no Put succeeds, so
//     no event is acknowledged to the transmitter and none is lost; it is
//     delivered again later.
//
// The default follows caekit's rule of failing closed on anything
// security-relevant. A mirror that is full (WithMaxEntries) and so misses
// events also makes Health fail, whatever the policy.
//
// # Keys, memory and limits
//
// All keys and the channel live under a prefix (WithPrefix, default
// "caekit:"). The store never deletes keys; they expire. Removing a key by
// hand un-revokes on every replica at its next resynchronisation (at the
// latest WithResyncInterval plus StaleAfter later). Each mirrored
// entry costs about 190-265 bytes for typical Entra identifiers (190 at 100k
// entries, 265 at 1M, where the map has just doubled; BenchmarkMirrorBytes),
// bounded by the length limits. A resynchronisation reads every key (SCAN
// and pipelined GETs, overlapped with decoding): about 0.75 s per 100k
// entries and 11-12 s per million on a loaded 2-core host (BenchmarkResync),
// during which look-ups keep answering from the mirror; keep StaleAfter
// above it. Every replica sharing a prefix must use the
// same retention. redis.Ring is refused: Pub/Sub does not cross its shards.
//
// Without replica acknowledgements (WithReplicaAcks(0, 0), or a single-node
// client), an event acknowledged by a primary that fails before replicating
// it is lost with the primary. Run Redis with appendonly and fsync if a
// single node must survive restarts.
package redisstore
