package model

import (
	"fmt"
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// parityConfig is the torchvision model of testdata/parity/make_fixtures.py.
var parityConfig = Config{ImageSize: 16, PatchSize: 4, Channels: 3, Dim: 32, Depth: 2, Heads: 4, MLPDim: 64, NumClasses: 5}

// runGraph runs g once with a tape machine, closed when the test ends.
func runGraph(t *testing.T, g *G.ExprGraph) {
	t.Helper()
	vm := G.NewTapeMachine(g)
	t.Cleanup(func() { vm.Close() })
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
}

func readFixture(t *testing.T, name string) map[string]Tensor {
	t.Helper()
	st, _, err := readSafetensors("../testdata/parity/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func toF32(s Tensor) *tensor.Dense {
	f := make([]float32, len(s.Data))
	for i, v := range s.Data {
		f[i] = float32(v)
	}
	return tensor.New(tensor.WithShape(s.Shape...), tensor.WithBacking(f))
}

func maxAbsDiff(got []float32, want []float64) float64 {
	var m float64
	for i, w := range want {
		d := math.Abs(float64(got[i]) - w)
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = math.Max(m, d)
	}
	return m
}

// runParity loads a weight file into a Go model, runs the fixture batch and
// returns the max abs differences of logits, features and attention.
func runParity(t *testing.T, cfg Config, weights string) map[string]float64 {
	t.Helper()
	io := readFixture(t, "io.safetensors")
	g := G.NewGraph()
	m, err := New(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadWeights("../testdata/parity/" + weights); err != nil {
		t.Fatal(err)
	}
	m.SetTraining(false)
	in := io["input"]
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(in.Shape...), G.WithValue(toF32(in)), G.WithName("x"))
	out, err := m.ForwardAll(x)
	if err != nil {
		t.Fatal(err)
	}
	runGraph(t, g)
	diffs := map[string]float64{
		"logits":   maxAbsDiff(out.Logits.Value().Data().([]float32), io["logits"].Data),
		"features": maxAbsDiff(out.Features.Value().Data().([]float32), io["features"].Data),
	}
	for i, a := range out.Attention {
		k := fmt.Sprintf("attn.%d", i)
		diffs[k] = maxAbsDiff(a.Value().Data().([]float32), io[k].Data)
	}
	return diffs
}

// TestParityPyTorch: the Go model on PyTorch's weights gives PyTorch's
// logits, features and attention probabilities, from each naming.
func TestParityPyTorch(t *testing.T) {
	for _, file := range []string{"vit_torchvision.safetensors", "vit_timm.safetensors", "vit_hf.safetensors"} {
		t.Run(file, func(t *testing.T) {
			for k, d := range runParity(t, parityConfig, file) {
				t.Logf("%s max abs diff %.2e", k, d)
				if !(d <= 1e-4) {
					t.Errorf("%s: max abs diff %.3e from PyTorch, want ≤ 1e-4", k, d)
				}
			}
		})
	}
}

// TestLoadResizesPosEmbed: loading 4×4-grid weights into a 24×24-pixel
// model (6×6 grid) resamples the positional embedding as PyTorch's bicubic
// F.interpolate does.
func TestLoadResizesPosEmbed(t *testing.T) {
	cfg := parityConfig
	cfg.ImageSize = 24
	g := G.NewGraph()
	m, err := New(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadWeights("../testdata/parity/vit_timm.safetensors"); err != nil {
		t.Fatal(err)
	}
	want := readFixture(t, "pos_resize.safetensors")["dst_6x6"]
	if d := maxAbsDiff(m.PosEmbed.Value().Data().([]float32), want.Data); d > 1e-5 {
		t.Fatalf("resized pos_embed differs from PyTorch by %.3e", d)
	}
}
