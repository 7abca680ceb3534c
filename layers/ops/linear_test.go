package ops

import (
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/gradcheck"
)

func TestLinearGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, bias := range []bool{true, false} {
		in := []*tensor.Dense{gradcheck.Random(rng, 1, 2, 3, 5), gradcheck.Random(rng, 1, 4, 5)}
		if bias {
			in = append(in, gradcheck.Random(rng, 1, 4))
		}
		gradcheck.Assert(t, func(g *G.ExprGraph, n G.Nodes) (*G.Node, error) {
			if bias {
				return Linear(n[0], n[1], n[2])
			}
			return Linear(n[0], n[1], nil)
		}, in, 1e-6, gradcheck.Options{})
	}
}
