package layers

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/layers/ops"
)

// Block is the pre-norm transformer encoder block:
//
//	x = x + DropPath(Attn(Norm1(x)))
//	x = x + DropPath(MLP(Norm2(x)))
type Block struct {
	Norm1    *LayerNorm
	Attn     *Attention
	Norm2    *LayerNorm
	MLP      *MLP
	DropPath Dropout
	name     string
}

// BlockConfig holds the sizes and options of one encoder block.
type BlockConfig struct {
	Dim, Heads, MLPDim int
	Eps                float64
	QKVBias            bool
	GELU               GELU
	Dropout            float64 // after the attention projection and in the MLP
	AttnDropout        float64 // on the attention probabilities
	DropPath           float64 // stochastic depth of both residual branches
}

// NewBlock creates name.{norm1,attn,norm2,mlp} in s.
func NewBlock(s *Scope, name string, c BlockConfig, noise *ops.Noise) (*Block, error) {
	sc := s.Sub(name)
	b := &Block{name: sc.path, DropPath: Dropout{P: c.DropPath, PerSample: true, Noise: noise}}
	var err error
	if b.Norm1, err = NewLayerNorm(sc, "norm1", c.Dim, c.Eps); err != nil {
		return nil, err
	}
	drop := Dropout{P: c.Dropout, Noise: noise}
	qkvBias := NoBias
	if c.QKVBias {
		qkvBias = WithBias
	}
	if b.Attn, err = NewAttention(sc, "attn", c.Dim, c.Heads, qkvBias, Dropout{P: c.AttnDropout, Noise: noise}, drop); err != nil {
		return nil, err
	}
	if b.Norm2, err = NewLayerNorm(sc, "norm2", c.Dim, c.Eps); err != nil {
		return nil, err
	}
	if b.MLP, err = NewMLP(sc, "mlp", c.Dim, c.MLPDim, c.GELU, drop); err != nil {
		return nil, err
	}
	return b, nil
}

// Forward maps tokens (B, N, D) to (B, N, D) and returns the block's
// attention probabilities (B, H, N, N).
func (b *Block) Forward(x *G.Node) (out, probs *G.Node, err error) {
	h, err := b.Norm1.Forward(x)
	if err != nil {
		return nil, nil, err
	}
	if h, probs, err = b.Attn.Forward(h); err != nil {
		return nil, nil, err
	}
	if x, err = b.residual(x, h); err != nil {
		return nil, nil, err
	}
	if h, err = b.Norm2.Forward(x); err != nil {
		return nil, nil, err
	}
	if h, err = b.MLP.Forward(h); err != nil {
		return nil, nil, err
	}
	out, err = b.residual(x, h)
	return out, probs, err
}

// residual returns x + DropPath(h).
func (b *Block) residual(x, h *G.Node) (*G.Node, error) {
	h, err := b.DropPath.Forward(h)
	if err != nil {
		return nil, errors.Wrap(err, b.name)
	}
	y, err := ops.Add(x, h)
	return y, errors.Wrap(err, b.name)
}
