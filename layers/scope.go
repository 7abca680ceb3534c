package layers

import (
	"math"
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
	Decay bool
}

// Init fills a new parameter's data.
type Init func(rng *rand.Rand, data []float64)

// TruncNormal draws from a normal distribution truncated at ±2 standard
// deviations and rescaled so that its standard deviation is std, as JAX's
// truncated-normal initialisers (big_vision's ViT) do. (timm truncates at
// ±2 in absolute units, which for std 0.02 is no truncation at all; both
// give weights of standard deviation std.)
func TruncNormal(std float64) Init {
	return func(rng *rand.Rand, d []float64) {
		for i := range d {
			v := rng.NormFloat64()
			for math.Abs(v) > 2 {
				v = rng.NormFloat64()
			}
			d[i] = v * std / truncStd
		}
	}
}

// truncStd is the standard deviation of N(0, 1) truncated to [−2, 2]:
// sqrt(1 − 4φ(2)/(2Φ(2)−1)).
const truncStd = 0.87962566103423978

// Normal draws from N(0, std²).
func Normal(std float64) Init {
	return func(rng *rand.Rand, d []float64) {
		for i := range d {
			d[i] = rng.NormFloat64() * std
		}
	}
}

// Constant sets every element to v.
func Constant(v float64) Init {
	return func(_ *rand.Rand, d []float64) {
		for i := range d {
			d[i] = v
		}
	}
}

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

// Param creates a learnable tensor named path+name.
func (s *Scope) Param(name string, shape []int, init Init, decay bool) (*G.Node, error) {
	full := s.path + name
	gname := s.prefix + full
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
	s.shared.params = append(s.shared.params, &Param{Name: full, Node: node, Decay: decay})
	return node, nil
}
