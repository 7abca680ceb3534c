package ops

import (
	"fmt"
	"testing"
)

// BenchmarkProducts measures the matrix products of a ViT as the ops run
// them, on every core, in GFLOP/s (docs/performance.md divides by
// BenchmarkPeak in layers/ops/sgemm):
//   - large: cifar-tiny's MLP at batch 128 (8320 tokens × 768 × 192) in the
//     three cases of training: forward x·Wᵀ, input gradient dY·W, weight
//     gradient dYᵀ·X (gemmPar);
//   - attention: Q·Kᵀ of every (image, head) pair, one small product each
//     on strided operands into a goroutine's padded scratch, as
//     attnProbsFwd runs them (without the softmax that follows):
//     50×50×16 (the Fashion-MNIST recipe, batch 128, 4 heads), 197×197×64
//     (ViT-B/16, batch 16, 12 heads).
func BenchmarkProducts(b *testing.B) {
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%17)/17 - 0.5
		}
		return x
	}
	const m, n, k = 8320, 768, 192
	for _, c := range []struct {
		name    string
		tA, tB  bool
		m, n, k int
	}{
		{"large/forward-NT", false, true, m, n, k},
		{"large/grad-input-NN", false, false, m, k, n},
		{"large/grad-weight-TN", true, false, n, k, m},
	} {
		b.Run(c.name, func(b *testing.B) {
			lda, ldb := c.k, c.n
			if c.tA {
				lda = c.m
			}
			if c.tB {
				ldb = c.k
			}
			a, bb, cc := fill(c.m*c.k), fill(c.k*c.n), make([]float32, c.m*c.n)
			for b.Loop() {
				gemmPar(c.tA, c.tB, c.m, c.n, c.k, 1, a, lda, bb, ldb, 0, cc, c.n)
			}
			b.ReportMetric(2*float64(c.m*c.n*c.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
	for _, at := range []struct{ batch, tokens, heads, dh int }{{128, 50, 4, 16}, {8, 50, 4, 16}, {16, 197, 12, 64}} {
		b.Run(fmt.Sprintf("attention/%dx%dx%d/b%d", at.tokens, at.tokens, at.dh, at.batch), func(b *testing.B) {
			d := at.heads * at.dh
			qkv := fill(at.batch * at.tokens * 3 * d)
			nn := at.tokens * at.tokens
			pa := newPairAttn(at.tokens, d, at.heads)
			for b.Loop() {
				eachPair(at.batch*at.heads, nn*at.dh, func(sc *attnScratch, lo, hi int) {
					s, _ := pa.scratch(sc)
					for i := lo; i < hi; i++ {
						pa.scores(sc, s, qkv, i)
					}
				})
			}
			flops := 2 * float64(at.batch*at.heads*nn*at.dh)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
