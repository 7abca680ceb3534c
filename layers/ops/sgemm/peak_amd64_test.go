package sgemm

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/cpu"
)

//go:noescape
func fmaLoopAVX2(n int)

//go:noescape
func fmaLoopAVX512(n int)

// BenchmarkPeak measures the FMA throughput of this CPU, the yardstick of
// docs/performance.md: 12 independent chains of fused multiply-adds, per
// instruction set the CPU supports (256-bit AVX2, 512-bit AVX-512), on one
// core and on every core at once (GOMAXPROCS goroutines), in GFLOP/s.
func BenchmarkPeak(b *testing.B) {
	for _, isa := range []struct {
		name  string
		ok    bool
		lanes int
		loop  func(int)
	}{
		{"avx2", cpu.X86.HasAVX2 && cpu.X86.HasFMA, 8, fmaLoopAVX2},
		{"avx512", cpu.X86.HasAVX512F, 16, fmaLoopAVX512},
	} {
		for _, cores := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("%s/cores=%d", isa.name, cores), func(b *testing.B) {
				if !isa.ok {
					b.Skipf("this CPU has no %s", isa.name)
				}
				const iters = 1 << 20 // 12 Mi FMAs per call
				b.ResetTimer()
				var wg sync.WaitGroup
				for c := 0; c < cores; c++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < b.N; i++ {
							isa.loop(iters)
						}
					}()
				}
				wg.Wait()
				flops := float64(b.N) * iters * 12 * float64(isa.lanes) * 2 * float64(cores)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestPeakLoopsRun: the loops run (and return) on this CPU.
func TestPeakLoopsRun(t *testing.T) {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		fmaLoopAVX2(10)
	}
	if cpu.X86.HasAVX512F {
		fmaLoopAVX512(10)
	}
}

// TestCPUSwitch: VIT_CPU=generic turns the assembly off (CI runs the tests
// of layers/ and model/ once so); otherwise it is on wherever the CPU has
// AVX2 and FMA.
func TestCPUSwitch(t *testing.T) {
	generic := os.Getenv("VIT_CPU") == "generic"
	if want := !generic && cpu.X86.HasAVX && cpu.X86.HasAVX2 && cpu.X86.HasFMA; useAsm != want {
		t.Errorf("VIT_CPU=%q: assembly %v, expected %v", os.Getenv("VIT_CPU"), useAsm, want)
	}
	t.Logf("VIT_CPU=%q: assembly kernels %v", os.Getenv("VIT_CPU"), useAsm)
}
