package ops

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The ops share out their loops (parallelFor) to a team of helper
// goroutines, one per core beyond the first, that wait for the next loop
// by spinning for a while before they sleep. Starting a goroutine per loop
// instead (as parallelFor first did) costs the wake-up of an idle core
// each time: on this project's 2-vCPU virtual machine, in loops of 300 µs
// separated by 20 µs of serial work, the second half of a loop started
// 141–146 µs after the call with a goroutine per loop against 3–4 µs on
// the team (BenchmarkParallelStart), where a Fashion-MNIST attention op
// takes 0.5 ms. The caller works on the loop too, taking chunks from the
// same counter, so a helper that is late or busy elsewhere only means the
// caller does more of it; the chunks, and so the results, are the same.

// spinFor is how long an idle helper keeps watching for work before it
// sleeps: long enough to bridge the gaps between the ops of a graph and
// between training steps, short enough that an idle program soon stops
// using the CPU.
const spinFor = 2 * time.Millisecond

type team struct {
	busy     sync.Mutex           // held by the caller whose loop the team runs
	gen      atomic.Uint64        // bumped for each new loop
	loop     atomic.Pointer[loop] // the current loop
	helpers  int                  // started so far (guarded by busy)
	sleeping atomic.Int32         // helpers blocked on wake
	wake     chan struct{}        // one token wakes one sleeping helper
}

// loop is one parallelFor call: chunks of [0, n) handed out by next.
type loop struct {
	f       func(lo, hi int)
	n       int
	chunk   int
	chunks  int
	next    atomic.Int64 // the next chunk to take
	pending atomic.Int64 // chunks not yet finished
}

var theTeam = team{wake: make(chan struct{}, 256)}

// work runs chunks of l until none is left.
func (l *loop) work() {
	for {
		c := int(l.next.Add(1) - 1)
		if c >= l.chunks {
			return
		}
		lo := c * l.chunk
		l.f(lo, min(lo+l.chunk, l.n))
		l.pending.Add(-1)
	}
}

// run runs f over the chunks of [0, n) on the calling goroutine and the
// team. It reports false, having run nothing, if the team is already busy
// (a loop inside a loop, or two graphs running at once).
func (t *team) run(n, chunk int, f func(lo, hi int)) bool {
	if !t.busy.TryLock() {
		return false
	}
	defer t.busy.Unlock()
	for want := runtime.GOMAXPROCS(0) - 1; t.helpers < want && t.helpers < cap(t.wake); t.helpers++ {
		go t.help()
	}
	l := &loop{f: f, n: n, chunk: chunk, chunks: (n + chunk - 1) / chunk}
	l.pending.Store(int64(l.chunks))
	t.loop.Store(l)
	t.gen.Add(1)
	for s := t.sleeping.Load(); s > 0; s-- {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	l.work()
	// Wait for chunks that helpers are still running.
	for spins := 0; l.pending.Load() > 0; spins++ {
		if spins > 64 {
			runtime.Gosched()
		}
	}
	return true
}

// help is a helper's life: run each new loop, spin for spinFor after it,
// then sleep until woken.
func (t *team) help() {
	seen := t.gen.Load()
	for {
		if g := t.gen.Load(); g != seen {
			seen = g
			t.loop.Load().work()
			continue
		}
		if t.waitForLoop(seen) {
			continue
		}
		t.sleeping.Add(1)
		if t.gen.Load() == seen { // no loop published since: sleep
			<-t.wake
		}
		t.sleeping.Add(-1)
	}
}

// waitForLoop spins until the generation moves on from seen (true) or
// spinFor has passed (false).
func (t *team) waitForLoop(seen uint64) bool {
	deadline := time.Now().Add(spinFor)
	for i := 0; ; i++ {
		if t.gen.Load() != seen {
			return true
		}
		if i%256 == 255 {
			if time.Now().After(deadline) {
				return false
			}
			runtime.Gosched() // let other goroutines of this P run
		}
	}
}
