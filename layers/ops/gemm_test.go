package ops

import (
	"math/rand"
	"runtime"
	"testing"

	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/ops/sgemm"
)

// TestGemmParSplits: a product shared out by rows or by columns gives the
// bits of the product in one call, for every transpose case, with and
// without the bias the Linear forward adds in the kernel.
func TestGemmParSplits(t *testing.T) {
	if !ownSgemm {
		t.Skip("the splits are those of the default build's SGEMM")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	rng := rand.New(rand.NewSource(1))
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	for _, sh := range []struct{ m, n, k int }{{197, 576, 192}, {50, 200, 64}, {300, 96, 130}, {17, 1000, 33}} {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				a, b := fill(sh.m*sh.k), fill(sh.k*sh.n)
				lda, ldb := sh.k, sh.n
				if tA {
					lda = sh.m
				}
				if tB {
					ldb = sh.k
				}
				want, got := make([]float32, sh.m*sh.n), make([]float32, sh.m*sh.n)
				sgemm.Sgemm(tA, tB, sh.m, sh.n, sh.k, 1, a, lda, b, ldb, 0, want, sh.n)
				gemmPar(tA, tB, sh.m, sh.n, sh.k, 1, a, lda, b, ldb, 0, got, sh.n)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%+v tA=%v tB=%v (by columns: %v): element %d is %v, one call gives %v",
							sh, tA, tB, splitByColumns(tA, sh.m, sh.n), i, got[i], want[i])
					}
				}
			}
		}
		// The Linear forward with a bias: y = x·wᵀ + b.
		x, w, bias := fill(sh.m*sh.k), fill(sh.n*sh.k), fill(sh.n)
		want := make([]float32, sh.m*sh.n)
		sgemm.SgemmBias(false, true, sh.m, sh.n, sh.k, 1, x, sh.k, w, sh.k, 0, want, sh.n, bias)
		xt, wt, bt := tensorOf(x, sh.m, sh.k), tensorOf(w, sh.n, sh.k), tensorOf(bias, sh.n)
		yt := tensorOf(make([]float32, sh.m*sh.n), sh.m, sh.n)
		linearFwd[float32](xt, wt, bt, yt)
		for i, v := range sl[float32](yt) {
			if v != want[i] {
				t.Fatalf("%+v Linear with bias: element %d is %v, one call gives %v", sh, i, v, want[i])
			}
		}
	}
}

func tensorOf(x []float32, shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(x))
}
