package model

import (
	"fmt"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestDDPFixtures: the weights that docs/pytorch/ddp_train.py wrote after
// two-process DistributedDataParallel training (testdata/ddp/make_fixtures.py)
// load with no option — the architecture from their metadata, one continued
// from this package's own checkpoint, one started in PyTorch with a conv
// stem and sin-cos positions — and give PyTorch's logits on the same inputs.
func TestDDPFixtures(t *testing.T) {
	io, err := ReadFile("../testdata/ddp/io.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, input, logits string }{
		{"continued", "input", "logits_continued"},
		{"scratch", "input_scratch", "logits_scratch"},
	} {
		t.Run(c.file, func(t *testing.T) {
			g := G.NewGraph()
			m, f, err := Open(g, "../testdata/ddp/"+c.file+".safetensors")
			if err != nil {
				t.Fatal(err)
			}
			want, err := parseConfig(io.Meta[c.file+"_vit_config"])
			if err != nil {
				t.Fatal(err)
			}
			if m.Config != want {
				t.Fatalf("config %+v, the script wrote %+v", m.Config, want)
			}
			if len(f.Meta[MetaClasses]) == 0 || len(f.Meta[MetaNormalization]) == 0 {
				t.Errorf("no class names or normalisation in the metadata: %v", f.Meta)
			}
			m.SetTraining(false)
			in := io.Tensors[c.input]
			x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(in.Shape...), G.WithValue(toF32(in)), G.WithName("x"))
			y, err := m.Forward(x)
			if err != nil {
				t.Fatal(err)
			}
			runGraph(t, g)
			d := maxAbsDiff(y.Value().Data().([]float32), io.Tensors[c.logits].Data)
			t.Logf("logits within %.2e of PyTorch's", d)
			if !(d <= 1e-4) {
				t.Errorf("logits differ from PyTorch's by %.3e, want ≤ 1e-4", d)
			}
			if fmt.Sprint(y.Shape()) != fmt.Sprint(tensor.Shape(io.Tensors[c.logits].Shape)) {
				t.Errorf("logits shape %v, PyTorch's %v", y.Shape(), io.Tensors[c.logits].Shape)
			}
		})
	}
}
