package ops

import (
	"fmt"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestFreezeWeights: frozen Linear ops (weights packed once, shared by
// graphs that read the same weight) give the bits of unfrozen ones, with
// and without a bias, for one token and many, on the first pass and later
// passes with new inputs; two graphs over one weight share one packing.
func TestFreezeWeights(t *testing.T) {
	if !ownSgemm {
		t.Skip("only the default build's SGEMM packs weights")
	}
	rng := rand.New(rand.NewSource(5))
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	const in, out = 40, 200
	w := tensor.New(tensor.WithShape(out, in), tensor.WithBacking(fill(out*in)))
	bias := tensor.New(tensor.WithShape(out), tensor.WithBacking(fill(out)))
	for _, rows := range []int{1, 7, 300} {
		for _, withBias := range []bool{false, true} {
			name := fmt.Sprintf("rows=%d/bias=%v", rows, withBias)
			build := func() (*G.ExprGraph, *G.Node, *G.Node) {
				g := G.NewGraph()
				x := G.NewMatrix(g, G.Float32, G.WithShape(rows, in), G.WithName("x"))
				wn := G.NewMatrix(g, G.Float32, G.WithShape(out, in), G.WithName("w"), G.WithValue(w))
				var bn *G.Node
				if withBias {
					bn = G.NewVector(g, G.Float32, G.WithShape(out), G.WithName("b"), G.WithValue(bias))
				}
				y, err := Linear(x, wn, bn)
				if err != nil {
					t.Fatal(err)
				}
				return g, x, y
			}
			run := func(g *G.ExprGraph, x, y *G.Node, xs []float32) []float32 {
				if err := G.Let(x, tensor.New(tensor.WithShape(rows, in), tensor.WithBacking(xs))); err != nil {
					t.Fatal(err)
				}
				vm := G.NewTapeMachine(g)
				defer vm.Close()
				if err := vm.RunAll(); err != nil {
					t.Fatal(err)
				}
				return append([]float32(nil), y.Value().Data().([]float32)...)
			}
			g0, x0, y0 := build()
			g1, x1, y1 := build()
			g2, x2, y2 := build()
			if n := FreezeWeights(g1, g2); n != 2 {
				t.Fatalf("%s: %d Linear ops frozen, expected 2", name, n)
			}
			for pass := 0; pass < 2; pass++ {
				xs := fill(rows * in)
				want := run(g0, x0, y0, xs)
				for gi, got := range [][]float32{run(g1, x1, y1, xs), run(g2, x2, y2, xs)} {
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("%s pass %d graph %d: element %d is %v frozen, %v not", name, pass, gi+1, i, got[i], want[i])
						}
					}
				}
			}
			op1, op2 := linearOpOf(t, g1), linearOpOf(t, g2)
			reg := op1.frozen.reg.Load()
			if reg == nil || reg != op2.frozen.reg.Load() || len(reg.m) != 1 {
				t.Errorf("%s: the two graphs do not share one packed weight", name)
			}
		}
	}
}

func linearOpOf(t *testing.T, g *G.ExprGraph) linearOp {
	for _, n := range g.AllNodes() {
		if op, ok := n.Op().(linearOp); ok {
			return op
		}
	}
	t.Fatal("no Linear op")
	return linearOp{}
}
