package model

import (
	"path/filepath"
	"slices"
	"sort"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// stemCases are the models of testdata/parity/make_stem.py.
var stemCases = map[string]Config{
	"c1": {ImageSize: 16, PatchSize: 4, Channels: 1, Dim: 16, Depth: 2, Heads: 2, MLPDim: 32, NumClasses: 5, Stem: StemConv},
	"c3": {ImageSize: 16, PatchSize: 8, Channels: 3, Dim: 16, Depth: 1, Heads: 4, MLPDim: 24, NumClasses: 7, Stem: StemConv},
}

// TestConvStemParity: torchvision's VisionTransformer with a conv stem
// (LayerNorm over channels, GELU) and the Go model on its weights give the
// same logits and features; the file's config is read from its tensors;
// exported in torchvision's names the weights have exactly the names and
// shapes PyTorch wrote.
func TestConvStemParity(t *testing.T) {
	io := readFixture(t, "stem_io.safetensors")
	for key, cfg := range stemCases {
		t.Run(key, func(t *testing.T) {
			path := "../testdata/parity/stem_" + key + ".safetensors"
			f, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f.Heads = cfg.Heads
			got, err := f.Config()
			if err != nil {
				t.Fatal(err)
			}
			want := cfg
			want.Eps = 1e-6 // what plain torchvision weights are read with
			if got != want {
				t.Fatalf("config from the tensors\n%#v\nwant\n%#v", got, want)
			}
			g := G.NewGraph()
			m, err := f.NewModel(g)
			if err != nil {
				t.Fatal(err)
			}
			m.SetTraining(false)
			in := io["input_"+key]
			x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(in.Shape...), G.WithValue(toF32(in)), G.WithName("x"))
			out, err := m.ForwardAll(x)
			if err != nil {
				t.Fatal(err)
			}
			runGraph(t, g)
			for name, d := range map[string]float64{
				"logits":   maxAbsDiff(out.Logits.Value().Data().([]float32), io["logits_"+key].Data),
				"features": maxAbsDiff(out.Features.Value().Data().([]float32), io["features_"+key].Data),
			} {
				t.Logf("%s max abs diff %.2e", name, d)
				if !(d <= 1e-4) {
					t.Errorf("%s: max abs diff %.3e from PyTorch, want ≤ 1e-4", name, d)
				}
			}

			out2 := filepath.Join(t.TempDir(), "tv.safetensors")
			if err := m.Export(out2, NamingTorchvision, ExportInfo{}); err != nil {
				t.Fatal(err)
			}
			back, err := ReadFile(out2)
			if err != nil {
				t.Fatal(err)
			}
			var wantNames, gotNames []string
			for n, v := range f.Tensors {
				wantNames = append(wantNames, n)
				if b, ok := back.Tensors[n]; !ok || !slices.Equal(b.Shape, v.Shape) || !slices.Equal(b.Data, v.Data) {
					t.Errorf("exported %q differs from PyTorch's", n)
				}
			}
			for n := range back.Tensors {
				gotNames = append(gotNames, n)
			}
			sort.Strings(wantNames)
			sort.Strings(gotNames)
			if !slices.Equal(gotNames, wantNames) {
				t.Errorf("exported names\n%v\nPyTorch's\n%v", gotNames, wantNames)
			}
		})
	}
}

// TestConvStemConfig: widths, parameter count, the refused geometries.
func TestConvStemConfig(t *testing.T) {
	c := Config{ImageSize: 28, PatchSize: 4, Channels: 1, Dim: 64, Depth: 6, Heads: 4, MLPDim: 128, NumClasses: 10, Stem: StemConv}
	if w := c.StemWidths(); !slices.Equal(w, []int{32, 64}) {
		t.Errorf("widths %v, want [32 64]", w)
	}
	m, err := New(G.NewGraph(), c)
	if err != nil {
		t.Fatal(err)
	}
	if m.NumParams() != c.NumParams() {
		t.Errorf("model has %d parameters, Config.NumParams says %d", m.NumParams(), c.NumParams())
	}
	for _, bad := range []Config{
		func() Config { b := c; b.PatchSize = 7; return b }(),
		func() Config { b := c; b.Stem = "resnet"; return b }(),
		func() Config { b := c; b.ImageSize, b.PatchSize, b.Dim, b.Heads = 32, 32, 8, 1; return b }(),
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: expected an error", bad)
		}
	}
}
