package sgemm

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// benchShapes are the products of a ViT training step.
var benchShapes = []struct {
	name    string
	tA, tB  bool
	m, n, k int
}{
	{"qkv_NN_8320x576x192", false, false, 8320, 576, 192},
	{"linear_NT_8320x768x192", false, true, 8320, 768, 192},
	{"wgrad_TN_768x192x8320", true, false, 768, 192, 8320},
	{"attn_NN_65x65x64", false, false, 65, 65, 64},
	{"attn_NN_65x64x65", false, false, 65, 64, 65},
	{"attn_NT_65x65x64", false, true, 65, 65, 64},
	// The Fashion-MNIST recipe's model (50 tokens, width 64, head width 16).
	{"f_lin_NT_6400x192x64", false, true, 6400, 192, 64},
	{"f_dx_NN_6400x64x192", false, false, 6400, 64, 192},
	{"f_wg_TN_192x64x6400", true, false, 192, 64, 6400},
	{"f_fc2_NT_6400x64x128", false, true, 6400, 64, 128},
	{"f_s_NT_50x50x16", false, true, 50, 50, 16},
	{"f_o_NN_50x16x50", false, false, 50, 16, 50},
	{"f_dk_TN_50x16x50", true, false, 50, 16, 50},
}

// reportGFLOPS reports GFLOP/s over wall time and, where the OS gives the
// thread's CPU time, "cpuGFLOP/s" over the CPU time the benchmark thread
// actually got, which is the better figure on a busy machine.
func reportGFLOPS(b *testing.B, flopsPerOp float64, cpu time.Duration) {
	total := flopsPerOp * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu > 0 {
		b.ReportMetric(total/cpu.Seconds()/1e9, "cpuGFLOP/s")
	}
}

// BenchmarkSgemm compares this package with gonum's pure-Go Sgemm, both
// single-threaded (GOMAXPROCS=1 keeps gonum's worker goroutines on one core).
// Run e.g.: go test -run='^$' -bench=Sgemm -benchtime=200ms ./layers/ops/sgemm/
func BenchmarkSgemm(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	rng := rand.New(rand.NewPCG(1, 1))
	impls := []struct {
		name string
		f    func(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	}{
		{"sgemm", Sgemm},
		{"sgemm-go", func(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			sgemm(false, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil, nil, 0)
		}},
		{"gonum", func(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			ta, tb := blas.NoTrans, blas.NoTrans
			if tA {
				ta = blas.Trans
			}
			if tB {
				tb = blas.Trans
			}
			gonum.Implementation{}.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}},
	}
	for _, s := range benchShapes {
		p := newProblem(rng, s.tA, s.tB, s.m, s.n, s.k, 0, 1, 0)
		flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
		for _, im := range impls {
			if im.name == "sgemm-go" && flops > 1e8 {
				continue // too slow to be worth the machine time
			}
			b.Run(fmt.Sprintf("%s/%s", s.name, im.name), func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				// Warm up (packing buffers, caches) outside the timed loop.
				im.f(p.tA, p.tB, p.m, p.n, p.k, 1, p.a, p.lda, p.b, p.ldb, 0, p.c, p.ldc)
				t0 := threadCPUTime()
				for b.Loop() {
					im.f(p.tA, p.tB, p.m, p.n, p.k, 1, p.a, p.lda, p.b, p.ldb, 0, p.c, p.ldc)
				}
				cpu := threadCPUTime() - t0
				if im.name == "gonum" {
					cpu = 0 // gonum's worker goroutines run on other threads
				}
				reportGFLOPS(b, flops, cpu)
			})
		}
	}
}

// BenchmarkKernel measures the micro-kernels alone on L1-resident panels
// (k = 256): the ceiling for the whole routine.
func BenchmarkKernel(b *testing.B) {
	const k = kcMax
	a := make([]float32, k*mr)
	bp := make([]float32, k*nr)
	c := make([]float32, mr*nr)
	flops := float64(2 * mr * nr * k)
	run := func(name string, f func()) {
		flops := flops
		if name == "avx512" {
			flops *= 2 // a 6×32 tile
		}
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			t0 := threadCPUTime()
			for b.Loop() {
				f()
			}
			reportGFLOPS(b, flops, threadCPUTime()-t0)
		})
	}
	if useAsm {
		run("asm", func() { kernelAsm(k, &a[0], &bp[0], &c[0], nr, 1, 1, nil, 1) })
	}
	if useAVX512 {
		bp2 := make([]float32, 2*k*nr)
		c2 := make([]float32, mr*2*nr)
		run("avx512", func() { kernel512(k, &a[0], &bp2[0], &c2[0], 2*nr, 1, 1, nil, 1) })
	}
	run("go", func() { kernelGo(k, a, bp, c, nr, 1, 1) })
}

// BenchmarkPackB measures packing a 256×768 block of op(B) (ns per element).
func BenchmarkPackB(b *testing.B) {
	const k, n = 256, 768
	src := make([]float32, k*n)
	dst := make([]float32, k*n)
	for _, tB := range []bool{false, true} {
		ldb := n // stored B is k×n, or n×k when transposed
		if tB {
			ldb = k
		}
		b.Run(fmt.Sprintf("tB=%v", tB), func(b *testing.B) {
			for b.Loop() {
				packB(useAsm, dst, src, ldb, tB, 0, k, 0, n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k*n), "ns/elem")
		})
	}
}
