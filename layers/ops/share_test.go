package ops

import (
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// shareNet builds a residual stack of LayerNorm → Linear → GELU → Linear
// blocks on x (rows, d), mixing in Gorgonia's own ops (a reshape view, an
// element-wise multiply, a sum), with cross-entropy on top and its
// gradient. It returns the graph, a hidden activation read after the run,
// the loss and the learnables.
func shareNet(t *testing.T, share bool) (g *G.ExprGraph, hidden, loss *G.Node, params G.Nodes, st ShareStats) {
	t.Helper()
	const rows, d, blocks = 24, 16, 4
	rng := rand.New(rand.NewSource(3))
	rnd := func(s ...int) *tensor.Dense {
		v := make([]float32, tensor.Shape(s).TotalSize())
		for i := range v {
			v[i] = float32(rng.NormFloat64()) * 0.3
		}
		return tensor.New(tensor.WithShape(s...), tensor.WithBacking(v))
	}
	g = G.NewGraph()
	param := func(name string, s ...int) *G.Node {
		n := G.NewTensor(g, tensor.Float32, len(s), G.WithShape(s...), G.WithName(name), G.WithValue(rnd(s...)))
		params = append(params, n)
		return n
	}
	must := func(n *G.Node, err error) *G.Node {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	x := G.NewTensor(g, tensor.Float32, 2, G.WithShape(rows, d), G.WithName("x"), G.WithValue(rnd(rows, d)))
	target := make([]float32, rows*4)
	for r := 0; r < rows; r++ {
		target[r*4+r%4] = 1
	}
	y := G.NewTensor(g, tensor.Float32, 2, G.WithShape(rows, 4), G.WithName("y"),
		G.WithValue(tensor.New(tensor.WithShape(rows, 4), tensor.WithBacking(target))))
	h := x
	for b := 0; b < blocks; b++ {
		s := string(rune('a' + b))
		n := must(LayerNorm(h, param("g"+s, d), param("b"+s, d), 1e-6))
		u := must(GELU(must(Linear(n, param("w1"+s, 2*d, d), param("c1"+s, 2*d))), GELUExact))
		if b == 1 {
			hidden = u
		}
		v := must(Linear(u, param("w2"+s, d, 2*d), nil))
		v = must(G.Reshape(must(G.Reshape(v, tensor.Shape{rows * d})), tensor.Shape{rows, d}))
		v = must(G.HadamardProd(v, v))
		h = must(Add(h, v))
	}
	logits := must(Linear(h, param("head", 4, d), nil))
	loss = must(CrossEntropy(logits, y))
	if _, err := G.Grad(loss, params...); err != nil {
		t.Fatal(err)
	}
	if share {
		var err error
		if st, err = ShareBuffers(g, hidden); err != nil {
			t.Fatal(err)
		}
	}
	return g, hidden, loss, params, st
}

// TestShareBuffers: with shared buffers a graph computes the same loss,
// gradients and kept activation as without, bit for bit, over two runs, in
// much less memory.
func TestShareBuffers(t *testing.T) {
	type result struct {
		loss   float32
		hidden []float32
		grads  [][]float32
	}
	run := func(share bool) ([]result, ShareStats) {
		g, hidden, loss, params, st := shareNet(t, share)
		vm := G.NewTapeMachine(g, G.BindDualValues(params...))
		defer vm.Close()
		var out []result
		for step := 0; step < 2; step++ {
			vm.Reset()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			r := result{loss: loss.Value().Data().(float32), hidden: append([]float32(nil), hidden.Value().Data().([]float32)...)}
			for _, p := range params {
				gv, err := p.Grad()
				if err != nil {
					t.Fatal(err)
				}
				r.grads = append(r.grads, append([]float32(nil), gv.Data().([]float32)...))
				clear(gv.Data().([]float32))
			}
			out = append(out, r)
		}
		return out, st
	}
	shared, st := run(true)
	plain, _ := run(false)
	t.Logf("%d outputs in %d buffers: %d bytes → %d", st.Outputs, st.Buffers, st.BytesBefore, st.BytesAfter)
	if st.Outputs == 0 || st.BytesAfter*4 > st.BytesBefore*3 {
		t.Errorf("sharing saved too little: %d bytes → %d", st.BytesBefore, st.BytesAfter)
	}
	for step := range shared {
		s, p := shared[step], plain[step]
		if s.loss != p.loss {
			t.Fatalf("run %d: loss %v shared, %v plain", step, s.loss, p.loss)
		}
		for i := range s.hidden {
			if s.hidden[i] != p.hidden[i] {
				t.Fatalf("run %d: kept activation [%d] %v shared, %v plain", step, i, s.hidden[i], p.hidden[i])
			}
		}
		for k := range s.grads {
			for i := range s.grads[k] {
				if s.grads[k][i] != p.grads[k][i] {
					t.Fatalf("run %d: gradient %d [%d] %v shared, %v plain", step, k, i, s.grads[k][i], p.grads[k][i])
				}
			}
		}
	}
}
