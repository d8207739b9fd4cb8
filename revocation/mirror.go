package revocation

// Mirror support: stores that keep a Memory as a copy of an external source
// of truth (the Redis store) need to drop entries that the source no longer
// holds, so that a resynchronisation replaces the copy instead of only adding
// to it.

// Remove deletes the entry held for ev.Subject if it is exactly ev (same
// type, time and id), and reports whether it did. An entry that has been
// replaced by a newer event since ev was read is kept, so a caller can
// snapshot the store with Range, compare it with its source and remove what
// the source no longer holds without undoing events applied meanwhile.
// Subscribers are not notified: a removal lifts a revocation, it adds none.
func (m *Memory) Remove(ev Event) bool {
	if ev.Subject.Kind >= kindCount {
		return false
	}
	s := m.shardFor(ev.Subject)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[ev.Subject]
	if !ok || old.typ != ev.Type || old.id != ev.ID || !old.time.Equal(ev.Time) {
		return false
	}
	delete(s.m, ev.Subject)
	m.kinds[ev.Subject.Kind].Add(-1)
	m.count.Add(-1)
	return true
}
