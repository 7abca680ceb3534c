package layers

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/layers/ops"
)

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
	w, b, err := sc.weightAndBias([]int{dim, channels, patch, patch}, TruncNormal(0.02), Decay, WithBias)
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
