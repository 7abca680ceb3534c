package ops

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/vitgo/vit/layers/ops/sgemm"
)

// ownSgemm routes float32 products to this module's SGEMM (Go assembly
// with AVX2/FMA where the CPU has it) instead of the gonum BLAS.
var ownSgemm bool

// gemm computes C = alpha·op(A)·op(B) + beta·C on row-major matrices, where
// op(A) is m×k and op(B) is k×n: float32 through package sgemm by default
// or OpenBLAS with -tags openblas, float64 through gonum's BLAS.
func gemm[T float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if tA {
		ta = blas.Trans
	}
	if tB {
		tb = blas.Trans
	}
	switch aa := any(a).(type) {
	case []float32:
		if ownSgemm {
			sgemm.Sgemm(tA, tB, m, n, k, float32(alpha), aa, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
			return
		}
		blas32.Implementation().Sgemm(ta, tb, m, n, k, float32(alpha), aa, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		blas64.Implementation().Dgemm(ta, tb, m, n, k, float64(alpha), aa, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

// splitGEMM is set when the BLAS runs single-threaded (OpenBLAS, which we
// keep to one thread so that it never competes with our own goroutines);
// gemmPar then splits a large product's rows across the cores itself.
var splitGEMM bool

// gemmPar is gemm for products large enough to share out: the rows of
// op(A) and C are cut into one block per core. Inside code that already
// runs in parallel, call gemm.
func gemmPar[T float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if splitGEMM && splitByColumns(tA, m, n) {
		parallelCols(n, m*k/8, func(lo, hi int) {
			bOff := lo // column lo of the stored k×n matrix
			if tB {
				bOff = lo * ldb // row lo of the stored n×k matrix
			}
			gemm(tA, tB, m, hi-lo, k, alpha, a, lda, b[bOff:], ldb, beta, c[lo:], ldc)
		})
		return
	}
	if !splitGEMM || m < 64 {
		gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	parallelFor(m, n*k/8, func(lo, hi int) {
		aOff := lo * lda // row lo of A
		if tA {
			aOff = lo // column lo of the stored k×m matrix
		}
		gemm(tA, tB, hi-lo, n, k, alpha, a[aOff:], lda, b, ldb, beta, c[lo*ldc:], ldc)
	})
}

// splitByColumns says whether a product is better shared out by columns
// of C than by rows: when op(B) has at least as many columns as op(A) has
// rows (one image's tokens against a layer's weights), since split by rows
// every core would pack the whole of B, split by columns each packs its
// share; A, not transposed, is read in place either way. The result does
// not depend on the split (each element is the same sum in the same order).
func splitByColumns(tA bool, m, n int) bool {
	return !tA && n >= m && n >= 4*colPanel && runtime.GOMAXPROCS(0) > 1
}

// colPanel is the column width of the SGEMM micro-kernel: column blocks
// are cut at its multiples, so that no block ends in a partial panel but
// the last.
const colPanel = 16

// parallelCols is parallelFor over the columns [0,n), in blocks of whole
// colPanel-wide panels.
func parallelCols(n, costPer int, f func(lo, hi int)) {
	panels := (n + colPanel - 1) / colPanel
	parallelFor(panels, costPer*colPanel, func(lo, hi int) {
		f(lo*colPanel, min(hi*colPanel, n))
	})
}

// parallelFor splits [0,n) into contiguous chunks, one per available core,
// when the work (n·costPer) is large enough to pay for the goroutines.
func parallelFor(n, costPer int, f func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 || n*costPer < 1<<15 {
		f(0, n)
		return
	}
	chunk := (n + workers - 1) / workers
	if theTeam.run(n, chunk, f) {
		return
	}
	// The team is busy (a loop inside a loop, or graphs running at once):
	// one goroutine per chunk but the first, which runs on the caller.
	var wg sync.WaitGroup
	for lo := chunk; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(lo, hi)
	}
	f(0, min(chunk, n))
	wg.Wait()
}

// rowBlockSums returns Σ_r f's contribution over rows [0, rows) as d
// column sums: f(acc, r) adds row r's d values into acc. Blocks of 256 rows
// are summed in float32 in parallel (costPerRow guides the split), and the
// block sums are added in float64 in block order, so the result does not
// depend on the number of cores.
func rowBlockSums(buf *blockSums, rows, d, costPerRow int, f func(acc []float32, r int)) []float64 {
	const block = 256
	nb := (rows + block - 1) / block
	if buf == nil {
		buf = new(blockSums)
	}
	if cap(buf.parts) < nb*d {
		buf.parts = make([]float32, nb*d)
	}
	if cap(buf.total) < d {
		buf.total = make([]float64, d)
	}
	parts, total := buf.parts[:nb*d], buf.total[:d]
	clear(parts)
	clear(total)
	parallelFor(nb, block*costPerRow, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			acc := parts[p*d : (p+1)*d]
			for r := p * block; r < min((p+1)*block, rows); r++ {
				f(acc, r)
			}
		}
	})
	for p := 0; p < nb; p++ {
		for j, v := range parts[p*d : (p+1)*d] {
			total[j] += float64(v)
		}
	}
	return total
}

// blockSums holds rowBlockSums' buffers between calls.
type blockSums struct {
	parts []float32
	total []float64
}

// sums returns the op's rowBlockSums buffers (nil for an op without a
// kept output, which then allocates them).
func (b base) sums() *blockSums {
	if b.out == nil {
		return nil
	}
	return &b.out.sums
}
