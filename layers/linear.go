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

// BiasTerm says whether a layer has a learnable bias.
type BiasTerm uint8

const (
	WithBias BiasTerm = iota // y = x·Wᵀ + b, PyTorch's default
	NoBias                   // y = x·Wᵀ
)

// NewLinear creates name.weight and, unless bias is NoBias, name.bias in s.
func NewLinear(s *Scope, name string, in, out int, bias BiasTerm) (*Linear, error) {
	sc := s.Sub(name)
	w, b, err := sc.weightAndBias([]int{out, in}, TruncNormal(0.02), Decay, bias)
	if err != nil {
		return nil, err
	}
	return &Linear{Weight: w, Bias: b, name: sc.path}, nil
}

// Forward returns x·Wᵀ + b: (..., in) → (..., out).
func (l *Linear) Forward(x *G.Node) (*G.Node, error) {
	y, err := ops.Linear(x, l.Weight, l.Bias)
	return y, errors.Wrap(err, l.name)
}
