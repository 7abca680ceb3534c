package model

import (
	"fmt"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Metadata keys of the weight files this package writes.
const (
	metaConfig = "vit.config" // the model's Config as JSON
	metaFormat = "format"     // "pt", as timm's files say
)

// stateDict returns the live parameters as float64 tensors under timm's names.
func (m *ViT) stateDict() (names []string, st map[string]stTensor) {
	st = make(map[string]stTensor, len(m.params))
	for _, p := range m.params {
		names = append(names, p.Name)
		v := p.Node.Value().(*tensor.Dense)
		var data []float64
		switch d := v.Data().(type) {
		case []float32:
			data = make([]float64, len(d))
			for i, x := range d {
				data[i] = float64(x)
			}
		case []float64:
			data = append([]float64(nil), d...)
		}
		st[p.Name] = stTensor{Shape: p.Node.Shape().Clone(), Data: data}
	}
	return names, st
}

// SaveWeights writes the parameters to a safetensors file under timm's
// names, in the model's dtype, with the config in the metadata so that Open
// can rebuild the model from the file alone. The file is written
// atomically: a failed save leaves any existing file untouched.
func (m *ViT) SaveWeights(path string) error {
	return m.SaveWeightsMeta(path, nil)
}

// SaveWeightsMeta is SaveWeights with extra metadata entries (string to
// string), for checkpoints that carry more than the weights.
func (m *ViT) SaveWeightsMeta(path string, extra map[string]string) error {
	names, st := m.stateDict()
	meta := map[string]string{metaFormat: "pt", metaConfig: m.Config.marshal()}
	for k, v := range extra {
		if k == metaFormat || k == metaConfig {
			return errors.Errorf("model: metadata key %q is reserved", k)
		}
		meta[k] = v
	}
	dt := "F32"
	if m.dtype == tensor.Float64 {
		dt = "F64"
	}
	return writeSafetensors(path, names, st, dt, meta)
}

// LoadWeights reads a safetensors file into the model's parameters, in
// place, so graphs already built on them see the new values. Any time
// before the graph runs is fine. It reads timm's names (as SaveWeights
// writes them), torchvision's and Hugging Face's, in F32, F64, F16 or BF16.
// A positional embedding for another patch grid is resized on the 2-D grid
// (bicubic, the class token kept apart), as for fine-tuning at another
// resolution. Missing, unexpected and mis-shaped tensors are reported
// together in one error, and then nothing is changed.
func (m *ViT) LoadWeights(path string) error {
	st, _, err := readSafetensors(path)
	if err != nil {
		return err
	}
	return errors.Wrapf(m.loadState(st), "model: load %s", path)
}

// loadState copies a state dict in any supported naming into the model.
func (m *ViT) loadState(in map[string]stTensor) error {
	st, _, err := toTimmNames(in)
	if err != nil {
		return err
	}
	want := make(map[string][]int, len(m.params))
	for _, p := range m.params {
		want[p.Name] = p.Node.Shape().Clone()
	}
	if pe, ok := st["pos_embed"]; ok && len(pe.Shape) == 3 && pe.Shape[1] != m.Config.Tokens() && pe.Shape[2] == m.Config.Dim {
		old, err := gridOf(pe.Shape[1] - 1)
		if err != nil {
			return errors.Wrapf(err, "pos_embed %v cannot be resized: its %d patch tokens are not a square grid", pe.Shape, pe.Shape[1]-1)
		}
		n := m.Config.Grid()
		if st["pos_embed"], err = resizePosEmbed(pe, 1, old, old, n, n); err != nil {
			return err
		}
	}
	if err := checkTensors(want, st); err != nil {
		return err
	}
	for _, p := range m.params {
		src := st[p.Name].Data
		switch d := p.Node.Value().(*tensor.Dense).Data().(type) {
		case []float32:
			for i, v := range src {
				d[i] = float32(v)
			}
		case []float64:
			copy(d, src)
		}
	}
	return nil
}

// ReadConfig returns the model config stored in a weight file's metadata
// (files written by SaveWeights carry one; plain timm, torchvision or
// Hugging Face files do not).
func ReadConfig(path string) (Config, map[string]string, error) {
	_, meta, err := readSafetensors(path)
	if err != nil {
		return Config{}, nil, err
	}
	return configFromMeta(path, meta)
}

func configFromMeta(path string, meta map[string]string) (Config, map[string]string, error) {
	s, ok := meta[metaConfig]
	if !ok {
		return Config{}, meta, errors.Errorf("model: %s has no %q metadata: build the model with New and call LoadWeights instead", path, metaConfig)
	}
	c, err := parseConfig(s)
	return c, meta, errors.Wrapf(err, "model: %s", path)
}

// Open rebuilds a model from a file written by SaveWeights: the config from
// its metadata, the parameters in g, the weights loaded.
func Open(g *G.ExprGraph, path string, opts ...Option) (*ViT, error) {
	st, meta, err := readSafetensors(path)
	if err != nil {
		return nil, err
	}
	cfg, _, err := configFromMeta(path, meta)
	if err != nil {
		return nil, err
	}
	m, err := New(g, cfg, opts...)
	if err != nil {
		return nil, err
	}
	if err := m.loadState(st); err != nil {
		return nil, errors.Wrapf(err, "model: load %s", path)
	}
	return m, nil
}

// Describe summarises the model in one line.
func (m *ViT) Describe() string {
	return fmt.Sprintf("%v; %d parameters", m.Config, m.NumParams())
}
