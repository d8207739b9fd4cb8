package policy

// MemoryLen reports how many challenges the engine remembers (tests only).
func (e *Engine) MemoryLen() int {
	e.mem.mu.Lock()
	defer e.mem.mu.Unlock()
	return len(e.mem.entries)
}
