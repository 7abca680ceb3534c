package layers

import (
	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/layers/ops"
)

// GELU is the activation of the ViT MLP: exact (erf) by default, or the
// tanh approximation that the original JAX weights were trained with.
type GELU struct {
	Tanh bool // ops.GELUTanh instead of ops.GELUExact
}

// Forward applies GELU element-wise.
func (a GELU) Forward(x *G.Node) (*G.Node, error) {
	if a.Tanh {
		return ops.GELU(x, ops.GELUTanh)
	}
	return ops.GELU(x, ops.GELUExact)
}
