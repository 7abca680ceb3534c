package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestAttentionTiles: the float32 attention on sgemm's Tiles (forward
// probabilities, P·V, the fused backward) gives the bits of the generic
// path, one Sgemm call per (image, head) pair, whose values the other
// attention tests check against float64 references; on head widths that
// are and are not whole micro-tiles, token counts with partial tiles, and
// batches split across cores.
func TestAttentionTiles(t *testing.T) {
	if !ownSgemm {
		t.Skip("float32 products run on OpenBLAS in this build")
	}
	defer func() { attnTiles = true }()
	rng := rand.New(rand.NewPCG(3, 4))
	fill := func(n int, scale float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(scale * rng.NormFloat64())
		}
		return x
	}
	for _, sh := range []struct{ b, n, d, heads int }{
		{3, 17, 64, 4}, {2, 50, 64, 4}, {1, 197, 192, 3}, {4, 5, 24, 2}, {2, 65, 40, 5},
	} {
		t.Run(fmt.Sprintf("%+v", sh), func(t *testing.T) {
			qkv := fill(sh.b*sh.n*3*sh.d, 1)
			do := fill(sh.b*sh.n*sh.d, 0.1)
			type result struct{ p, o, dqkv []float32 }
			run := func(tiles bool) result {
				attnTiles = tiles
				r := result{
					p:    make([]float32, sh.b*sh.heads*sh.n*sh.n),
					o:    make([]float32, sh.b*sh.n*sh.d),
					dqkv: make([]float32, len(qkv)),
				}
				for i := range r.dqkv {
					r.dqkv[i] = float32(math.NaN()) // every slot must be written
				}
				attnProbsFwd(qkv, r.p, sh.b, sh.n, sh.d, sh.heads)
				attnApplyFwd(r.p, qkv, r.o, sh.b, sh.n, sh.d, sh.heads)
				attnBwd(qkv, r.p, do, r.dqkv, sh.b, sh.n, sh.d, sh.heads)
				return r
			}
			want, got := run(false), run(true)
			for _, c := range []struct {
				name      string
				want, got []float32
			}{{"P", want.p, got.p}, {"O", want.o, got.o}, {"dqkv", want.dqkv, got.dqkv}} {
				for i := range c.want {
					if math.Float32bits(c.got[i]) != math.Float32bits(c.want[i]) {
						t.Fatalf("%s[%d] = %v on tiles, %v on the generic path", c.name, i, c.got[i], c.want[i])
					}
				}
			}
		})
	}
}
