package model

import (
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

// TestInitTorchvision: with Config.Init "torchvision" every parameter
// follows torchvision's VisionTransformer rules (checked by its spread and
// bounds), the same seed gives the same weights, and a shared model keeps
// the weights it shares.
func TestInitTorchvision(t *testing.T) {
	cfg := Config{ImageSize: 28, PatchSize: 4, Channels: 1, Dim: 64, Depth: 2, Heads: 4, MLPDim: 128, NumClasses: 10, Init: InitTorchvision}
	m, err := New(G.NewGraph(), cfg, WithSeed(3))
	if err != nil {
		t.Fatal(err)
	}
	stats := func(v []float32) (mean, std, maxAbs float64) {
		for _, x := range v {
			mean += float64(x)
			maxAbs = math.Max(maxAbs, math.Abs(float64(x)))
		}
		mean /= float64(len(v))
		for _, x := range v {
			std += (float64(x) - mean) * (float64(x) - mean)
		}
		return mean, math.Sqrt(std / float64(len(v))), maxAbs
	}
	d, h := 64.0, 128.0
	for _, p := range m.Params() {
		v := p.Node.Value().Data().([]float32)
		_, std, maxAbs := stats(v)
		near := func(want, tol float64) {
			if math.Abs(std-want) > tol*want {
				t.Errorf("%s: std %.4g, want %.4g", p.Name, std, want)
			}
		}
		switch {
		case p.Name == "cls_token", strings.HasPrefix(p.Name, "head."), strings.HasSuffix(p.Name, "qkv.bias"),
			strings.HasSuffix(p.Name, "proj.bias"), strings.HasSuffix(p.Name, "norm1.bias"), strings.HasSuffix(p.Name, "norm2.bias"), p.Name == "norm.bias":
			if maxAbs != 0 {
				t.Errorf("%s: max |v| %g, want all zero", p.Name, maxAbs)
			}
		case strings.HasSuffix(p.Name, "norm1.weight"), strings.HasSuffix(p.Name, "norm2.weight"), p.Name == "norm.weight":
			if std != 0 || v[0] != 1 {
				t.Errorf("%s: want all one", p.Name)
			}
		case p.Name == "pos_embed":
			near(0.02, 0.1)
		case p.Name == "patch_embed.proj.weight":
			near(0.25, 0.15)
		case strings.HasSuffix(p.Name, "qkv.weight"):
			b := math.Sqrt(6 / (4 * d))
			near(b/math.Sqrt(3), 0.05)
			if maxAbs > b {
				t.Errorf("%s: max |v| %g beyond the Xavier bound %g", p.Name, maxAbs, b)
			}
		case strings.HasSuffix(p.Name, "attn.proj.weight"):
			near(1/math.Sqrt(d)/math.Sqrt(3), 0.05)
		case strings.HasSuffix(p.Name, "fc1.weight"), strings.HasSuffix(p.Name, "fc2.weight"):
			near(math.Sqrt(6/(d+h))/math.Sqrt(3), 0.05)
		case strings.HasSuffix(p.Name, "fc1.bias"), strings.HasSuffix(p.Name, "fc2.bias"):
			if maxAbs == 0 || maxAbs > 1e-5 {
				t.Errorf("%s: max |v| %g, want N(0, 1e-6²)", p.Name, maxAbs)
			}
		default:
			t.Errorf("%s: not covered by the test", p.Name)
		}
	}
	again, err := New(G.NewGraph(), cfg, WithSeed(3))
	if err != nil {
		t.Fatal(err)
	}
	shared, err := New(G.NewGraph(), cfg, WithSeed(9), SharingWeights(m))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Params() {
		a := p.Node.Value().Data().([]float32)
		b := again.Params()[i].Node.Value().Data().([]float32)
		c := shared.Params()[i].Node.Value().Data().([]float32)
		for j := range a {
			if a[j] != b[j] || a[j] != c[j] {
				t.Fatalf("%s: the same seed or a shared model gave different weights", p.Name)
			}
		}
	}
	if err := (Config{ImageSize: 8, PatchSize: 4, Channels: 1, Dim: 8, Depth: 1, Heads: 2, MLPDim: 8, NumClasses: 3, Init: "xavier"}).Validate(); err == nil ||
		!strings.Contains(err.Error(), `Config.Init must be "timm" or "torchvision", got "xavier"`) {
		t.Errorf("unknown Init: err = %v", err)
	}
}
