package model

import (
	"encoding/json"
	"image"
	"math"
	"os"
	"testing"

	"github.com/vitgo/vit/model/preprocess"
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
	b, err := os.ReadFile("../testdata/published/model_outputs.json")
	if err != nil {
		t.Fatal(err)
	}
	var o publishedOutputs
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
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
