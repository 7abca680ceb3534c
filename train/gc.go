package train

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's target TuneGC sets.
const GCPercent = 10

// TuneGC sets the garbage collector's target to GCPercent unless the
// environment sets GOGC, and returns the target in effect. A training
// process's heap is almost all buffers that live for the whole run (weights,
// optimizer moments, the graph's activations), and a step leaves well under
// a megabyte of garbage; at Go's default GOGC=100 that garbage would grow the
// heap to twice the buffers' size before the first collection, doubling the
// peak memory of a long run. With GOGC=10 it grows by a tenth, and a
// collection, which need not scan the pointer-free buffers, is cheap.
// cmd/train calls it first thing; programs that embed a Run may too.
func TuneGC() int {
	if os.Getenv("GOGC") != "" {
		p := debug.SetGCPercent(100) // read the target, then restore it
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(GCPercent)
	return GCPercent
}
