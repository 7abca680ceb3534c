package model

import (
	"image"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vitgo/vit/model/preprocess"
	"github.com/vitgo/vit/model/vittest"
	G "gorgonia.org/gorgonia"
)

// publishedOutputs is testdata/published/model_outputs.json: what PyTorch
// computes with the published-weights fixtures.
type publishedOutputs struct {
	Expect struct {
		HF map[string]struct {
			Top   []Class   `json:"top"`
			Probs []float64 `json:"probs"`
		} `json:"hf"`
		Identity map[string][]float64 `json:"identity"`
	} `json:"expect"`
}

func readPublishedOutputs(t *testing.T) publishedOutputs {
	t.Helper()
	var o publishedOutputs
	vittest.ReadJSON(t, "../testdata/published/model_outputs.json", &o)
	return o
}

func decodePhoto(t *testing.T, name string) image.Image {
	t.Helper()
	img, err := preprocess.DecodeFile("../testdata/photos/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestHFDirectory: a Hugging Face model directory needs nothing but its
// path: the architecture and class names from config.json, the
// preprocessing from preprocessor_config.json; its top-5 probabilities on
// real photos (PNG and JPEG, not square, larger than the input) are
// PyTorch's through the same preprocessing within 1e-3.
func TestHFDirectory(t *testing.T) {
	want := readPublishedOutputs(t).Expect.HF
	c := mustLoadClassifier(t, "../testdata/published/hf-vit/model.safetensors")
	cfg := Config{ImageSize: 32, PatchSize: 8, Channels: 3, Dim: 128, Depth: 1, Heads: 2, MLPDim: 256, NumClasses: 10, Eps: 1e-6}
	if c.Config() != cfg {
		t.Errorf("config %+v, expected %+v (from config.json)", c.Config(), cfg)
	}
	if c.Classes()[3] != "cat" {
		t.Errorf("classes %q, expected config.json's id2label", c.Classes())
	}
	if tr := c.Transform(); tr.Name != "hf" || !tr.ResizeExact || tr.Resize != 32 || tr.Filter != preprocess.Bilinear {
		t.Errorf("transform %v, expected preprocessor_config.json's", tr)
	}
	t.Logf("notes: %q", c.Notes())
	for photo, w := range want {
		p, err := c.Classify([]image.Image{decodePhoto(t, photo)})
		if err != nil {
			t.Fatal(err)
		}
		var worst float64
		for i, top := range w.Top {
			got := p[0].Top[i]
			if got.Index != top.Index || got.Label != top.Label {
				t.Errorf("%s: top %d is %d %q, PyTorch's is %d %q", photo, i+1, got.Index, got.Label, top.Index, top.Label)
			}
			worst = math.Max(worst, math.Abs(float64(got.Prob)-float64(top.Prob)))
		}
		t.Logf("%s: top-5 probabilities within %.1e of PyTorch's", photo, worst)
		if worst > 1e-3 {
			t.Errorf("%s: a top-5 probability differs from PyTorch's by %.2e, expected at most 1e-3", photo, worst)
		}
	}
}

// TestTimmTorchvisionFiles: timm- and torchvision-named files of the same
// weights, without metadata or config.json, give PyTorch's logits within
// 1e-4 on an image already of the input size (preprocessing: the identity,
// then the normalisation).
func TestTimmTorchvisionFiles(t *testing.T) {
	want := readPublishedOutputs(t).Expect.Identity
	img := decodePhoto(t, "chelsea-32.png")
	for _, c := range []struct {
		file, norm, transform string
	}{{"vit_timm.safetensors", "half", "timm"}, {"vit_torchvision.safetensors", "imagenet", "torchvision"}} {
		norm, err := preprocess.ParseNorm(c.norm)
		if err != nil {
			t.Fatal(err)
		}
		path := "../testdata/published/" + c.file
		if def := mustLoadClassifier(t, path); def.Transform().Name != c.transform || def.Config().Heads != 2 {
			t.Errorf("%s: transform %v, heads %d; expected %s's and 128/64 heads", c.file, def.Transform(), def.Config().Heads, c.transform)
		}
		cl := mustLoadClassifier(t, path, WithPreprocess(preprocess.Spec{Kind: "hf", Norm: &norm}))
		p, err := cl.Classify([]image.Image{img})
		if err != nil {
			t.Fatal(err)
		}
		var worst float64
		for i, v := range want[c.norm] {
			worst = math.Max(worst, math.Abs(float64(p[0].Logits[i])-v))
		}
		t.Logf("%s: logits within %.1e of PyTorch's", c.file, worst)
		if worst > 1e-4 {
			t.Errorf("%s: logits differ from PyTorch's by %.2e, expected at most 1e-4", c.file, worst)
		}
	}
}

// TestExport: our checkpoint exported in timm's, torchvision's and Hugging
// Face's names gives the committed files that PyTorch loaded strictly
// (testdata/published/export), whose logits are ours within 1e-5; each
// export reads back into the same model.
func TestExport(t *testing.T) {
	m, _, err := Open(G.NewGraph(), "../testdata/classifier/fashion-tiny.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	io, err := ReadFile("../testdata/published/export_io.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	logits := func(m *ViT) []float32 {
		t.Helper()
		x, err := m.NewInput(4, "x")
		if err != nil {
			t.Fatal(err)
		}
		in := x.Value().Data().([]float32)
		for i, v := range io.Tensors["input"].Data {
			in[i] = float32(v)
		}
		m.SetTraining(false)
		out, err := m.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		runGraph(t, m.Graph())
		return out.Value().Data().([]float32)
	}
	ours := logits(m)
	var worst float64
	for i, v := range io.Tensors["logits"].Data {
		worst = math.Max(worst, math.Abs(float64(ours[i])-v))
	}
	t.Logf("logits within %.1e of torchvision's on the exported weights", worst)
	if worst > 1e-5 {
		t.Errorf("logits differ from torchvision's by %.2e, expected at most 1e-5", worst)
	}
	dir := t.TempDir()
	classes := []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
	orig := mustLoadClassifier(t, "../testdata/classifier/fashion-tiny.safetensors").Transform()
	for _, c := range []struct{ naming, file string }{
		{NamingTimm, "timm.safetensors"}, {NamingTorchvision, "torchvision.safetensors"}, {NamingHuggingFace, "hf"},
	} {
		if err := ExportFile("../testdata/classifier/fashion-tiny.safetensors", filepath.Join(dir, c.file), c.naming, 0); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		want, err := ReadFile(filepath.Join("../testdata/published/export", c.file))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Tensors, want.Tensors) {
			t.Errorf("%s: the export differs from the committed file PyTorch loaded", c.naming)
		}
		if c.naming == NamingHuggingFace {
			for _, name := range []string{hfConfigName, hfProcessorName} {
				a, _ := os.ReadFile(filepath.Join(dir, c.file, name))
				b, _ := os.ReadFile(filepath.Join("../testdata/published/export", c.file, name))
				if len(a) == 0 || string(a) != string(b) {
					t.Errorf("%s: %s differs from the committed one", c.naming, name)
				}
			}
		}
		back, f, err := Open(G.NewGraph(), filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(logits(back), ours) {
			t.Errorf("%s: the export read back gives other logits", c.naming)
		}
		if names, _, err := f.Classes(10); err != nil || !reflect.DeepEqual(names, classes) {
			t.Errorf("%s: classes %q (%v), expected the checkpoint's", c.naming, names, err)
		}
		if tr := mustLoadClassifier(t, filepath.Join(dir, c.file)).Transform(); !reflect.DeepEqual(tr, orig) {
			t.Errorf("%s: read back with preprocessing %v, the checkpoint's is %v", c.naming, tr, orig)
		}
	}
	// What a naming cannot hold is refused.
	mean, err := New(G.NewGraph(), Config{ImageSize: 8, PatchSize: 4, Channels: 3, Dim: 8, Depth: 1, Heads: 2, MLPDim: 8, NumClasses: 2, Pool: PoolMean})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{NamingTorchvision, NamingHuggingFace} {
		if err := mean.Export(filepath.Join(dir, "mean-"+n), n, ExportInfo{}); err == nil || !strings.Contains(err.Error(), "mean pooling") {
			t.Errorf("%s export of a mean-pooling model: %v, expected a refusal", n, err)
		}
	}
	if err := m.Export(filepath.Join(dir, "x"), "onnx", ExportInfo{}); err == nil || !strings.Contains(err.Error(), `"onnx"`) {
		t.Errorf("unknown naming: %v", err)
	}
}

// TestClassNamesFallbacks: 1000 classes without names get ImageNet's;
// config.json's id2label names the classes of a Hugging Face directory.
func TestClassNamesFallbacks(t *testing.T) {
	f := &File{Path: "w.safetensors", Meta: map[string]string{}}
	names, note, err := f.Classes(1000)
	if err != nil || len(names) != 1000 || names[0] != "tench" || names[281] != "tabby" || !strings.Contains(note, "ImageNet") {
		t.Errorf("1000 classes: %q… (%q, %v), expected the ImageNet-1k names", names[:3], note, err)
	}
	names, _, _ = f.Classes(3)
	if strings.Join(names, ",") != "0,1,2" {
		t.Errorf("3 classes: %q, expected numbers", names)
	}
	hf, err := ReadFile("../testdata/published/hf-vit")
	if err != nil {
		t.Fatal(err)
	}
	if names, note, err := hf.Classes(10); err != nil || names[9] != "truck" || !strings.Contains(note, "id2label") {
		t.Errorf("Hugging Face directory: %q (%q, %v), expected id2label's names", names, note, err)
	}
}
