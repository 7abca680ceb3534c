package ops

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestParallelForCovers: every index of [0, n) is visited exactly once, in
// contiguous chunks, for plain loops, loops inside loops (the team is busy
// and the inner loop starts goroutines) and loops from several goroutines
// at once, over many rounds (helpers sleeping and spinning in between).
func TestParallelForCovers(t *testing.T) {
	check := func(t *testing.T, n int, counts []atomic.Int32) {
		t.Helper()
		for i := 0; i < n; i++ {
			if c := counts[i].Load(); c != 1 {
				t.Fatalf("n=%d: index %d visited %d times", n, i, c)
			}
		}
	}
	loop := func(n int, counts []atomic.Int32) {
		parallelFor(n, 1<<15, func(lo, hi int) {
			if lo >= hi || lo < 0 || hi > n {
				panic("bad chunk")
			}
			for i := lo; i < hi; i++ {
				counts[i].Add(1)
			}
		})
	}
	for round := 0; round < 200; round++ {
		n := 1 + round%37
		counts := make([]atomic.Int32, n)
		loop(n, counts)
		check(t, n, counts)
		if round%50 == 0 {
			time.Sleep(3 * spinFor) // let the helpers fall asleep
		}
	}
	// Nested.
	const outer, inner = 8, 16
	counts := make([]atomic.Int32, outer*inner)
	parallelFor(outer, 1<<15, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			parallelFor(inner, 1<<15, func(l, h int) {
				for i := l; i < h; i++ {
					counts[o*inner+i].Add(1)
				}
			})
		}
	})
	check(t, outer*inner, counts)
	// Concurrent callers.
	var wg sync.WaitGroup
	all := make([][]atomic.Int32, 4)
	for g := range all {
		all[g] = make([]atomic.Int32, 1000)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 50; r++ {
				loop(20, all[g][r*20:(r+1)*20])
			}
		}()
	}
	wg.Wait()
	for g := range all {
		check(t, 1000, all[g])
	}
}

// BenchmarkParallelStart measures how long the second half of a two-way
// loop waits to start after the loop is called, in the pattern of a graph
// run: loops of 300 µs (the caller busy with its own half) separated by
// 20 µs of serial work. On the team (µs/start) and with a goroutine
// started per loop, as parallelFor did before the team (go-per-loop).
func BenchmarkParallelStart(b *testing.B) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("one core")
	}
	busy := func(d time.Duration) {
		for t0 := time.Now(); time.Since(t0) < d; {
		}
	}
	measure := func(b *testing.B, start func(first, second func())) {
		var total time.Duration
		for b.Loop() {
			busy(20 * time.Microsecond) // the serial part of a graph between loops
			t0 := time.Now()
			var waited atomic.Int64
			start(func() { busy(300 * time.Microsecond) }, func() { waited.Store(int64(time.Since(t0))) })
			total += time.Duration(waited.Load())
		}
		b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/start")
	}
	b.Run("team", func(b *testing.B) {
		measure(b, func(first, second func()) {
			parallelFor(2, 1<<20, func(lo, hi int) {
				if lo == 0 {
					first()
				} else {
					second()
				}
			})
		})
	})
	b.Run("go-per-loop", func(b *testing.B) {
		measure(b, func(first, second func()) {
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); second() }()
			first()
			wg.Wait()
		})
	})
}
