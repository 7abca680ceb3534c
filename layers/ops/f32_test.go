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

// inDtype returns a copy of the float64 tensor t in dtype dt.
func inDtype(dt tensor.Dtype, t *tensor.Dense) *tensor.Dense {
	v := t.Data().([]float64)
	if dt == tensor.Float32 {
		f := make([]float32, len(v))
		for j, x := range v {
			f[j] = float32(x)
		}
		return tensor.New(tensor.WithShape(t.Shape().Clone()...), tensor.WithBacking(f))
	}
	return tensor.New(tensor.WithShape(t.Shape().Clone()...), tensor.WithBacking(append([]float64(nil), v...)))
}

// gradsIn builds cost = Σ w·f(inputs) in dtype dt (inputs given in float64,
// w a fixed random weighting of the output) and returns the output and the
// gradients with respect to every input, as float64.
func gradsIn(t *testing.T, dt tensor.Dtype, build gradcheck.Builder, inputs []*tensor.Dense, seed int64) (out []float64, grads [][]float64) {
	t.Helper()
	g := G.NewGraph()
	nodes := make(G.Nodes, len(inputs))
	for i, in := range inputs {
		nodes[i] = G.NewTensor(g, dt, in.Dims(), G.WithShape(in.Shape().Clone()...), G.WithValue(inDtype(dt, in)), G.WithName(string(rune('a'+i))))
	}
	y, err := build(g, nodes)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(seed))
	wt := inDtype(dt, gradcheck.Random(rng, 1, y.Shape()...))
	w := G.NewTensor(g, dt, y.Dims(), G.WithShape(y.Shape().Clone()...), G.WithValue(wt), G.WithName("w"))
	cost := G.Must(G.Sum(G.Must(G.HadamardProd(y, w))))
	if _, err := G.Grad(cost, nodes...); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(nodes...))
	defer vm.Close()
	// Twice, so that the second run uses the outputs kept from the first.
	for run := 0; run < 2; run++ {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
	}
	out = graphtest.Float64s(y.Value())
	for _, n := range nodes {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		grads = append(grads, graphtest.Float64s(gv))
	}
	return out, grads
}

// TestFloat32KernelsMatchFloat64: the float32 kernels (assembly SGEMM with
// the bias in its epilogue, vectorised e^x, softmax, GELU and LayerNorm)
// give the outputs and gradients of the float64 code, which the
// finite-difference checks prove, to float32 accuracy.
func TestFloat32KernelsMatchFloat64(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	b, n, d, h, hid := 3, 13, 24, 3, 40
	inputs := []*tensor.Dense{
		gradcheck.Random(rng, 1, b, n, d),  // x
		gradcheck.Random(rng, 0.3, 3*d, d), // qkv weight
		gradcheck.Random(rng, 0.3, 3*d),    // qkv bias
		gradcheck.Random(rng, 0.3, hid, d), // fc weight
		gradcheck.Random(rng, 0.3, hid),    // fc bias
		gradcheck.Random(rng, 0.5, d),      // LayerNorm scale
		gradcheck.Random(rng, 0.5, d),      // LayerNorm shift
	}
	for i := range inputs[5].Data().([]float64) {
		inputs[5].Data().([]float64)[i] += 1
	}
	build := func(g *G.ExprGraph, x G.Nodes) (*G.Node, error) {
		ln, err := LayerNorm(x[0], x[5], x[6], 1e-6)
		if err != nil {
			return nil, err
		}
		qkv, err := Linear(ln, x[1], x[2])
		if err != nil {
			return nil, err
		}
		p, err := AttentionProbs(qkv, h)
		if err != nil {
			return nil, err
		}
		a, err := AttentionApply(p, qkv, h)
		if err != nil {
			return nil, err
		}
		f, err := Linear(a, x[3], x[4])
		if err != nil {
			return nil, err
		}
		return GELU(f, GELUExact)
	}
	out64, g64 := gradsIn(t, tensor.Float64, build, inputs, 5)
	out32, g32 := gradsIn(t, tensor.Float32, build, inputs, 5)
	cmp := func(what string, a, b []float64) {
		var scale, worst float64
		for i := range a {
			scale = math.Max(scale, math.Abs(a[i]))
			worst = math.Max(worst, math.Abs(a[i]-b[i]))
		}
		t.Logf("%s: max |float32 − float64| %.2e (scale %.2e)", what, worst, scale)
		if worst > 2e-5*math.Max(scale, 1) {
			t.Errorf("%s: float32 differs from float64 by %.2e (scale %.2e)", what, worst, scale)
		}
	}
	cmp("output", out64, out32)
	for i := range g64 {
		cmp("gradient "+[]string{"x", "Wqkv", "bqkv", "Wfc", "bfc", "gamma", "beta"}[i], g64[i], g32[i])
	}
}
