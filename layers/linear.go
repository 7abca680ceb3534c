package layers

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/layers/ops"
)

// Linear is y = x·Wᵀ + b over the last axis of an input of any rank, with
// W stored (out, in) as in PyTorch. Weights start as truncated N(0, 0.02²),
// the bias at zero.
type Linear struct {
	Weight *G.Node // (out, in)
	Bias   *G.Node // (out), or nil
	name   string
}

// NewLinear creates name.weight and name.bias in s.
func NewLinear(s *Scope, name string, in, out int, bias bool) (*Linear, error) {
	sc := s.Sub(name)
	w, err := sc.Param("weight", []int{out, in}, TruncNormal(0.02), true)
	if err != nil {
		return nil, err
	}
	l := &Linear{Weight: w, name: sc.path}
	if bias {
		if l.Bias, err = sc.Param("bias", []int{out}, Constant(0), false); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Forward returns x·Wᵀ + b: (..., in) → (..., out).
func (l *Linear) Forward(x *G.Node) (*G.Node, error) {
	y, err := ops.Linear(x, l.Weight, l.Bias)
	return y, errors.Wrap(err, l.name)
}

// LayerNorm normalises over the last axis, then scales and shifts
// (learnable, starting at 1 and 0).
type LayerNorm struct {
	Scale, Shift *G.Node // (D)
	Eps          float64
	name         string
}

// NewLayerNorm creates name.weight and name.bias in s.
func NewLayerNorm(s *Scope, name string, dim int, eps float64) (*LayerNorm, error) {
	sc := s.Sub(name)
	w, err := sc.Param("weight", []int{dim}, Constant(1), false)
	if err != nil {
		return nil, err
	}
	b, err := sc.Param("bias", []int{dim}, Constant(0), false)
	if err != nil {
		return nil, err
	}
	return &LayerNorm{Scale: w, Shift: b, Eps: eps, name: sc.path}, nil
}

// Forward returns the normalised x, same shape.
func (l *LayerNorm) Forward(x *G.Node) (*G.Node, error) {
	y, err := ops.LayerNorm(x, l.Scale, l.Shift, l.Eps)
	return y, errors.Wrap(err, l.name)
}

// GELU is the activation of the ViT MLP: exact (erf) by default, or the
// tanh approximation that the original JAX weights were trained with.
type GELU struct {
	Tanh bool
}

// Forward applies GELU element-wise.
func (a GELU) Forward(x *G.Node) (*G.Node, error) { return ops.GELU(x, !a.Tanh) }

// Dropout zeroes activations with probability P while the Noise is in
// training mode (inverted dropout). With PerSample it drops whole samples
// of a residual branch: stochastic depth (DropPath). P = 0 adds no op.
type Dropout struct {
	P         float64
	PerSample bool
	Noise     *ops.Noise
}

// Forward applies dropout.
func (d Dropout) Forward(x *G.Node) (*G.Node, error) {
	if d.P == 0 {
		return x, nil
	}
	return ops.Dropout(x, d.P, d.PerSample, d.Noise)
}
