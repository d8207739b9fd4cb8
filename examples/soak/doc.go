// Package soak holds caekit's soak test: a long run of the server
// interceptors under mixed load while revocation events pour in. It has no
// code of its own; the test is behind the build tag soak, so that
// `go test ./...` never runs it (.ci/run runs it separately for 20 s).
//
// # What it does
//
// A real gRPC server on 127.0.0.1 with the caekit interceptors, an in-memory
// revocation store and tokens signed with a static ES256 key serves the
// InboxService of proto/example/inbox/v1. Many subjects call it at once,
// with unary calls (GetMessage) and server streams (WatchInbox), while a
// storm of thousands of revocation events per second is written to the
// store: most about unrelated subjects, some old (before the tokens' iat,
// revoking nothing), some new (revoking). A denied subject gets a new token,
// issued after the events, as a client would after a claims challenge.
//
// # What it asserts
//
//   - No call is allowed with a token that an already-ingested event revokes:
//     a call that started after the Put of a revoking event returned must be
//     denied, and a stream must end within a second of it. Calls racing
//     with the Put are excused, and counted.
//   - No wrongful denial: a call whose subject has no event at or after its
//     token's iat (none even started before the call ended) must be allowed.
//   - Stable memory and goroutines: heap and goroutine counts are sampled
//     every few seconds and must not grow beyond a generous bound over the
//     run; every sample is logged.
//
// # Running it
//
//	go test -tags soak -run TestSoak -timeout 30m -v ./examples/soak                      # 10 minutes
//	go test -tags soak -run TestSoak -timeout 5m -v ./examples/soak -soak.duration 20s    # CI-sized
//
// The duration can also be set with CAEKIT_SOAK_DURATION (e.g. "1h"); the
// flag wins. -soak.subjects, -soak.events (per second) and -soak.workers
// tune the load.
package soak
