// Package mirror is the write access that stores inside caekit need when
// they keep a revocation.Memory as a copy of an external source of truth
// (the Redis store): apply an event without notifying subscribers, notify
// them separately, and remove an entry the source no longer holds. Package
// revocation does not export these hooks; it registers them here when it
// is initialised, and only packages under revocation/ can import this one.
//
//	w := mirror.Of[*revocation.Memory, revocation.Event](mem)
//	if changed, err := w.Apply(ev); err == nil && changed {
//		w.Notify(ev)
//	}
package mirror

// Writer is the mirror write access to one revocation.Memory; E is
// revocation.Event.
type Writer[E any] interface {
	// Apply records ev like Memory.Put but without notifying subscribers,
	// and reports whether ev changed what Lookup returns.
	Apply(ev E) (changed bool, err error)
	// Notify calls the Memory's subscribers with ev.
	Notify(ev E)
	// Remove deletes the entry held for ev's subject if it is exactly ev
	// (same type, time and id), and reports whether it did. It notifies no
	// one: a removal lifts a revocation, it adds none.
	Remove(ev E) bool
}

// of is the accessor package revocation registers: a func(M) Writer[E].
var of any

// Register records the accessor. Package revocation calls it from init; it
// is not for other callers.
func Register[M, E any](f func(M) Writer[E]) { of = f }

// Of returns the write access to m. M and E must be *revocation.Memory and
// revocation.Event; Of panics otherwise, which is a bug in the caller, not
// an input error.
func Of[M, E any](m M) Writer[E] {
	f, ok := of.(func(M) Writer[E])
	if !ok {
		panic("revocation/internal/mirror: Of called with types package revocation did not register (or revocation not linked)")
	}
	return f(m)
}
