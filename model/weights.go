package model

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"
)

// stateDict returns the live parameters as float64 tensors under timm's names.
func (m *ViT) stateDict() (names []string, st map[string]Tensor) {
	st = make(map[string]Tensor, len(m.params))
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
		st[p.Name] = Tensor{Shape: p.Node.Shape().Clone(), Data: data}
	}
	return names, st
}

// SaveWeights writes the parameters to a safetensors file under timm's
// names, in the model's dtype, with the config in the metadata so that Open
// can rebuild the model from the file alone. The file is written
// atomically: a failed save leaves any existing file untouched.
func (m *ViT) SaveWeights(path string) error {
	return m.SaveCheckpoint(path, nil, nil)
}

// SaveCheckpoint is SaveWeights with extra tensors, whose names must start
// with ExtraPrefix, and extra metadata entries: one file that holds a
// training run's whole state and still loads as plain weights.
func (m *ViT) SaveCheckpoint(path string, tensors map[string]Tensor, extra map[string]string) error {
	names, st := m.stateDict()
	extraNames := make([]string, 0, len(tensors))
	for k := range tensors {
		if !strings.HasPrefix(k, ExtraPrefix) {
			return errors.Errorf("model: extra tensor %q must be named %s…", k, ExtraPrefix)
		}
		extraNames = append(extraNames, k)
		st[k] = tensors[k]
	}
	sort.Strings(extraNames)
	names = append(names, extraNames...)
	meta := map[string]string{MetaFormat: "pt", MetaConfig: m.Config.marshal()}
	for k, v := range extra {
		if k == MetaFormat || k == MetaConfig {
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
	f, err := ReadFile(path)
	if err != nil {
		return err
	}
	return errors.Wrapf(m.LoadTensors(f.Tensors), "model: load %s", path)
}

// LoadTensors is LoadWeights on tensors already read. Tensors named
// ExtraPrefix… are ignored.
func (m *ViT) LoadTensors(all map[string]Tensor) error {
	st, err := m.timmTensors(all)
	if err != nil {
		return err
	}
	return m.load(st, nil)
}

// LoadPretrained loads weights to fine-tune from, as LoadTensors does, but
// the classifier head is left as New initialised it (a new head for the new
// classes) when newHead is set, when its class count differs from the
// model's, or when the weights have none. The positional embedding is
// resized to the model's grid as LoadTensors resizes it. It returns what
// it did not load, for the run to say.
func (m *ViT) LoadPretrained(all map[string]Tensor, newHead bool) (notes []string, err error) {
	st, err := m.timmTensors(all)
	if err != nil {
		return nil, err
	}
	skip := map[string]bool{}
	w, hasHead := st["head.weight"]
	switch {
	case !hasHead:
		notes = append(notes, "the weights have no classifier head: a new one is initialised")
	case len(w.Shape) == 2 && w.Shape[0] != m.Config.NumClasses:
		notes = append(notes, fmt.Sprintf("the weights' head has %d classes, the model %d: a new head is initialised", w.Shape[0], m.Config.NumClasses))
	case newHead:
		notes = append(notes, "the weights' classes are not the data's: a new head is initialised")
	default:
		return nil, m.load(st, nil)
	}
	for _, n := range []string{"head.weight", "head.bias"} {
		skip[n] = true
		delete(st, n)
	}
	return notes, m.load(st, skip)
}

// timmTensors renames tensors to timm's names (ExtraPrefix… dropped) and
// resizes a positional embedding made for another grid.
func (m *ViT) timmTensors(all map[string]Tensor) (map[string]Tensor, error) {
	in := make(map[string]Tensor, len(all))
	for k, v := range all {
		if !strings.HasPrefix(k, ExtraPrefix) {
			in[k] = v
		}
	}
	st, _, err := toTimmNames(in)
	if err != nil {
		return nil, err
	}
	if pe, ok := st["pos_embed"]; ok && len(pe.Shape) == 3 && pe.Shape[1] != m.Config.Tokens() && pe.Shape[2] == m.Config.Dim {
		old, err := gridOf(pe.Shape[1] - 1)
		if err != nil {
			return nil, errors.Wrapf(err, "pos_embed %v cannot be resized: its %d patch tokens are not a square grid", pe.Shape, pe.Shape[1]-1)
		}
		n := m.Config.Grid()
		if st["pos_embed"], err = resizePosEmbed(pe, 1, old, old, n, n); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// load copies timm-named tensors into every parameter but those in skip,
// after checking that every name and shape is as the model's.
func (m *ViT) load(st map[string]Tensor, skip map[string]bool) error {
	want := make(map[string][]int, len(m.params))
	for _, p := range m.params {
		if !skip[p.Name] {
			want[p.Name] = p.Node.Shape().Clone()
		}
	}
	if err := checkTensors(want, st); err != nil {
		return err
	}
	for _, p := range m.params {
		if skip[p.Name] {
			continue
		}
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

// Describe summarises the model in one line.
func (m *ViT) Describe() string {
	return fmt.Sprintf("%v; %d parameters", m.Config, m.NumParams())
}
