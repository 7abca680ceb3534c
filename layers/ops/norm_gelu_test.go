package ops

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/gradcheck"
	"github.com/vitgo/vit/layers/graphtest"
)

func TestLayerNormGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	in := []*tensor.Dense{gradcheck.Random(rng, 2, 2, 3, 6), gradcheck.Random(rng, 1, 6), gradcheck.Random(rng, 1, 6)}
	gradcheck.Assert(t, func(g *G.ExprGraph, n G.Nodes) (*G.Node, error) {
		return LayerNorm(n[0], n[1], n[2], 1e-6)
	}, in, 1e-6, gradcheck.Options{})
}

// TestLayerNormValues checks the forward pass against the definition.
func TestLayerNormValues(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	x, gm, bt := gradcheck.Random(rng, 3, 4, 5), gradcheck.Random(rng, 1, 5), gradcheck.Random(rng, 1, 5)
	g := G.NewGraph()
	node := func(v *tensor.Dense, name string) *G.Node {
		return G.NewTensor(g, tensor.Float64, v.Dims(), G.WithShape(v.Shape()...), G.WithValue(v), G.WithName(name))
	}
	y := G.Must(LayerNorm(node(x, "x"), node(gm, "gamma"), node(bt, "beta"), 1e-5))
	graphtest.Run(t, g)
	xs, ys := x.Data().([]float64), y.Value().Data().([]float64)
	gs, bs := gm.Data().([]float64), bt.Data().([]float64)
	for r := 0; r < 4; r++ {
		row := xs[r*5 : r*5+5]
		var m, v float64
		for _, e := range row {
			m += e / 5
		}
		for _, e := range row {
			v += (e - m) * (e - m) / 5
		}
		for j, e := range row {
			want := (e-m)/math.Sqrt(v+1e-5)*gs[j] + bs[j]
			if d := math.Abs(ys[r*5+j] - want); d > 1e-12 {
				t.Fatalf("row %d col %d: got %v want %v", r, j, ys[r*5+j], want)
			}
		}
	}
}

func TestGELUGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for _, form := range []GELUForm{GELUExact, GELUTanh} {
		in := []*tensor.Dense{gradcheck.Random(rng, 2, 3, 7)}
		gradcheck.Assert(t, func(g *G.ExprGraph, n G.Nodes) (*G.Node, error) {
			return GELU(n[0], form)
		}, in, 1e-6, gradcheck.Options{})
	}
}

// TestGELUValues pins values computed with PyTorch 1.13:
// F.gelu(torch.tensor([-3., -1., -0.5, 0., 0.5, 1., 3.], dtype=torch.float64)) and approximate="tanh".
func TestGELUValues(t *testing.T) {
	x := []float64{-3, -1, -0.5, 0, 0.5, 1, 3}
	want := map[bool][]float64{
		true:  {-0.004049694, -0.158655254, -0.154268769, 0, 0.345731231, 0.841344746, 2.995950306},
		false: {-0.003637392, -0.158808009, -0.154285990, 0, 0.345714010, 0.841191991, 2.996362608},
	}
	for exact, w := range want {
		y := make([]float64, len(x))
		geluFwd(x, y, exact)
		for i := range x {
			if math.Abs(y[i]-w[i]) > 1e-8 {
				t.Errorf("exact=%t GELU(%v) = %.9f, want %.9f", exact, x[i], y[i], w[i])
			}
		}
	}
}

// TestGELUFloat32: the float32 kernels (A&S erf) agree with the exact
// float64 ones to float32 precision, forward and backward.
func TestGELUFloat32(t *testing.T) {
	n := 20001
	x32, y32, g32, d32 := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	x64, y64, g64, d64 := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range x32 {
		x32[i] = float32(-10 + 20*float64(i)/float64(n-1))
		x64[i] = float64(x32[i])
		g32[i], g64[i] = 1, 1
	}
	geluFwd(x32, y32, true)
	geluFwd(x64, y64, true)
	geluBwd(x32, g32, d32, true)
	geluBwd(x64, g64, d64, true)
	var maxY, maxD float64
	for i := range x32 {
		maxY = math.Max(maxY, math.Abs(float64(y32[i])-y64[i])/math.Max(1, math.Abs(y64[i])))
		maxD = math.Max(maxD, math.Abs(float64(d32[i])-d64[i]))
	}
	t.Logf("float32 GELU: max rel err %.2e forward, max abs err %.2e derivative", maxY, maxD)
	if maxY > 5e-7 || maxD > 5e-7 {
		t.Fatalf("float32 GELU off: %.2e forward, %.2e derivative", maxY, maxD)
	}
}
