package optim

import (
	"math"
	"testing"

	"github.com/vitgo/vit/layers/graphtest"
	G "gorgonia.org/gorgonia"
)

// TestAdamWTorchParity feeds the fixture's gradients through AdamW and
// compares the parameters after every step with torch.optim.AdamW's.
func TestAdamWTorchParity(t *testing.T) {
	f := loadFixture(t)
	t.Logf("fixture from torch %s (python %s)", f.TorchVersion, f.PythonVersion)
	for _, c := range f.AdamW {
		t.Run(c.Dtype, func(t *testing.T) {
			dt := dtypeOf(t, c.Dtype)
			tol := 1e-12
			if c.Dtype == "float32" {
				tol = 1e-6
			}
			g := G.NewGraph()
			ps := []param{
				newParam(g, "w", dt, []int{3, 4}, c.Init["w"], true),
				newParam(g, "b", dt, []int{4}, c.Init["b"], false),
			}
			params, vgs := paramsOf(ps)
			opt, err := NewAdamW(params, Config{LR: f.Config.LR, Beta1: f.Config.Beta1, Beta2: f.Config.Beta2, Eps: f.Config.Eps, WeightDecay: f.Config.WeightDecay})
			if err != nil {
				t.Fatal(err)
			}
			worst, same, total := 0.0, 0, 0
			for s := 0; s < f.Config.Steps; s++ {
				for _, p := range ps {
					setData(t, p.vg.g, c.Grads[s][p.p.Name])
				}
				if err := opt.Step(vgs); err != nil {
					t.Fatal(err)
				}
				for _, p := range ps {
					got, want := graphtest.Float64s(p.vg.v), c.After[s][p.p.Name]
					d := graphtest.MaxAbsDiff(got, want)
					worst = math.Max(worst, d)
					for i := range got {
						total++
						if got[i] == want[i] {
							same++
						}
					}
					if d > tol {
						t.Errorf("step %d param %s: max |Go − torch| = %.3g > %g\n got  %v\n want %v", s+1, p.p.Name, d, tol, got, want)
					}
					for i, x := range graphtest.Float64s(p.vg.g) {
						if x != 0 {
							t.Fatalf("step %d param %s: gradient element %d is %v after Step, want 0", s+1, p.p.Name, i, x)
						}
					}
				}
			}
			if opt.Steps() != f.Config.Steps {
				t.Errorf("Steps() = %d, want %d", opt.Steps(), f.Config.Steps)
			}
			t.Logf("%s: max |Go − torch| over %d steps = %.3g (tolerance %g); %d/%d values bit-identical", c.Dtype, f.Config.Steps, worst, tol, same, total)
		})
	}
}

// TestClipTorchParity compares ClipGlobalNorm with clip_grad_norm_.
func TestClipTorchParity(t *testing.T) {
	f := loadFixture(t)
	for _, c := range f.Clip {
		t.Run(c.Name, func(t *testing.T) {
			dt := dtypeOf(t, c.Dtype)
			normTol, tol := 1e-12, 1e-12
			if c.Dtype == "float32" {
				normTol, tol = 1e-5, 1e-6
			}
			a := &testVG{v: newDense(dt, c.Shapes["a"], nil), g: newDense(dt, c.Shapes["a"], c.Grads["a"])}
			b := &testVG{v: newDense(dt, c.Shapes["b"], nil), g: newDense(dt, c.Shapes["b"], c.Grads["b"])}
			vgs := []G.ValueGrad{a, b}
			pre, err := GlobalNorm(vgs)
			if err != nil {
				t.Fatal(err)
			}
			norm, err := ClipGlobalNorm(vgs, c.MaxNorm)
			if err != nil {
				t.Fatal(err)
			}
			if norm != pre {
				t.Errorf("ClipGlobalNorm returned %v, GlobalNorm before clipping %v", norm, pre)
			}
			if d := math.Abs(norm-c.Norm) / c.Norm; d > normTol {
				t.Errorf("norm %v, torch %v (rel. diff %.3g)", norm, c.Norm, d)
			}
			da := graphtest.MaxAbsDiff(graphtest.Float64s(a.g), c.Clipped["a"])
			db := graphtest.MaxAbsDiff(graphtest.Float64s(b.g), c.Clipped["b"])
			if da > tol || db > tol {
				t.Errorf("clipped gradients differ from torch by %.3g / %.3g (> %g)", da, db, tol)
			}
			after, _ := GlobalNorm(vgs)
			if c.Norm > c.MaxNorm && after > c.MaxNorm {
				t.Errorf("norm after clipping %v > maxNorm %v", after, c.MaxNorm)
			}
			if c.Norm <= c.MaxNorm && after != norm {
				t.Errorf("unclipped case changed the norm: %v → %v", norm, after)
			}
			t.Logf("%s: norm %.17g (torch %.17g, |Δ| %.3g); max |Δ| of clipped grads %.3g; norm after %.6g", c.Name, norm, c.Norm, math.Abs(norm-c.Norm), math.Max(da, db), after)
		})
	}
}
