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
// # Fan-out: Pub/Sub, a change log, and resynchronisation
//
// Replicas learn of each other's events through Pub/Sub. A message is only a
// hint: anyone allowed to PUBLISH on the channel could have sent it. A
// replica reads the key the message names and applies what Redis holds, so a
// message with no key behind it changes nothing. Applying an event is
// idempotent and newest-wins, so seeing an event twice is harmless.
//
// Pub/Sub is at-most-once: a replica away (a dropped connection, a Redis
// restart, a Sentinel failover) misses what was published meanwhile. Outside
// a Cluster the put script therefore also appends every stored event to a
// change log, a Redis Stream (<prefix>changes, WithChangeLog, trimmed to
// about 100,000 entries), in the same atomic step as the key. Each replica
// keeps a position in the log: the newest entry up to which it holds every
// change. After every (re)subscription, and at every heartbeat, it reads
// the entries after its position (XRANGE), reads the keys of the subjects
// they name whose mirrored event is older (the entries are hints too), and
// moves its position. A reconnect after a short disconnect costs the events
// written meanwhile, not the whole key space: about 1,000 missed events in
// milliseconds at a million mirrored (BenchmarkResync/catchup), where a full
// reload takes seconds.
//
// The first entry read must be the position itself, the same entry (ID and
// value): its presence proves that the log still holds everything after it,
// since Redis trims a stream from its oldest entry and replicates it in
// order. When it is gone (trimmed past a long disconnect, lost with a failed
// primary that had not replicated it, or a Redis restarted without it), the
// replica falls back to a full reload: SCAN over the prefix and pipelined
// GETs, which also marks its new position in the log before it starts.
//
// A full reload makes the mirror a copy of Redis: an entry whose key is gone
// (deleted by an operator, or expired early) is removed once a second read,
// at least StaleAfter later, confirms that it is still gone, so that a node
// briefly serving without its data during a failover cannot lift
// revocations. The log says nothing of deleted keys, so a store with a log
// also reloads fully every WithResyncInterval (15 minutes by default; 1
// minute without a log). The store subscribes before it reads, so nothing
// falls between the two.
//
// In a Cluster there is no change log: one stream is one key on one node, so
// every write would go through that node, and the script could not update a
// subject's key and the stream atomically across hash slots. There every
// operation touches a single key, keys spread over the whole cluster, no hash
// tags are needed, and PUBLISH reaches subscribers on every node. A Cluster
// replica reloads fully after every resubscription, when the cluster's epoch
// changes (a failover), a few heartbeats after a resubscription, and every
// WithResyncInterval (1 minute); the masters are scanned in parallel.
//
// During a rolling upgrade from a version without the change log, the older
// writers store events without log entries: a new replica that misses their
// message while disconnected finds the event at its next full reload. Set
// WithResyncInterval(time.Minute) until every writer is upgraded.
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
// With a change log, a heartbeat's catch-up confirms contact as well: the
// mirror then holds every change the log had.
//
// The default follows caekit's rule of failing closed on anything
// security-relevant. A mirror that is full (WithMaxEntries) and so misses
// events also makes Health fail, whatever the policy.
//
// # Keys, memory and limits
//
// All keys and the channel live under a prefix (WithPrefix, default
// "caekit:"). The store never deletes keys; they expire. Removing a key by
// hand un-revokes on every replica at its next full reload (at the latest
// WithResyncInterval plus StaleAfter later). Each mirrored entry costs about
// 165-210 bytes for typical Entra identifiers (188 at 1M;
// BenchmarkMirrorBytes), bounded by the length limits. A full reload reads
// every key (SCAN and pipelined GETs, overlapped with decoding): 0.4-0.75 s
// per 100k entries and 7.5-12 s per million on a shared 2-core host
// (BenchmarkResync), during which look-ups keep answering from the mirror;
// it runs at start, when the change log cannot be used, and every
// WithResyncInterval. Keep StaleAfter above it where there is no change log.
// The change log costs about 180 bytes per entry in Redis (MEMORY USAGE:
// 17.8 MB for 100,000 entries of Entra identifiers). Every replica sharing a
// prefix must use the
// same retention. redis.Ring is refused: Pub/Sub does not cross its shards.
//
// The store needs Redis 6.0 or later (SET KEEPTTL, SCAN TYPE; streams for
// the change log).
//
// Without replica acknowledgements (WithReplicaAcks(0, 0), or a single-node
// client), an event acknowledged by a primary that fails before replicating
// it is lost with the primary. Run Redis with appendonly and fsync if a
// single node must survive restarts.
package redisstore
