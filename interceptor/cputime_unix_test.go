//go:build unix

package interceptor_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) the process used so far.
// Benchmarks report it per op besides ns/op: on a shared machine, wall time
// per op counts the time other processes held the CPU, CPU time does not.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
