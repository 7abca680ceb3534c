//go:build !linux

package sgemm

import "time"

// threadCPUTime is unavailable on this OS; benchmarks then skip the CPU-time
// metric.
func threadCPUTime() time.Duration { return 0 }
