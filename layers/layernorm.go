package layers

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/layers/ops"
)

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
	w, b, err := sc.weightAndBias([]int{dim}, Constant(1), NoDecay, WithBias)
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
