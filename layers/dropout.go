package layers

import (
	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/layers/ops"
)

// Dropout zeroes activations with probability P while the Noise is in
// training mode (inverted dropout). With PerSample it drops whole samples
// of a residual branch: stochastic depth (DropPath). P = 0 adds no op.
type Dropout struct {
	P         float64
	PerSample bool // ops.DropSamples instead of ops.DropElements
	Noise     *ops.Noise
}

// Forward applies dropout.
func (d Dropout) Forward(x *G.Node) (*G.Node, error) {
	if d.P == 0 {
		return x, nil
	}
	if d.PerSample {
		return ops.Dropout(x, d.P, ops.DropSamples, d.Noise)
	}
	return ops.Dropout(x, d.P, ops.DropElements, d.Noise)
}
