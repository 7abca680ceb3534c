package layers

import (
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/gradcheck"
	"github.com/vitgo/vit/layers/graphtest"
	"github.com/vitgo/vit/layers/ops"
)

// Small sizes so the whole file runs quickly.
const (
	tB, tN, tD, tH, tMLP = 2, 5, 8, 2, 12
)

// layerCase describes one layer for the gradient check. make creates the
// layer through its constructor in s and returns its forward pass and
// pointers to its parameter fields, in the order the constructor creates
// them (nil fields, such as an absent bias, are skipped).
type layerCase struct {
	x       []int // input shape
	partial bool  // fields may be a subset of the parameters (the others do not reach the output)
	make    func(s *Scope) (fwd func(x *G.Node) (*G.Node, error), fields []**G.Node, err error)
}

// liveFields drops the pointers to nil fields (parameters not created).
func liveFields(fields []**G.Node) []**G.Node {
	var out []**G.Node
	for _, f := range fields {
		if *f != nil {
			out = append(out, f)
		}
	}
	return out
}

// paramShapes builds the layer once in a scratch graph, checks that the
// listed fields are exactly the scope's parameters in creation order (or,
// for a partial case, some of them in that order), and returns their names
// and shapes.
func paramShapes(t *testing.T, c layerCase) (names []string, shapes [][]int) {
	t.Helper()
	s := NewScope(G.NewGraph(), "", tensor.Float64, 1)
	_, fields, err := c.make(s)
	if err != nil {
		t.Fatalf("%+v", err)
	}
	fields = liveFields(fields)
	ps := s.Params()
	if len(ps) != len(fields) && !c.partial {
		t.Fatalf("layer created %d parameters, test lists %d fields", len(ps), len(fields))
	}
	for _, p := range ps {
		if len(names) < len(fields) && *fields[len(names)] == p.Node {
			names = append(names, p.Name)
			shapes = append(shapes, p.Node.Shape().Clone())
		} else if !c.partial {
			t.Fatalf("parameter %s is not field %d", p.Name, len(names))
		}
	}
	if len(names) != len(fields) {
		t.Fatalf("only %d of %d fields are parameters of the layer, in creation order", len(names), len(fields))
	}
	return names, shapes
}

// paramValue is a non-trivial value for a parameter: LayerNorm scales (the
// only 1-D "weight"s) around 1, everything else N(0, 0.5²), so that every
// gradient is informative (no zero biases, no tiny weights).
func paramValue(rng *rand.Rand, name string, shape []int) *tensor.Dense {
	if len(shape) == 1 && strings.HasSuffix(name, "weight") {
		t := gradcheck.Random(rng, 0.3, shape...)
		for i, d := 0, t.Data().([]float64); i < len(d); i++ {
			d[i] += 1
		}
		return t
	}
	return gradcheck.Random(rng, 0.5, shape...)
}

// checkLayer runs gradcheck on the layer's forward pass with respect to the
// input (gradcheck input 0) and every parameter (inputs 1…): the builder
// creates the layer through its constructor in gradcheck's graph, then
// points each parameter field at the matching input node. It returns the
// largest relative error.
func checkLayer(t *testing.T, c layerCase, seed int64, opt gradcheck.Options) float64 {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	names, shapes := paramShapes(t, c)
	inputs := []*tensor.Dense{gradcheck.Random(rng, 1, c.x...)}
	for i := range names {
		inputs = append(inputs, paramValue(rng, names[i], shapes[i]))
	}
	build := func(g *G.ExprGraph, n G.Nodes) (*G.Node, error) {
		fwd, fields, err := c.make(NewScope(g, "", tensor.Float64, 1))
		if err != nil {
			return nil, err
		}
		fields = liveFields(fields)
		if len(fields) != len(n)-1 {
			return nil, fmt.Errorf("%d fields for %d parameter inputs", len(fields), len(n)-1)
		}
		for i, f := range fields {
			*f = n[i+1]
		}
		return fwd(n[0])
	}
	if opt.Seed == 0 {
		opt.Seed = seed
	}
	// gradcheck.Assert's checks, with the parameters' names in the messages.
	res, err := gradcheck.Check(build, inputs, opt)
	if err != nil {
		t.Fatalf("%+v", err)
	}
	worst := 0.0
	for i, r := range res {
		name := "input"
		if i > 0 {
			name = names[i-1]
		}
		t.Logf("%-26s %v", name, r)
		if !(r.RelErr <= gradTol) {
			t.Errorf("%s: gradient mismatch: %v (tolerance %.1e)", name, r, gradTol)
		}
		if !r.NonZero {
			t.Errorf("%s: zero gradient: %v", name, r)
		}
		worst = math.Max(worst, r.RelErr)
	}
	t.Logf("max relative error %.2e", worst)
	return worst
}

const gradTol = 1e-6

// all checks every element of these small inputs.
var all = gradcheck.Options{MaxElements: 1 << 20}

func linearCase(bias BiasTerm) layerCase {
	return layerCase{x: []int{tB, tN, tD}, make: func(s *Scope) (func(*G.Node) (*G.Node, error), []**G.Node, error) {
		l, err := NewLinear(s, "fc", tD, tMLP, bias)
		if err != nil {
			return nil, nil, err
		}
		return l.Forward, []**G.Node{&l.Weight, &l.Bias}, nil
	}}
}

func TestLinearGrad(t *testing.T) {
	for _, bias := range []BiasTerm{WithBias, NoBias} {
		t.Run(fmt.Sprintf("bias=%t", bias == WithBias), func(t *testing.T) {
			checkLayer(t, linearCase(bias), 1, all)
		})
	}
}

func TestLayerNormGrad(t *testing.T) {
	checkLayer(t, layerCase{x: []int{tB, tN, tD}, make: func(s *Scope) (func(*G.Node) (*G.Node, error), []**G.Node, error) {
		l, err := NewLayerNorm(s, "norm", tD, 1e-6)
		if err != nil {
			return nil, nil, err
		}
		return l.Forward, []**G.Node{&l.Scale, &l.Shift}, nil
	}}, 2, all)
}

func TestGELUGrad(t *testing.T) {
	for _, tanh := range []bool{false, true} {
		t.Run(fmt.Sprintf("tanh=%t", tanh), func(t *testing.T) {
			checkLayer(t, layerCase{x: []int{tB, tN, tD}, make: func(s *Scope) (func(*G.Node) (*G.Node, error), []**G.Node, error) {
				return GELU{Tanh: tanh}.Forward, nil, nil
			}}, 3, all)
		})
	}
}

// attentionCase checks Attention's output or, with probs, its second
// output, the attention probabilities.
func attentionCase(qkvBias BiasTerm, probs bool) layerCase {
	return layerCase{x: []int{tB, tN, tD}, partial: probs, make: func(s *Scope) (func(*G.Node) (*G.Node, error), []**G.Node, error) {
		a, err := NewAttention(s, "attn", tD, tH, qkvBias, Dropout{}, Dropout{})
		if err != nil {
			return nil, nil, err
		}
		fwd := func(x *G.Node) (*G.Node, error) {
			out, p, err := a.Forward(x)
			if probs {
				return p, err
			}
			return out, err
		}
		if probs {
			// proj does not reach the probabilities: leave it out of the check.
			return fwd, []**G.Node{&a.QKV.Weight, &a.QKV.Bias}, nil
		}
		return fwd, []**G.Node{&a.QKV.Weight, &a.QKV.Bias, &a.Proj.Weight, &a.Proj.Bias}, nil
	}}
}

func TestAttentionGrad(t *testing.T) {
	t.Run("qkvBias=true", func(t *testing.T) { checkLayer(t, attentionCase(WithBias, false), 4, all) })
	t.Run("qkvBias=false", func(t *testing.T) { checkLayer(t, attentionCase(NoBias, false), 4, gradcheck.Options{MaxElements: 32}) })
}

// TestAttentionProbsGrad checks the second output of Attention, the
// attention probabilities, with respect to the input and the qkv projection.
func TestAttentionProbsGrad(t *testing.T) {
	checkLayer(t, attentionCase(WithBias, true), 5, all)
}

func TestMLPGrad(t *testing.T) {
	for _, tanh := range []bool{false, true} {
		t.Run(fmt.Sprintf("tanh=%t", tanh), func(t *testing.T) {
			checkLayer(t, layerCase{x: []int{tB, tN, tD}, make: func(s *Scope) (func(*G.Node) (*G.Node, error), []**G.Node, error) {
				m, err := NewMLP(s, "mlp", tD, tMLP, GELU{Tanh: tanh}, Dropout{})
				if err != nil {
					return nil, nil, err
				}
				return m.Forward, []**G.Node{&m.FC1.Weight, &m.FC1.Bias, &m.FC2.Weight, &m.FC2.Bias}, nil
			}}, 6, all)
		})
	}
}

func blockFields(b *Block) []**G.Node {
	return []**G.Node{
		&b.Norm1.Scale, &b.Norm1.Shift,
		&b.Attn.QKV.Weight, &b.Attn.QKV.Bias, &b.Attn.Proj.Weight, &b.Attn.Proj.Bias,
		&b.Norm2.Scale, &b.Norm2.Shift,
		&b.MLP.FC1.Weight, &b.MLP.FC1.Bias, &b.MLP.FC2.Weight, &b.MLP.FC2.Bias,
	}
}

func blockCase(c BlockConfig, noise *ops.Noise) layerCase {
	return layerCase{x: []int{tB, tN, tD}, make: func(s *Scope) (func(*G.Node) (*G.Node, error), []**G.Node, error) {
		b, err := NewBlock(s, "blocks.0", c, noise)
		if err != nil {
			return nil, nil, err
		}
		fwd := func(x *G.Node) (*G.Node, error) {
			out, _, err := b.Forward(x)
			return out, err
		}
		return fwd, blockFields(b), nil
	}}
}

var baseBlock = BlockConfig{Dim: tD, Heads: tH, MLPDim: tMLP, Eps: 1e-6, QKVBias: true}

// TestBlockGrad checks a plain block on up to 64 elements of every input
// (all of most; checking all 720 elements takes ~1450 forward passes), and
// the variant without qkv bias and with the tanh GELU on 24 of each.
func TestBlockGrad(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		checkLayer(t, blockCase(baseBlock, nil), 7, gradcheck.Options{MaxElements: 64})
	})
	t.Run("noQKVBias,tanh", func(t *testing.T) {
		c := baseBlock
		c.QKVBias, c.GELU = false, GELU{Tanh: true}
		checkLayer(t, blockCase(c, nil), 8, gradcheck.Options{MaxElements: 24})
	})
}

// TestBlockDropoutGrad checks a block with all three kinds of dropout on,
// with the masks of the first forward pass frozen for the finite
// differences (checkLayer's zero-gradient check also makes sure that no
// branch was dropped for every sample). It then checks that dropout does
// change the block's output, i.e. that the masks were not all identity.
func TestBlockDropoutGrad(t *testing.T) {
	c := baseBlock
	c.Dropout, c.AttnDropout, c.DropPath = 0.2, 0.3, 0.3
	// With this noise seed the first masks drop sample 1 of the attention
	// branch and sample 0 of the MLP branch (DropPath), so that both the
	// dropped and the kept paths are checked; had a branch been dropped for
	// both samples, its parameters' gradients would be zero and checkLayer
	// would fail.
	noise := ops.NewNoise(26)
	checkLayer(t, blockCase(c, noise), 9, gradcheck.Options{MaxElements: 32, Prepare: func() { noise.Freeze(true) }})

	train, eval := runBlock(t, c, true), runBlock(t, c, false)
	if d := graphtest.MaxAbsDiff(train, eval); d < 1e-3 {
		t.Errorf("dropout changed the output by only %.2e", d)
	}
}

// runBlock evaluates a fresh block (seeded parameters and input) once.
func runBlock(t *testing.T, c BlockConfig, training bool) []float64 {
	t.Helper()
	g := G.NewGraph()
	noise := ops.NewNoise(26)
	noise.SetTraining(training)
	b, err := NewBlock(NewScope(g, "", tensor.Float64, 3), "blk", c, noise)
	if err != nil {
		t.Fatalf("%+v", err)
	}
	rng := rand.New(rand.NewSource(5))
	for _, f := range blockFields(b) { // large weights and biases, so the branches matter
		if d := (*f).Value().Data().([]float64); (*f).Dims() == 2 || strings.HasSuffix((*f).Name(), "bias") {
			copy(d, gradcheck.Random(rng, 0.5, len(d)).Data().([]float64))
		}
	}
	xv := gradcheck.Random(rand.New(rand.NewSource(4)), 1, tB, tN, tD)
	x := G.NewTensor(g, tensor.Float64, 3, G.WithShape(tB, tN, tD), G.WithValue(xv), G.WithName("x"))
	y, _, err := b.Forward(x)
	if err != nil {
		t.Fatalf("%+v", err)
	}
	graphtest.Run(t, g)
	return graphtest.Float64s(y.Value())
}

func TestPatchEmbedGrad(t *testing.T) {
	checkLayer(t, layerCase{x: []int{tB, 3, 4, 6}, make: func(s *Scope) (func(*G.Node) (*G.Node, error), []**G.Node, error) {
		p, err := NewPatchEmbed(s, "patch_embed", 3, 2, tD)
		if err != nil {
			return nil, nil, err
		}
		return p.Forward, []**G.Node{&p.Weight, &p.Bias}, nil
	}}, 9, all)
}

func TestConvStemGrad(t *testing.T) {
	for _, c := range []int{1, 3} {
		t.Run(fmt.Sprintf("channels=%d", c), func(t *testing.T) {
			checkLayer(t, layerCase{x: []int{tB, c, 8, 8}, make: func(s *Scope) (func(*G.Node) (*G.Node, error), []**G.Node, error) {
				st, err := NewConvStem(s, "patch_embed", c, 8, []int{3, 4}, tD, 1e-6)
				if err != nil {
					return nil, nil, err
				}
				var fields []**G.Node
				for i := range st.Convs {
					fields = append(fields, &st.Convs[i], &st.Norms[i].Scale, &st.Norms[i].Shift)
				}
				return st.Forward, append(fields, &st.Proj, &st.Bias), nil
			}}, 11, gradcheck.Options{MaxElements: 48})
		})
	}
}

// TestConvStemShapes: n convolutions of stride 2 make the tokens of
// patches of 2ⁿ pixels; an odd grid on the way is refused.
func TestConvStemShapes(t *testing.T) {
	g := G.NewGraph()
	s := NewScope(g, "", tensor.Float32, 1)
	st, err := NewConvStem(s, "patch_embed", 1, 28, []int{4, 8}, 16, 1e-6)
	if err != nil {
		t.Fatal(err)
	}
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(2, 1, 28, 28), G.WithName("x"))
	y, err := st.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	if got := y.Shape(); !got.Eq(tensor.Shape{2, 49, 16}) {
		t.Fatalf("tokens shape %v, want (2, 49, 16)", got)
	}
	var names []string
	for _, p := range s.Params() {
		names = append(names, p.Name)
	}
	want := "patch_embed.stem.0.conv.weight patch_embed.stem.0.norm.weight patch_embed.stem.0.norm.bias " +
		"patch_embed.stem.1.conv.weight patch_embed.stem.1.norm.weight patch_embed.stem.1.norm.bias " +
		"patch_embed.proj.weight patch_embed.proj.bias"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("parameters\n%s\nwant\n%s", got, want)
	}
	if _, err := NewConvStem(NewScope(G.NewGraph(), "", tensor.Float32, 1), "p", 1, 28, []int{4, 8, 16}, 16, 1e-6); err == nil {
		t.Fatal("three stride-2 convolutions on 28×28 (28 → 14 → 7 → odd): expected an error")
	}
}

func TestDropoutLayer(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 3, G.WithShape(tB, tN, tD), G.WithName("x"))
	for _, d := range []Dropout{{}, {P: 0, PerSample: true, Noise: ops.NewNoise(1)}} {
		y, err := d.Forward(x)
		if err != nil || y != x {
			t.Errorf("%+v: P = 0 returned %v, %v; want the input node itself", d, y, err)
		}
	}
	for _, perSample := range []bool{false, true} {
		t.Run(fmt.Sprintf("perSample=%t", perSample), func(t *testing.T) {
			noise := ops.NewNoise(5)
			checkLayer(t, layerCase{x: []int{4, tN, tD}, make: func(s *Scope) (func(*G.Node) (*G.Node, error), []**G.Node, error) {
				return Dropout{P: 0.3, PerSample: perSample, Noise: noise}.Forward, nil, nil
			}}, 10, gradcheck.Options{MaxElements: 1 << 20, Prepare: func() { noise.Freeze(true) }})
			checkDropoutValues(t, perSample)
		})
	}
}

// checkDropoutValues runs the layer once on ones, with the same noise seed
// and shape as the gradient check (so the same first mask), and checks that
// it both drops and keeps: every element is 0 or 1/(1−p), and with
// PerSample every sample is all one or the other.
func checkDropoutValues(t *testing.T, perSample bool) {
	t.Helper()
	const p = 0.3
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 3, G.WithShape(4, tN, tD), G.WithInit(G.Ones()), G.WithName("x"))
	y, err := Dropout{P: p, PerSample: perSample, Noise: ops.NewNoise(5)}.Forward(x)
	if err != nil {
		t.Fatalf("%+v", err)
	}
	graphtest.Run(t, g)
	ys := y.Value().Data().([]float64)
	per := tN * tD
	dropped, kept := 0, 0
	for i, v := range ys {
		switch {
		case v == 0:
			dropped++
		case math.Abs(v-1/(1-p)) < 1e-12:
			kept++
		default:
			t.Fatalf("element %d = %v, want 0 or %v", i, v, 1/(1-p))
		}
		if perSample && (v == 0) != (ys[i/per*per] == 0) {
			t.Fatalf("sample %d is partly dropped", i/per)
		}
	}
	t.Logf("dropped %d, kept %d elements", dropped, kept)
	if dropped == 0 || kept == 0 {
		t.Errorf("dropped %d and kept %d elements: the mask does not test dropout", dropped, kept)
	}
}

// --- Scope ---

func TestScopeDuplicateName(t *testing.T) {
	s := NewScope(G.NewGraph(), "", tensor.Float64, 1)
	if _, err := s.Param("w", []int{2}, Constant(0), Decay); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Param("w", []int{2}, Constant(0), Decay); err == nil {
		t.Error("same scope, same name twice: expected an error")
	}
	if _, err := s.Sub("a").Param("w", []int{2}, Constant(0), Decay); err != nil {
		t.Errorf("a.w next to w: %v", err)
	}
	if _, err := NewLinear(s, "fc", 2, 3, WithBias); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLinear(s, "fc", 2, 3, WithBias); err == nil {
		t.Error("two Linear layers named fc in one scope: expected an error")
	}
	if got := len(s.Params()); got != 4 {
		t.Errorf("%d parameters after the refused ones, want 4", got)
	}
}

func TestScopeNameInGraph(t *testing.T) {
	g := G.NewGraph()
	s1 := NewScope(g, "", tensor.Float64, 1)
	s2 := NewScope(g, "", tensor.Float64, 1)
	if _, err := s1.Param("w", []int{2}, Constant(0), Decay); err != nil {
		t.Fatal(err)
	}
	_, err := s2.Param("w", []int{2}, Constant(0), Decay)
	if err == nil {
		t.Fatal("second scope with the same prefix in one graph: expected an error")
	}
	t.Logf("error: %v", err)
	if len(s2.Params()) != 0 {
		t.Errorf("refused parameter was recorded: %v", s2.Params())
	}

	// Also with prefixes, and for a node not made by any scope.
	p1, p2 := NewScope(g, "a/", tensor.Float64, 1), NewScope(g, "a/", tensor.Float64, 1)
	if _, err := NewLinear(p1, "fc", 2, 2, WithBias); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLinear(p2, "fc", 2, 2, WithBias); err == nil {
		t.Error("two scopes with prefix a/ in one graph: expected an error")
	}
	G.NewVector(g, tensor.Float64, G.WithShape(2), G.WithName("x"))
	if _, err := NewScope(g, "", tensor.Float64, 1).Param("x", []int{2}, Constant(0), NoDecay); err == nil {
		t.Error("name of an existing graph node: expected an error")
	}
}

func TestScopePrefixesCoexist(t *testing.T) {
	g := G.NewGraph()
	a, b := NewScope(g, "a/", tensor.Float64, 1), NewScope(g, "b/", tensor.Float64, 1)
	for _, s := range []*Scope{a, b} {
		if _, err := NewBlock(s, "blocks.0", baseBlock, nil); err != nil {
			t.Fatalf("%+v", err)
		}
	}
	if len(a.Params()) != 12 || len(b.Params()) != 12 {
		t.Fatalf("got %d and %d parameters, want 12 each", len(a.Params()), len(b.Params()))
	}
	for i := range a.Params() {
		pa, pb := a.Params()[i], b.Params()[i]
		if pa.Name != pb.Name || pa.Node == pb.Node {
			t.Errorf("param %d: %q (%p) vs %q (%p)", i, pa.Name, pa.Node, pb.Name, pb.Node)
		}
		if pa.Node.Name() != "a/"+pa.Name || pb.Node.Name() != "b/"+pb.Name {
			t.Errorf("graph names %q, %q for %q", pa.Node.Name(), pb.Node.Name(), pa.Name)
		}
		if len(g.ByName(pa.Node.Name())) != 1 || len(g.ByName(pb.Node.Name())) != 1 {
			t.Errorf("%q is not unique in the graph", pa.Name)
		}
	}
}

func paramData(t *testing.T, seed int64) [][]float64 {
	t.Helper()
	s := NewScope(G.NewGraph(), "", tensor.Float64, seed)
	if _, err := NewBlock(s, "blk", baseBlock, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPatchEmbed(s, "pe", 3, 2, tD); err != nil {
		t.Fatal(err)
	}
	var out [][]float64
	for _, p := range s.Params() {
		out = append(out, append([]float64(nil), p.Node.Value().Data().([]float64)...))
	}
	return out
}

func TestScopeSeed(t *testing.T) {
	a, b, c := paramData(t, 42), paramData(t, 42), paramData(t, 43)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed gave different parameters")
	}
	random := 0 // parameters with a random init
	for i := range a {
		if a[i][0] != a[i][len(a[i])-1] { // not constant
			random++
			if reflect.DeepEqual(a[i], c[i]) {
				t.Errorf("param %d: different seeds gave the same values", i)
			}
		} else if !reflect.DeepEqual(a[i], c[i]) {
			t.Errorf("param %d: a constant init depends on the seed", i)
		}
	}
	if random != 5 { // qkv, proj, fc1, fc2, patch weights
		t.Errorf("%d randomly initialised parameters, want 5", random)
	}
}

func TestScopeParamsOrder(t *testing.T) {
	s := NewScope(G.NewGraph(), "m/", tensor.Float32, 1)
	if _, err := NewPatchEmbed(s, "patch_embed", 3, 2, tD); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Param("cls_token", []int{1, 1, tD}, Constant(0), NoDecay); err != nil {
		t.Fatal(err)
	}
	if _, err := NewBlock(s.Sub("blocks"), "0", baseBlock, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLayerNorm(s, "norm", tD, 1e-6); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLinear(s, "head", tD, 3, WithBias); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name  string
		shape []int
		decay bool
	}{
		{"patch_embed.proj.weight", []int{tD, 3, 2, 2}, true},
		{"patch_embed.proj.bias", []int{tD}, false},
		{"cls_token", []int{1, 1, tD}, false},
		{"blocks.0.norm1.weight", []int{tD}, false},
		{"blocks.0.norm1.bias", []int{tD}, false},
		{"blocks.0.attn.qkv.weight", []int{3 * tD, tD}, true},
		{"blocks.0.attn.qkv.bias", []int{3 * tD}, false},
		{"blocks.0.attn.proj.weight", []int{tD, tD}, true},
		{"blocks.0.attn.proj.bias", []int{tD}, false},
		{"blocks.0.norm2.weight", []int{tD}, false},
		{"blocks.0.norm2.bias", []int{tD}, false},
		{"blocks.0.mlp.fc1.weight", []int{tMLP, tD}, true},
		{"blocks.0.mlp.fc1.bias", []int{tMLP}, false},
		{"blocks.0.mlp.fc2.weight", []int{tD, tMLP}, true},
		{"blocks.0.mlp.fc2.bias", []int{tD}, false},
		{"norm.weight", []int{tD}, false},
		{"norm.bias", []int{tD}, false},
		{"head.weight", []int{3, tD}, true},
		{"head.bias", []int{3}, false},
	}
	ps := s.Params()
	if len(ps) != len(want) {
		t.Fatalf("%d parameters, want %d", len(ps), len(want))
	}
	for i, w := range want {
		p := ps[i]
		if p.Name != w.name || !reflect.DeepEqual([]int(p.Node.Shape()), w.shape) || p.Decay != w.decay {
			t.Errorf("param %d: %q %v decay=%t, want %q %v decay=%t", i, p.Name, p.Node.Shape(), p.Decay, w.name, w.shape, w.decay)
		}
		if p.Node.Name() != "m/"+w.name || p.Node.Dtype() != tensor.Float32 {
			t.Errorf("param %d: graph node %q of %v", i, p.Node.Name(), p.Node.Dtype())
		}
	}
	// A child scope sees the same list.
	if got := s.Sub("blocks").Params(); len(got) != len(ps) {
		t.Errorf("sub-scope lists %d parameters, want %d", len(got), len(ps))
	}
}

func TestTruncNormal(t *testing.T) {
	const n, std = 10000, 0.02
	d := make([]float64, n)
	TruncNormal(std)(rand.New(rand.NewSource(1)), d)
	var sum, sq float64
	for i, v := range d {
		if math.Abs(v) > 2*std/truncStd {
			t.Fatalf("sample %d = %v lies outside ±%v", i, v, 2*std/truncStd)
		}
		sum += v
		sq += v * v
	}
	mean := sum / n
	sd := math.Sqrt(sq/n - mean*mean)
	// N(0, 1) truncated to ±2 has standard deviation
	// sqrt(1 − 4φ(2)/(2Φ(2)−1)) ≈ 0.8796; TruncNormal rescales by it.
	phi := math.Exp(-2) / math.Sqrt(2*math.Pi)
	if r := math.Sqrt(1 - 4*phi/math.Erf(2/math.Sqrt2)); math.Abs(r-truncStd) > 1e-15 {
		t.Fatalf("truncStd = %v, want %v", truncStd, r)
	}
	want := std
	t.Logf("mean %.2e, std %.5f (truncated-normal std %.5f)", mean, sd, want)
	if math.Abs(mean) > 3*want/math.Sqrt(n) {
		t.Errorf("mean %v, want about 0", mean)
	}
	if math.Abs(sd-want) > 0.03*want {
		t.Errorf("std %v, want %v (within 3%%)", sd, want)
	}
}

// TestScopeBadInput: invalid shapes and dtypes are refused.
func TestScopeBadInput(t *testing.T) {
	s := NewScope(G.NewGraph(), "", tensor.Float64, 1)
	if _, err := s.Param("z", []int{2, 0}, Constant(0), Decay); err == nil {
		t.Error("zero dimension: expected an error")
	}
	if _, err := NewScope(G.NewGraph(), "", tensor.Int, 1).Param("i", []int{2}, Constant(0), Decay); err == nil {
		t.Error("int dtype: expected an error")
	}
	if _, err := NewAttention(s, "attn", 8, 3, WithBias, Dropout{}, Dropout{}); err == nil {
		t.Error("8 features over 3 heads: expected an error")
	}
}
