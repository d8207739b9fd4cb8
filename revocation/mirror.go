package revocation

import "github.com/caekit/caekit/revocation/internal/mirror"

// Mirror support: stores that keep a Memory as a copy of an external source
// of truth (the Redis store) apply events without notifying, notify
// separately, and drop entries that the source no longer holds, so that a
// resynchronisation replaces the copy instead of only adding to it. These
// hooks are not part of the API: package revocation/internal/mirror hands
// them to the stores under revocation/.

func init() {
	mirror.Register(func(m *Memory) mirror.Writer[Event] { return mirrorWriter{m} })
}

// mirrorWriter is the mirror.Writer of one Memory.
type mirrorWriter struct{ m *Memory }

func (w mirrorWriter) Apply(ev Event) (bool, error) { return w.m.apply(ev) }
func (w mirrorWriter) Notify(ev Event)              { w.m.notify(ev) }
func (w mirrorWriter) Remove(ev Event) bool         { return w.m.remove(ev) }

// remove deletes the entry held for ev.Subject if it is exactly ev (same
// type, time and id), and reports whether it did. An entry that has been
// replaced by a newer event since ev was read is kept, so a caller can
// snapshot the store with Range, compare it with its source and remove what
// the source no longer holds without undoing events applied meanwhile.
// Subscribers are not notified: a removal lifts a revocation, it adds none.
func (m *Memory) remove(ev Event) bool {
	if ev.Subject.Kind >= kindCount {
		return false
	}
	h := m.hash(ev.Subject)
	s := m.shardFor(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.find(ev.Subject, h)
	if !ok {
		return false
	}
	if old := &s.slots[p]; old.typ != ev.Type || old.eid != ev.ID || !old.time().Equal(ev.Time) {
		return false
	}
	s.drop(ev.Subject, h, p)
	m.kinds[ev.Subject.Kind].Add(-1)
	m.count.Add(-1)
	return true
}
