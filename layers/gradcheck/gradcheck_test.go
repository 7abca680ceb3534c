package gradcheck

import (
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestDetectsWrongGradient: Gorgonia v0.9.18's InverseSqrt has a wrong
// gradient (−g/(2y³) instead of −g·y³/2); the checker must say so, and
// must pass Sqrt, whose gradient is right.
func TestDetectsWrongGradient(t *testing.T) {
	in := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float64{0.5, 1.5, 2, 3, 4, 0.7}))
	check := func(f func(*G.Node) (*G.Node, error)) Result {
		res, err := Check(func(g *G.ExprGraph, n G.Nodes) (*G.Node, error) { return f(n[0]) },
			[]*tensor.Dense{in.Clone().(*tensor.Dense)}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	if r := check(G.InverseSqrt); r.RelErr < 0.1 {
		t.Errorf("InverseSqrt's wrong gradient passed: %v", r)
	}
	if r := check(G.Sqrt); r.RelErr > 1e-6 || !r.NonZero {
		t.Errorf("Sqrt's gradient failed: %v", r)
	}
}
