package layers

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/layers/ops"
)

// Attention is multi-head self-attention with a fused qkv projection:
// softmax(Q·Kᵀ/√d_head)·V per head, heads concatenated, then projected.
// The scale is 1/√(head dim), as in the paper and every reference
// implementation. Q, K and V are read in place from the qkv projection's
// output (B, N, 3D), so no head is ever transposed or copied.
type Attention struct {
	QKV      *Linear // D → 3D, q then k then v
	Proj     *Linear // D → D
	Heads    int
	AttnDrop Dropout // on the attention probabilities
	ProjDrop Dropout // on the output
	name     string
}

// NewAttention creates name.qkv (with a bias unless qkvBias is NoBias) and
// name.proj in s.
func NewAttention(s *Scope, name string, dim, heads int, qkvBias BiasTerm, attnDrop, projDrop Dropout) (*Attention, error) {
	if heads <= 0 || dim%heads != 0 {
		return nil, errors.Errorf("layers: attention width %d is not divisible by %d heads", dim, heads)
	}
	sc := s.Sub(name)
	qkv, err := NewLinear(sc, "qkv", dim, 3*dim, qkvBias)
	if err != nil {
		return nil, err
	}
	proj, err := NewLinear(sc, "proj", dim, dim, WithBias)
	if err != nil {
		return nil, err
	}
	return &Attention{QKV: qkv, Proj: proj, Heads: heads, AttnDrop: attnDrop, ProjDrop: projDrop, name: sc.path}, nil
}

// Forward maps x (B, N, D) to (B, N, D) and also returns the attention
// probabilities (B, H, N, N), before attention dropout, whose value can be
// read after the graph has run.
func (a *Attention) Forward(x *G.Node) (out, probs *G.Node, err error) {
	qkv, err := a.QKV.Forward(x) // (B, N, 3D)
	if err != nil {
		return nil, nil, err
	}
	var o *G.Node
	if a.AttnDrop.P == 0 {
		// P (B, H, N, N) and O (B, N, D) with one fused backward pass.
		if probs, o, err = ops.Attention(qkv, a.Heads); err != nil {
			return nil, nil, errors.Wrap(err, a.name)
		}
	} else {
		probs, err = ops.AttentionProbs(qkv, a.Heads) // (B, H, N, N)
		if err != nil {
			return nil, nil, errors.Wrap(err, a.name)
		}
		p, err := a.AttnDrop.Forward(probs)
		if err != nil {
			return nil, nil, errors.Wrap(err, a.name)
		}
		if o, err = ops.AttentionApply(p, qkv, a.Heads); err != nil { // (B, N, D)
			return nil, nil, errors.Wrap(err, a.name)
		}
	}
	if o, err = a.Proj.Forward(o); err != nil {
		return nil, nil, err
	}
	out, err = a.ProjDrop.Forward(o)
	return out, probs, errors.Wrap(err, a.name)
}
