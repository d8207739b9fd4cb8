package redisstore

// OnRunExit makes f run as every store's goroutine returns, until the
// returned restore is called (tests only; not for parallel tests).
func OnRunExit(f func()) (restore func()) {
	old := runExited
	runExited = f
	return func() { runExited = old }
}
