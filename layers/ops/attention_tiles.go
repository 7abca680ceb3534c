package ops

import (
	"math"
	"sync"

	"github.com/vitgo/vit/layers/ops/sgemm"
	"github.com/vitgo/vit/layers/ops/vec"
)

// The float32 attention products on this module's SGEMM (not OpenBLAS) run
// through sgemm.Work.Tiles: each goroutine keeps its packing buffers and
// writes every (image, head) product in whole micro-tiles into a padded
// scratch matrix that stays in L1, from which the softmax (forward) or its
// backward reads in place and the head's rows are copied where they
// belong. Every value has the bits of the generic path (one Sgemm call per
// product, then the softmax over the stored rows): only the per-call work
// of Sgemm and the merging of partial tiles are saved, which dominate
// products as small as 50×50×16.

// attnScratch is one goroutine's buffers for the attention products.
type attnScratch struct {
	w sgemm.Work
	s []float32 // a padded N×N product (scores, dP, dS)
	u []float32 // a padded N×Dh product (P·V, dQ, dK, dV)
}

var attnScratches = sync.Pool{New: func() any { return new(attnScratch) }}

// attnTiles can be cleared by tests to run the generic path.
var attnTiles = true

// tiledAttention reports whether attention on values of type T runs on
// sgemm's Tiles.
func tiledAttention[T float]() bool {
	var zero T
	_, f32 := any(zero).(float32)
	return f32 && ownSgemm && attnTiles
}

// grow returns (*buf)[:n], reallocating it if it is shorter.
func grow(buf *[]float32, n int) []float32 {
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	return (*buf)[:n]
}

// pairAttn locates one (image, head) pair in qkv (B, N, 3D) and in a
// (B, N, D) tensor, with the pair's probabilities in a (B, H, N, N) one.
type pairAttn struct {
	n, d, dh, heads int
	ld              int // 3D, the row stride of qkv
	nn              int // N·N
	np, dp          int // N and Dh rounded up to whole micro-tiles
	scale           float32
}

func newPairAttn(n, d, heads int) pairAttn {
	dh := d / heads
	return pairAttn{n: n, d: d, dh: dh, heads: heads, ld: 3 * d, nn: n * n,
		np: sgemm.PaddedCols(n), dp: sgemm.PaddedCols(dh),
		scale: float32(1 / math.Sqrt(float64(dh)))}
}

// q returns the offset of pair i's Q in qkv (K is d later, V 2d later)
// and of its columns in a (B, N, D) tensor.
func (pa pairAttn) q(i int) (q, o int) {
	bi, h := i/pa.heads, i%pa.heads
	return bi*pa.n*pa.ld + h*pa.dh, bi*pa.n*pa.d + h*pa.dh
}

// scratch returns sc's two padded matrices for this shape.
func (pa pairAttn) scratch(sc *attnScratch) (s, u []float32) {
	rows := sgemm.PaddedRows(pa.n)
	return grow(&sc.s, rows*pa.np), grow(&sc.u, rows*pa.dp)
}

// scores sets s (row stride np) to scale·Q·Kᵀ of pair i.
func (pa pairAttn) scores(sc *attnScratch, s, qkv []float32, i int) {
	q, _ := pa.q(i)
	sc.w.Tiles(false, true, pa.n, pa.n, pa.dh, pa.scale, qkv[q:], pa.ld, qkv[q+pa.d:], pa.ld, s, pa.np)
}

// copyRows copies rows rows of w values from src (stride lds) to dst
// (stride ldd).
func copyRows(dst []float32, ldd int, src []float32, lds, rows, w int) {
	for r := 0; r < rows; r++ {
		copy(dst[r*ldd:r*ldd+w], src[r*lds:r*lds+w])
	}
}

// eachPair runs f on the pairs [0, b·heads) across the cores, each
// goroutine with its own scratch.
func eachPair(pairs, costPer int, f func(sc *attnScratch, lo, hi int)) {
	parallelFor(pairs, costPer, func(lo, hi int) {
		sc := attnScratches.Get().(*attnScratch)
		defer attnScratches.Put(sc)
		f(sc, lo, hi)
	})
}

// attnProbsTiled is attnProbsFwd on Tiles.
func attnProbsTiled(qkv, p []float32, b, n, d, heads int) {
	pa := newPairAttn(n, d, heads)
	eachPair(b*heads, pa.nn*pa.dh, func(sc *attnScratch, lo, hi int) {
		s, _ := pa.scratch(sc)
		for i := lo; i < hi; i++ {
			pa.scores(sc, s, qkv, i)
			vec.SoftmaxRowsTo(p[i*pa.nn:(i+1)*pa.nn], n, s, pa.np, n, n)
		}
	})
}

// attnApplyTiled is attnApplyFwd on Tiles.
func attnApplyTiled(p, qkv, o []float32, b, n, d, heads int) {
	pa := newPairAttn(n, d, heads)
	eachPair(b*heads, pa.nn*pa.dh, func(sc *attnScratch, lo, hi int) {
		_, u := pa.scratch(sc)
		for i := lo; i < hi; i++ {
			q, oo := pa.q(i)
			sc.w.Tiles(false, false, n, pa.dh, n, 1, p[i*pa.nn:], n, qkv[q+2*d:], pa.ld, u, pa.dp)
			copyRows(o[oo:], d, u, pa.dp, n, pa.dh)
		}
	})
}

// attnBwdTiled is attnBwd on Tiles: per pair dP = dO·Vᵀ, then dS in place
// of dP, then dQ, dK and dV, each copied into its slot of dqkv.
func attnBwdTiled(qkv, p, do, dqkv []float32, b, n, d, heads int) {
	pa := newPairAttn(n, d, heads)
	ld, dh := pa.ld, pa.dh
	eachPair(b*heads, 4*pa.nn*dh, func(sc *attnScratch, lo, hi int) {
		s, u := pa.scratch(sc)
		for i := lo; i < hi; i++ {
			q, o := pa.q(i)
			ps := p[i*pa.nn : (i+1)*pa.nn]
			sc.w.Tiles(false, true, n, n, dh, 1, do[o:], d, qkv[q+2*d:], ld, s, pa.np)
			vec.SoftmaxBackwardRowsStrided(s, pa.np, ps, n, s, pa.np, n, n)
			sc.w.Tiles(false, false, n, dh, n, pa.scale, s, pa.np, qkv[q+d:], ld, u, pa.dp)
			copyRows(dqkv[q:], ld, u, pa.dp, n, dh)
			sc.w.Tiles(true, false, n, dh, n, pa.scale, s, pa.np, qkv[q:], ld, u, pa.dp)
			copyRows(dqkv[q+d:], ld, u, pa.dp, n, dh)
			sc.w.Tiles(true, false, n, dh, n, 1, ps, n, do[o:], d, u, pa.dp)
			copyRows(dqkv[q+2*d:], ld, u, pa.dp, n, dh)
		}
	})
}
