package ops

import (
	"math/rand"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/gradcheck"
)

func TestAddGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(21))
	in := []*tensor.Dense{gradcheck.Random(rng, 1, 2, 5, 7), gradcheck.Random(rng, 1, 2, 5, 7)}
	gradcheck.Assert(t, func(g *G.ExprGraph, n G.Nodes) (*G.Node, error) {
		// a used twice, so that its gradient is accumulated too.
		s, err := Add(n[0], n[1])
		if err != nil {
			return nil, err
		}
		return Add(s, n[0])
	}, in, 1e-8, gradcheck.Options{})
}

func TestAddShapes(t *testing.T) {
	g := G.NewGraph()
	a := G.NewTensor(g, tensor.Float32, 2, G.WithShape(2, 3), G.WithName("a"))
	b := G.NewTensor(g, tensor.Float32, 2, G.WithShape(3, 2), G.WithName("b"))
	if _, err := Add(a, b); err == nil || !strings.Contains(err.Error(), "expected equal shapes") {
		t.Fatalf("err = %v, want a shape error", err)
	}
}
