package policy

// MemoryLen reports how many challenges the engine remembers (tests only).
func (e *Engine) MemoryLen() int {
	e.mem.mu.Lock()
	defer e.mem.mu.Unlock()
	return len(e.mem.entries)
}

// OnWatcherExit makes f run as every watcher's goroutine returns, until the
// returned restore is called (tests only; not for parallel tests).
func OnWatcherExit(f func()) (restore func()) {
	old := runExited
	runExited = f
	return func() { runExited = old }
}
