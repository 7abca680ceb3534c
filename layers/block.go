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
	if b.Attn, err = NewAttention(sc, "attn", c.Dim, c.Heads, c.QKVBias, Dropout{P: c.AttnDropout, Noise: noise}, drop); err != nil {
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

// PatchEmbed cuts images (B, C, H, W) into P×P patches and projects each
// flattened patch to D features: a P×P convolution with stride P, whose
// kernel is stored (D, C, P, P) as PyTorch's Conv2d.
type PatchEmbed struct {
	Weight *G.Node // (D, C, P, P)
	Bias   *G.Node // (D)
	Patch  int
	name   string
}

// NewPatchEmbed creates name.proj.weight and name.proj.bias in s.
func NewPatchEmbed(s *Scope, name string, channels, patch, dim int) (*PatchEmbed, error) {
	sc := s.Sub(name).Sub("proj")
	w, err := sc.Param("weight", []int{dim, channels, patch, patch}, TruncNormal(0.02), true)
	if err != nil {
		return nil, err
	}
	b, err := sc.Param("bias", []int{dim}, Constant(0), false)
	if err != nil {
		return nil, err
	}
	return &PatchEmbed{Weight: w, Bias: b, Patch: patch, name: sc.path}, nil
}

// Forward maps images (B, C, H, W) to patch embeddings (B, N, D), patches
// in row-major order.
func (p *PatchEmbed) Forward(x *G.Node) (*G.Node, error) {
	patches, err := ops.Patchify(x, p.Patch) // (B, N, C·P·P)
	if err != nil {
		return nil, errors.Wrap(err, p.name)
	}
	ws := p.Weight.Shape()
	w, err := G.Reshape(p.Weight, []int{ws[0], ws[1] * ws[2] * ws[3]}) // (D, C·P·P), no copy
	if err != nil {
		return nil, errors.Wrap(err, p.name)
	}
	y, err := ops.Linear(patches, w, p.Bias) // (B, N, D)
	return y, errors.Wrap(err, p.name)
}
