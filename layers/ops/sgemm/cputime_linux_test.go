package sgemm

import (
	"syscall"
	"time"
)

// threadCPUTime returns the CPU time consumed by the calling OS thread
// (the benchmarks lock their goroutine to its thread). On a busy machine it
// measures the work done better than wall time.
func threadCPUTime() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
