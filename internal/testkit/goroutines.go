package testkit

import (
	"bytes"
	"runtime"
)

// Running reports whether some goroutine has fn on its stack right now: fn
// is a full function name as stack traces print it, e.g.
// "github.com/caekit/caekit/policy.(*Watcher).run". It takes one snapshot
// of every goroutine and does not retry. Called right after a Close, it
// checks that Close waited for the goroutine it owns: goleak, which retries
// until goroutines have ended, would also pass for a Close that only
// signalled its goroutine to stop.
func Running(fn string) bool {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return bytes.Contains(buf, []byte("\n"+fn+"(")) // a frame line, not "created by"
}
