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
// of layers/ and model/ once so), VIT_CPU=avx2 the AVX-512 kernels; otherwise
// each is on wherever the CPU has it.
func TestCPUSwitch(t *testing.T) {
	generic := os.Getenv("VIT_CPU") == "generic"
	if want := !generic && cpu.X86.HasAVX && cpu.X86.HasAVX2 && cpu.X86.HasFMA; useAsm != want {
		t.Errorf("VIT_CPU=%q: assembly %v, expected %v", os.Getenv("VIT_CPU"), useAsm, want)
	}
	wantWide := useAsm && cpu.X86.HasAVX512F && os.Getenv("VIT_CPU") != "avx2"
	if useAVX512 != wantWide {
		t.Errorf("VIT_CPU=%q: AVX-512 kernels %v, expected %v", os.Getenv("VIT_CPU"), useAVX512, wantWide)
	}
	t.Logf("VIT_CPU=%q: assembly kernels %v, AVX-512 kernels %v", os.Getenv("VIT_CPU"), useAsm, useAVX512)
}

// TestKernel512: one 6×32 tile of the AVX-512 kernels equals two 6×16
// tiles of the AVX2 ones, bit for bit, packed and in place, for k = 0…9
// (the unrolled loop and its tail) and 300.
func TestKernel512(t *testing.T) {
	if !useAsm || !cpu.X86.HasAVX512F {
		t.Skip("this CPU has no AVX-512")
	}
	for _, k := range []int{1, 2, 3, 4, 5, 9, 300} {
		a, b := make([]float32, 6*k), make([]float32, 2*16*k)
		for i := range a {
			a[i] = float32(i%13) - 6.25
		}
		for i := range b {
			b[i] = float32(i%7)*0.5 - 1.5
		}
		bias := make([]float32, 32)
		for j := range bias {
			bias[j] = float32(j) / 8
		}
		const ldc = 40
		for _, beta := range []float32{0, 0.5} {
			want, got := make([]float32, 6*ldc), make([]float32, 6*ldc)
			for i := range want {
				want[i] = float32(i % 5)
				got[i] = want[i]
			}
			kernelAsm(k, &a[0], &b[0], &want[0], ldc, 1.25, beta, &bias[0], 1)
			kernelAsm(k, &a[0], &b[16*k], &want[16], ldc, 1.25, beta, &bias[16], 1)
			kernel512(k, &a[0], &b[0], &got[0], ldc, 1.25, beta, &bias[0], 1)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("k=%d beta=%v: element %d is %v, AVX2 %v", k, beta, i, got[i], want[i])
				}
			}
			// A read in place: row i of A is a[i*k : (i+1)*k].
			rows := make([]float32, 6*k)
			for i := 0; i < 6; i++ {
				for p := 0; p < k; p++ {
					rows[i*k+p] = a[p*6+i]
				}
			}
			got2 := make([]float32, 6*ldc)
			for i := range got2 {
				got2[i] = float32(i % 5)
			}
			kernel512Rows(k, &rows[0], k, &b[0], &got2[0], ldc, 1.25, beta, &bias[0], 1)
			for i := range want {
				if got2[i] != want[i] {
					t.Fatalf("k=%d beta=%v in place: element %d is %v, AVX2 %v", k, beta, i, got2[i], want[i])
				}
			}
		}
	}
}
