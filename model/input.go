package model

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// NewInput adds to the model's graph an input node for a batch of images,
// (batch, C, H, W) in the model's dtype, with a value of its own: write the
// normalised images into x.Value().Data() ([]float32 or []float64) before
// each run. Forward, Features and ForwardAll take it.
func (m *ViT) NewInput(batch int, name string) (*G.Node, error) {
	if batch < 1 {
		return nil, errors.Errorf("model: input batch %d, expected at least 1", batch)
	}
	c := m.Config
	shape := []int{batch, c.Channels, c.ImageSize, c.ImageSize}
	v := tensor.New(tensor.WithShape(shape...), tensor.Of(m.dtype))
	return G.NewTensor(m.g, m.dtype, 4, G.WithShape(shape...), G.WithName(name), G.WithValue(v)), nil
}
