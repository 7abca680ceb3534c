package optim

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers"
	"github.com/vitgo/vit/layers/graphtest"
)

// (f) AdamW drives Σ(w−3)² to zero through a real TapeMachine with
// BindDualValues (Gorgonia's own AdamW leaves w at 0 here). It also checks
// that Step zeroes the accumulated gradients: otherwise every RunAll would
// add onto the last step's gradient.
func TestEndToEndQuadratic(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		t.Run(dt.String(), func(t *testing.T) {
			g := G.NewGraph()
			w := G.NewTensor(g, dt, 1, G.WithShape(3), G.WithValue(newDense(dt, []int{3}, []float64{0, -1, 5})), G.WithName("w"))
			target := G.NewTensor(g, dt, 1, G.WithShape(3), G.WithValue(newDense(dt, []int{3}, []float64{3, 3, 3})), G.WithName("target"))
			cost := G.Must(G.Sum(G.Must(G.Square(G.Must(G.Sub(w, target))))))
			if _, err := G.Grad(cost, w); err != nil {
				t.Fatal(err)
			}
			vm := G.NewTapeMachine(g, G.BindDualValues(w))
			defer vm.Close()
			opt, err := NewAdamW([]*layers.Param{{Name: "w", Node: w, Decay: false}}, Config{LR: 0.1})
			if err != nil {
				t.Fatal(err)
			}
			vgs := G.NodesToValueGrads(G.Nodes{w})
			costAt := func() float64 {
				switch v := cost.Value().Data().(type) {
				case float32:
					return float64(v)
				case float64:
					return v
				}
				t.Fatalf("cost value %T", cost.Value().Data())
				return 0
			}
			var first, last float64
			for step := 0; step < 300; step++ {
				if err := vm.RunAll(); err != nil {
					t.Fatal(err)
				}
				c := costAt()
				if step == 0 {
					first = c
					gv, _ := w.Grad()
					if got := graphtest.Float64s(gv.(*tensor.Dense)); got[0] != -6 || got[1] != -8 || got[2] != 4 {
						t.Fatalf("first gradient %v, want [-6 -8 4]", got)
					}
				}
				last = c
				if err := opt.Step(vgs); err != nil {
					t.Fatal(err)
				}
				gv, _ := w.Grad()
				for _, x := range graphtest.Float64s(gv.(*tensor.Dense)) {
					if x != 0 {
						t.Fatalf("step %d: gradient not zeroed: %v", step, x)
					}
				}
				vm.Reset()
			}
			final := graphtest.Float64s(w.Value().(*tensor.Dense))
			t.Logf("cost %v → %v, w = %v", first, last, final)
			if first != 29 || !(last < 1e-4) {
				t.Errorf("cost %v → %v, want 29 → < 1e-4", first, last)
			}
			for _, x := range final {
				if math.Abs(x-3) > 1e-2 {
					t.Errorf("w = %v, want ≈ 3", final)
				}
			}
		})
	}
}
