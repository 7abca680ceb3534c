package ops

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/gradcheck"
	"github.com/vitgo/vit/layers/graphtest"
)

// attnShapes are the (B, N, D, H) cases the tests run over.
var attnShapes = [][4]int{{2, 5, 6, 2}, {2, 4, 4, 1}, {1, 3, 6, 3}}

// checkAll makes gradcheck look at every element of these small inputs.
var checkAll = gradcheck.Options{MaxElements: 1 << 20, Seed: 7}

// eachAttnShape runs f as a subtest for each (B, N, D, H) of attnShapes.
func eachAttnShape(t *testing.T, f func(t *testing.T, b, n, d, h int)) {
	for _, c := range attnShapes {
		b, n, d, h := c[0], c[1], c[2], c[3]
		t.Run(fmt.Sprintf("B%dN%dD%dH%d", b, n, d, h), func(t *testing.T) { f(t, b, n, d, h) })
	}
}

// twoOps is O = AttentionApply(AttentionProbs(qkv)) with h heads, the
// two-op form, for qkv = x[0].
func twoOps(h int) gradcheck.Builder {
	return func(g *G.ExprGraph, x G.Nodes) (*G.Node, error) {
		p, err := AttentionProbs(x[0], h)
		if err != nil {
			return nil, err
		}
		return AttentionApply(p, x[0], h)
	}
}

// TestAttentionGradParallel checks the composition at a size where every
// kernel (forward and backward) splits the (b,h) pairs over goroutines
// (B·H·N²·Dh = 4·576·16 ≥ 2¹⁵), on a random sample of 256 elements.
func TestAttentionGradParallel(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	b, n, d, h := 2, 24, 32, 2
	in := []*tensor.Dense{gradcheck.Random(rng, 1, b, n, 3*d)}
	gradcheck.Assert(t, twoOps(h), in, 1e-6, gradcheck.Options{MaxElements: 256, Seed: 8})
}

func TestAttentionProbsGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	eachAttnShape(t, func(t *testing.T, b, n, d, h int) {
		in := []*tensor.Dense{gradcheck.Random(rng, 1, b, n, 3*d)}
		gradcheck.Assert(t, func(g *G.ExprGraph, x G.Nodes) (*G.Node, error) {
			return AttentionProbs(x[0], h)
		}, in, 1e-6, checkAll)
	})
}

func TestAttentionApplyGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	eachAttnShape(t, func(t *testing.T, b, n, d, h int) {
		in := []*tensor.Dense{gradcheck.Random(rng, 1, b, h, n, n), gradcheck.Random(rng, 1, b, n, 3*d)}
		gradcheck.Assert(t, func(g *G.ExprGraph, x G.Nodes) (*G.Node, error) {
			return AttentionApply(x[0], x[1], h)
		}, in, 1e-6, checkAll)
	})
}

func TestAttentionComposedGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	eachAttnShape(t, func(t *testing.T, b, n, d, h int) {
		in := []*tensor.Dense{gradcheck.Random(rng, 1, b, n, 3*d)}
		gradcheck.Assert(t, twoOps(h), in, 1e-6, checkAll)
	})
}

// TestAttentionFusedGrad checks Attention's fused backward pass, alone and
// with a loss that also reads P directly (whose gradient must then add
// AttentionProbs' own backward to the fused one).
func TestAttentionFusedGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	eachAttnShape(t, func(t *testing.T, b, n, d, h int) {
		in := []*tensor.Dense{gradcheck.Random(rng, 1, b, n, 3*d)}
		gradcheck.Assert(t, func(g *G.ExprGraph, x G.Nodes) (*G.Node, error) {
			_, o, err := Attention(x[0], h)
			return o, err
		}, in, 1e-6, checkAll)
		gradcheck.Assert(t, func(g *G.ExprGraph, x G.Nodes) (*G.Node, error) {
			p, o, err := Attention(x[0], h)
			if err != nil {
				return nil, err
			}
			lp, err := G.Sum(G.Must(G.Square(p)))
			if err != nil {
				return nil, err
			}
			lo, err := G.Sum(G.Must(G.Square(o)))
			if err != nil {
				return nil, err
			}
			return G.Add(lp, lo)
		}, in, 1e-6, checkAll)
	})
}

// refAttention is the naive triple-loop reference in float64: P (B,H,N,N)
// and O (B,N,D) from qkv (B,N,3D), with a per-row stable softmax.
func refAttention(qkv []float64, b, n, d, heads int) (p, o []float64) {
	dh := d / heads
	scale := 1 / math.Sqrt(float64(dh))
	at := func(bi, t, f int) float64 { return qkv[(bi*n+t)*3*d+f] }
	p = make([]float64, b*heads*n*n)
	o = make([]float64, b*n*d)
	for bi := 0; bi < b; bi++ {
		for h := 0; h < heads; h++ {
			pp := p[(bi*heads+h)*n*n:]
			for i := 0; i < n; i++ {
				row := pp[i*n : (i+1)*n]
				m := math.Inf(-1)
				for j := 0; j < n; j++ {
					s := 0.0
					for e := 0; e < dh; e++ {
						s += at(bi, i, h*dh+e) * at(bi, j, d+h*dh+e)
					}
					row[j] = s * scale
					m = math.Max(m, row[j])
				}
				sum := 0.0
				for j := range row {
					row[j] = math.Exp(row[j] - m)
					sum += row[j]
				}
				for j := range row {
					row[j] /= sum
				}
				for e := 0; e < dh; e++ {
					s := 0.0
					for j := 0; j < n; j++ {
						s += row[j] * at(bi, j, 2*d+h*dh+e)
					}
					o[(bi*n+i)*d+h*dh+e] = s
				}
			}
		}
	}
	return p, o
}

// runAttention evaluates P and O = AttentionApply(AttentionProbs(qkv)) in a
// TapeMachine, in the dtype of qkv, and returns both as float64.
func runAttention(t *testing.T, qkv *tensor.Dense, heads int) (p, o []float64) {
	t.Helper()
	g := G.NewGraph()
	x := G.NewTensor(g, qkv.Dtype(), 3, G.WithShape(qkv.Shape()...), G.WithValue(qkv), G.WithName("qkv"))
	pn, err := AttentionProbs(x, heads)
	if err != nil {
		t.Fatalf("%+v", err)
	}
	on, err := AttentionApply(pn, x, heads)
	if err != nil {
		t.Fatalf("%+v", err)
	}
	graphtest.Run(t, g)
	return graphtest.Float64s(pn.Value()), graphtest.Float64s(on.Value())
}

// toF32 rounds a float64 tensor to float32 and returns both the float32
// tensor and the rounded values as float64 (the reference's input).
func toF32(x *tensor.Dense) (*tensor.Dense, []float64) {
	f := inDtype(tensor.Float32, x)
	return f, graphtest.Float64s(f)
}

func TestAttentionForward(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	shapes := append(attnShapes, [4]int{3, 17, 32, 4}, [4]int{4, 65, 48, 3}) // the last one runs on several goroutines
	for _, c := range shapes {
		b, n, d, h := c[0], c[1], c[2], c[3]
		qkv := gradcheck.Random(rng, 1, b, n, 3*d)
		refP, refO := refAttention(qkv.Data().([]float64), b, n, d, h)
		p, o := runAttention(t, qkv, h)
		ep, eo := graphtest.MaxAbsDiff(p, refP), graphtest.MaxAbsDiff(o, refO)
		t.Logf("f64 B%d N%d D%d H%d: max |ΔP| %.2e, max |ΔO| %.2e", b, n, d, h, ep, eo)
		if ep > 1e-12 || eo > 1e-12 {
			t.Errorf("f64 B%d N%d D%d H%d: forward differs from reference: P %.2e, O %.2e", b, n, d, h, ep, eo)
		}

		q32, r32 := toF32(qkv)
		refP, refO = refAttention(r32, b, n, d, h)
		p, o = runAttention(t, q32, h)
		ep, eo = graphtest.MaxAbsDiff(p, refP), graphtest.MaxAbsDiff(o, refO)
		t.Logf("f32 B%d N%d D%d H%d: max |ΔP| %.2e, max |ΔO| %.2e", b, n, d, h, ep, eo)
		if ep > 1e-5 || eo > 1e-5 {
			t.Errorf("f32 B%d N%d D%d H%d: forward differs from reference: P %.2e, O %.2e", b, n, d, h, ep, eo)
		}
	}
}

// TestAttentionLargeLogits: logits around ±1000, where Gorgonia's SoftMax
// (max seeded from the whole tensor) gives NaN, must give finite rows that
// sum to 1 and match the stable reference.
func TestAttentionLargeLogits(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	b, n, d, h := 2, 6, 8, 2
	qkv := gradcheck.Random(rng, 1, b, n, 3*d)
	// Scale q and k by 22: logits scale·q·k grow by 484, to a few hundred to
	// over a thousand in magnitude.
	data := qkv.Data().([]float64)
	for i := range data {
		if i%(3*d) < 2*d {
			data[i] *= 22
		}
	}
	// The largest |logit|, to be sure the case is what it claims.
	maxLogit := 0.0
	dh := d / h
	for bi := 0; bi < b; bi++ {
		for hh := 0; hh < h; hh++ {
			for i := 0; i < n; i++ {
				for j := 0; j < n; j++ {
					s := 0.0
					for e := 0; e < dh; e++ {
						s += data[(bi*n+i)*3*d+hh*dh+e] * data[(bi*n+j)*3*d+d+hh*dh+e]
					}
					maxLogit = math.Max(maxLogit, math.Abs(s/math.Sqrt(float64(dh))))
				}
			}
		}
	}
	t.Logf("largest |logit| %.0f", maxLogit)
	if maxLogit < 800 {
		t.Fatalf("test setup: largest |logit| is only %.0f", maxLogit)
	}
	refP, refO := refAttention(data, b, n, d, h)
	q32, r32 := toF32(qkv)
	refP32, refO32 := refAttention(r32, b, n, d, h)
	for _, tc := range []struct {
		name       string
		x          *tensor.Dense
		rp, ro     []float64
		tolP, tolO float64
	}{
		{"f64", qkv, refP, refO, 1e-9, 1e-9},
		// float32 logits of ~1000 carry an absolute rounding error of up to
		// ~1e-4, which shows directly in exp: compare more loosely.
		{"f32", q32, refP32, refO32, 1e-3, 1e-3},
	} {
		p, o := runAttention(t, tc.x, h)
		for r := 0; r < len(p)/n; r++ {
			sum := 0.0
			for _, v := range p[r*n : (r+1)*n] {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					t.Fatalf("%s: row %d has a non-finite or negative probability: %v", tc.name, r, p[r*n:(r+1)*n])
				}
				sum += v
			}
			if math.Abs(sum-1) > 1e-5 {
				t.Errorf("%s: row %d sums to %v", tc.name, r, sum)
			}
		}
		for _, v := range o {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%s: non-finite output", tc.name)
			}
		}
		ep, eo := graphtest.MaxAbsDiff(p, tc.rp), graphtest.MaxAbsDiff(o, tc.ro)
		t.Logf("%s: max |ΔP| %.2e, max |ΔO| %.2e", tc.name, ep, eo)
		if ep > tc.tolP || eo > tc.tolO {
			t.Errorf("%s: differs from the stable reference: P %.2e, O %.2e", tc.name, ep, eo)
		}
	}
}

func TestAttentionBadShapes(t *testing.T) {
	g := G.NewGraph()
	node := func(name string, s ...int) *G.Node {
		return G.NewTensor(g, tensor.Float64, len(s), G.WithShape(s...), G.WithName(name))
	}
	qkv := node("qkv", 2, 5, 18)
	cases := []struct {
		name  string
		build func() (*G.Node, error)
	}{
		{"last axis not 3·D", func() (*G.Node, error) { return AttentionProbs(node("odd", 2, 5, 17), 2) }},
		{"D not divisible by heads", func() (*G.Node, error) { return AttentionProbs(qkv, 4) }},
		{"zero heads", func() (*G.Node, error) { return AttentionProbs(qkv, 0) }},
		{"qkv rank 2", func() (*G.Node, error) { return AttentionProbs(node("flat", 10, 18), 2) }},
		{"P heads mismatch", func() (*G.Node, error) { return AttentionApply(node("p3", 2, 3, 5, 5), qkv, 2) }},
		{"P tokens mismatch", func() (*G.Node, error) { return AttentionApply(node("p4", 2, 2, 4, 4), qkv, 2) }},
		{"P batch mismatch", func() (*G.Node, error) { return AttentionApply(node("p1", 1, 2, 5, 5), qkv, 2) }},
		{"apply D not divisible", func() (*G.Node, error) { return AttentionApply(node("p5", 2, 4, 5, 5), qkv, 4) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panicked instead of returning an error: %v", r)
				}
			}()
			n, err := c.build()
			if err == nil {
				t.Fatalf("no error; got node of shape %v", n.Shape())
			}
			t.Logf("error: %v", err)
		})
	}
	// InferShape itself (reached when a graph is built another way) also
	// rejects bad shapes with an error.
	op := attnApplyOp{newAttn("AttentionApply", 2, 4, 3, 3), false}
	if _, err := op.InferShape(tensor.Shape{2, 2, 5, 4}, tensor.Shape{2, 5, 18}); err == nil {
		t.Errorf("InferShape accepted P (2,2,5,4) for qkv (2,5,18)")
	} else {
		t.Logf("InferShape error: %v", err)
	}
	pop := attnProbsOp{newAttn("AttentionProbs", 2, 3, 4)}
	if _, err := pop.InferShape(tensor.Shape{2, 5, 16}); err == nil {
		t.Errorf("InferShape accepted qkv (2,5,16)")
	}
}
