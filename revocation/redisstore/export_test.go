package redisstore

import "github.com/caekit/caekit/revocation"

// OnRunExit makes f run as every store's goroutine returns, until the
// returned restore is called (tests only; not for parallel tests).
func OnRunExit(f func()) (restore func()) {
	old := runExited
	runExited = f
	return func() { runExited = old }
}

// FullSyncs and CatchUps count completed full reloads and change-log
// catch-ups (tests only).
func (s *Store) FullSyncs() uint64 { return s.fullSyncs.Load() }

// CatchUps: see FullSyncs.
func (s *Store) CatchUps() uint64 { return s.catchUps.Load() }

// Encode and SubjectKey expose the stored form of an event, for tests that
// write to Redis behind a store's back.
func Encode(ev revocation.Event) string { return encode(ev) }

// SubjectKey: see Encode.
func SubjectKey(prefix string, k revocation.Key) string { return subjectKey(prefix, k) }
