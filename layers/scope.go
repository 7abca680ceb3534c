package layers

import (
	"math/rand"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Param is one learnable tensor: its name inside the model (timm's
// state-dict name, without the scope's graph prefix), its node, and whether
// weight decay applies to it (not to biases, norms, tokens and positions).
type Param struct {
	Name  string
	Node  *G.Node
	Decay bool // created with Decay
}

// WeightDecay says whether the optimiser's weight decay applies to a
// parameter (Scope.Param): to weight matrices and convolution kernels, not
// to biases, norm scales and shifts, the class token and the positional
// embedding (timm's no_weight_decay).
type WeightDecay uint8

const (
	NoDecay WeightDecay = iota // biases, norms, tokens, positions
	Decay                      // weight matrices and kernels
)

// Scope creates parameters in a graph under a name prefix, in a fixed
// order from one seeded generator, and refuses to create a name twice or a
// name that the graph already holds.
type Scope struct {
	g      *G.ExprGraph
	prefix string // graph-wide prefix, e.g. "teacher/"
	path   string // path inside the model, e.g. "blocks.0.attn."
	shared *scopeState
}

type scopeState struct {
	share  map[string]*tensor.Dense // existing values to use instead of new ones, by name
	dtype  tensor.Dtype
	rng    *rand.Rand
	params []*Param
	names  map[string]bool
}

// NewScope returns the root scope of a model whose parameters are named
// prefix+name in graph g, of the given dtype, initialised from seed.
func NewScope(g *G.ExprGraph, prefix string, dtype tensor.Dtype, seed int64) *Scope {
	return &Scope{g: g, prefix: prefix, shared: &scopeState{dtype: dtype, rng: rand.New(rand.NewSource(seed)), names: map[string]bool{}}}
}

// ShareValues makes the scope use the given tensors (by parameter name,
// e.g. "blocks.0.attn.qkv.weight") as the values of the parameters it
// creates, instead of new ones: a second graph over the same weights, such
// as an inference graph beside a training graph, sees every update.
func (s *Scope) ShareValues(vals map[string]*tensor.Dense) { s.shared.share = vals }

// Sub returns a child scope whose names are prefixed with name + ".".
func (s *Scope) Sub(name string) *Scope {
	c := *s
	c.path = s.path + name + "."
	return &c
}

// Graph returns the scope's graph.
func (s *Scope) Graph() *G.ExprGraph { return s.g }

// Dtype returns the dtype of the scope's parameters.
func (s *Scope) Dtype() tensor.Dtype { return s.shared.dtype }

// Params returns every parameter created through this scope tree, in
// creation order.
func (s *Scope) Params() []*Param { return s.shared.params }

// Param creates a learnable tensor named path+name, filled by init, with
// or without weight decay.
func (s *Scope) Param(name string, shape []int, init Init, decay WeightDecay) (*G.Node, error) {
	full := s.path + name
	gname := s.prefix + full
	if decay != Decay && decay != NoDecay {
		return nil, errors.Errorf("layers: parameter %q: invalid WeightDecay %d", gname, decay)
	}
	if s.shared.names[full] || len(s.g.ByName(gname)) > 0 {
		return nil, errors.Errorf("layers: parameter %q already exists in the graph (use a different model prefix)", gname)
	}
	for _, d := range shape {
		if d <= 0 {
			return nil, errors.Errorf("layers: parameter %q has invalid shape %v", gname, shape)
		}
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	vals := make([]float64, n)
	init(s.shared.rng, vals) // always drawn, so the generator's sequence does not depend on sharing
	var t *tensor.Dense
	if s.shared.share != nil {
		t = s.shared.share[full]
		if t == nil || !t.Shape().Eq(tensor.Shape(shape)) || t.Dtype() != s.shared.dtype {
			return nil, errors.Errorf("layers: no shared %v value of shape %v for parameter %q", s.shared.dtype, shape, full)
		}
	}
	switch {
	case t != nil:
	case s.shared.dtype == tensor.Float32:
		f := make([]float32, n)
		for i, v := range vals {
			f[i] = float32(v)
		}
		t = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(f))
	case s.shared.dtype == tensor.Float64:
		t = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(vals))
	default:
		return nil, errors.Errorf("layers: unsupported dtype %v (want float32 or float64)", s.shared.dtype)
	}
	node := G.NewTensor(s.g, s.shared.dtype, len(shape), G.WithShape(shape...), G.WithValue(t), G.WithName(gname))
	s.shared.names[full] = true
	s.shared.params = append(s.shared.params, &Param{Name: full, Node: node, Decay: decay == Decay})
	return node, nil
}

// weightAndBias creates the scope's "weight" of shape w, filled by init,
// and, unless bias is NoBias, its "bias" of shape (w[0]) at zero without
// weight decay: the parameters of Linear, LayerNorm and PatchEmbed, in
// timm's order.
func (s *Scope) weightAndBias(w []int, init Init, decay WeightDecay, bias BiasTerm) (weight, b *G.Node, err error) {
	if bias != WithBias && bias != NoBias {
		return nil, nil, errors.Errorf("layers: %sbias: invalid BiasTerm %d", s.prefix+s.path, bias)
	}
	if weight, err = s.Param("weight", w, init, decay); err != nil {
		return nil, nil, err
	}
	if bias == WithBias {
		if b, err = s.Param("bias", w[:1], Constant(0), NoDecay); err != nil {
			return nil, nil, err
		}
	}
	return weight, b, nil
}
