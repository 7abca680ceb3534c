package model

import (
	"errors"
	"io/fs"
	"maps"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/gradcheck"
	"github.com/vitgo/vit/layers/ops"
)

// Parameter counts of the paper's models with 1000 classes, as timm and
// big_vision report them.
func TestPresetParamCounts(t *testing.T) {
	want := map[string]int{
		"Ti/16": 5_717_416,
		"S/16":  22_050_664,
		"B/16":  86_567_656,
		"L/16":  304_326_632,
		"H/14":  632_045_800,
	}
	for name, n := range want {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.NumParams(); got != n {
			t.Errorf("%s: %d parameters, want %d", name, got, n)
		}
	}
	// The analytic count equals the built model's, for a real preset and
	// for every option that changes the parameter set.
	ti, _ := Preset("vit-ti16")
	mean := parityConfig
	mean.Pool, mean.NoQKVBias = "mean", true
	for _, c := range []Config{ti, parityConfig, mean} {
		m, err := New(G.NewGraph(), c)
		if err != nil {
			t.Fatal(err)
		}
		if m.NumParams() != c.NumParams() {
			t.Errorf("%v: built model has %d parameters, config says %d", c, m.NumParams(), c.NumParams())
		}
	}
}

func TestPresetNames(t *testing.T) {
	for _, name := range []string{"Ti/16", "ti/16", "ViT-Ti/16", "vit_ti16", "vit-ti16", "TI16"} {
		c, err := Preset(name)
		if err != nil || c.Dim != 192 || c.PatchSize != 16 {
			t.Errorf("Preset(%q) = %+v, %v; want ViT-Ti/16", name, c, err)
		}
	}
	for _, name := range Presets() {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	if _, err := Preset("Ti/15"); err == nil || !strings.Contains(err.Error(), "Ti/16") {
		t.Errorf("unknown preset: got %v, want an error listing the known ones", err)
	}
}

func TestValidate(t *testing.T) {
	bad := []struct {
		edit  func(*Config)
		field string
	}{
		{func(c *Config) { c.ImageSize = 0 }, "ImageSize"},
		{func(c *Config) { c.PatchSize = -1 }, "PatchSize"},
		{func(c *Config) { c.Channels = 0 }, "Channels"},
		{func(c *Config) { c.Dim = 0 }, "Dim"},
		{func(c *Config) { c.Depth = 0 }, "Depth"},
		{func(c *Config) { c.Heads = 0 }, "Heads"},
		{func(c *Config) { c.MLPDim = 0 }, "MLPDim"},
		{func(c *Config) { c.NumClasses = 0 }, "NumClasses"},
		{func(c *Config) { c.ImageSize = 18 }, "ImageSize 18 is not divisible by Config.PatchSize 4"},
		{func(c *Config) { c.Heads = 5 }, "Dim 32 is not divisible by Config.Heads 5"},
		{func(c *Config) { c.Dropout = 1 }, "Dropout"},
		{func(c *Config) { c.DropPath = -0.1 }, "DropPath"},
		{func(c *Config) { c.Pool = "max" }, "Pool"},
		{func(c *Config) { c.GELU = "relu" }, "GELU"},
	}
	for _, b := range bad {
		c := parityConfig
		b.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), b.field) {
			t.Errorf("%+v: got %v, want an error naming %s", c, err, b.field)
		}
		if _, err := New(G.NewGraph(), c); err == nil {
			t.Errorf("New accepted %+v", c)
		}
	}
	if err := parityConfig.Validate(); err != nil {
		t.Fatal(err)
	}
}

// tinyConfig is small enough for finite differences over the whole model.
var tinyConfig = Config{ImageSize: 8, PatchSize: 4, Channels: 2, Dim: 8, Depth: 2, Heads: 2, MLPDim: 12, NumClasses: 3}

// TestModelGradient checks every learnable's gradient of a cross-entropy
// loss by finite differences in float64, for the standard model and for
// one with every option changed (mean pooling, tanh GELU, no qkv bias,
// dropout, attention dropout and drop path with frozen masks).
func TestModelGradient(t *testing.T) {
	variant := tinyConfig
	variant.Pool, variant.GELU, variant.NoQKVBias = "mean", "tanh", true
	variant.Dropout, variant.AttnDropout, variant.DropPath = 0.1, 0.1, 0.2
	for _, cfg := range []Config{tinyConfig, variant} {
		t.Run(cfg.String(), func(t *testing.T) {
			g := G.NewGraph()
			m, err := New(g, cfg, WithDtype(tensor.Float64), WithSeed(3))
			if err != nil {
				t.Fatal(err)
			}
			// Spread the weights out so that no gradient is tiny by accident.
			rng := rand.New(rand.NewSource(4))
			for _, p := range m.Params() {
				d := p.Node.Value().Data().([]float64)
				for i := range d {
					d[i] += rng.NormFloat64() * 0.3
				}
			}
			x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(3, cfg.Channels, cfg.ImageSize, cfg.ImageSize),
				G.WithValue(gradcheck.Random(rng, 1, 3, cfg.Channels, cfg.ImageSize, cfg.ImageSize)), G.WithName("x"))
			y := tensor.New(tensor.WithShape(3, 3), tensor.WithBacking([]float64{1, 0, 0, 0, 0.1, 0.9, 0, 1, 0}))
			yn := G.NewTensor(g, tensor.Float64, 2, G.WithShape(3, 3), G.WithValue(y), G.WithName("y"))
			logits, err := m.Forward(x)
			if err != nil {
				t.Fatal(err)
			}
			loss, err := ops.CrossEntropy(logits, yn)
			if err != nil {
				t.Fatal(err)
			}
			res, err := gradcheck.CheckGraph(loss, m.Learnables(), gradcheck.Options{MaxElements: 24, Prepare: func() { m.noise.Freeze(true) }}, nil)
			if err != nil {
				t.Fatal(err)
			}
			gradcheck.Expect(t, res, 1e-5)
			if len(res) != len(m.Params()) {
				t.Fatalf("checked %d learnables of %d", len(res), len(m.Params()))
			}
		})
	}
}

func TestSeedDeterminism(t *testing.T) {
	vals := func(seed int64) []float32 {
		m, err := New(G.NewGraph(), parityConfig, WithSeed(seed))
		if err != nil {
			t.Fatal(err)
		}
		var all []float32
		for _, n := range m.Learnables() {
			all = append(all, n.Value().Data().([]float32)...)
		}
		return all
	}
	a, b, c := vals(7), vals(7), vals(8)
	same := true
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 7 gave different weights at %d", i)
		}
		same = same && a[i] == c[i]
	}
	if same {
		t.Fatal("seeds 7 and 8 gave the same weights")
	}
}

// TestInit checks timm's initialisation: weights truncated normal std 0.02,
// zero biases, unit LayerNorm scales.
func TestInit(t *testing.T) {
	m, err := New(G.NewGraph(), parityConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		d := p.Node.Value().Data().([]float32)
		switch {
		case strings.HasSuffix(p.Name, "norm1.weight"), strings.HasSuffix(p.Name, "norm2.weight"), p.Name == "norm.weight":
			for _, v := range d {
				if v != 1 {
					t.Fatalf("%s: %v, want 1", p.Name, v)
				}
			}
		case strings.HasSuffix(p.Name, ".bias"):
			for _, v := range d {
				if v != 0 {
					t.Fatalf("%s: %v, want 0", p.Name, v)
				}
			}
		case strings.HasSuffix(p.Name, ".weight"), p.Name == "pos_embed":
			var ss float64
			for _, v := range d {
				if v < -0.0455 || v > 0.0455 {
					t.Fatalf("%s: %v outside ±2σ", p.Name, v)
				}
				ss += float64(v) * float64(v)
			}
			if std := ss / float64(len(d)); std < 0.015*0.015 || std > 0.025*0.025 {
				t.Errorf("%s: variance %v, want about 0.02²", p.Name, std)
			}
		}
	}
}

func TestTwoModelsOneGraph(t *testing.T) {
	g := G.NewGraph()
	if _, err := New(g, parityConfig); err != nil {
		t.Fatal(err)
	}
	if _, err := New(g, parityConfig); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second model with the same prefix: got %v, want a name-clash error", err)
	}
	a, err := New(g, parityConfig, WithPrefix("a/"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(g, parityConfig, WithPrefix("b/"), WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	if a.Learnables()[0].Name() != "a/cls_token" {
		t.Errorf("prefixed name %q", a.Learnables()[0].Name())
	}
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(2, 3, 16, 16), G.WithInit(G.Gaussian(0, 1)), G.WithName("x"))
	la, err := a.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	runGraph(t, g)
	if la.Value().Data().([]float32)[0] == lb.Value().Data().([]float32)[0] {
		t.Error("two differently seeded models gave the same logits")
	}
}

func TestBadInput(t *testing.T) {
	g := G.NewGraph()
	m, err := New(g, parityConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dt    tensor.Dtype
		shape []int
		want  string
	}{
		{tensor.Float32, []int{2, 1, 16, 16}, "input shape (2, 1, 16, 16), want (B, 3, 16, 16)"},
		{tensor.Float32, []int{2, 3, 32, 32}, "input shape (2, 3, 32, 32), want (B, 3, 16, 16)"},
		{tensor.Float32, []int{3, 16, 16}, "want (B, 3, 16, 16)"},
		{tensor.Float64, []int{2, 3, 16, 16}, "input dtype float64, want float32"},
	} {
		x := G.NewTensor(g, c.dt, len(c.shape), G.WithShape(c.shape...))
		_, err := m.Forward(x)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("input %v %v: got %v, want error containing %q", c.dt, c.shape, err, c.want)
		}
	}
	x := G.NewTensor(G.NewGraph(), tensor.Float32, 4, G.WithShape(2, 3, 16, 16))
	if _, err := m.Forward(x); err == nil {
		t.Error("input from another graph accepted")
	}
}

func TestSaveLoadOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	cfg := parityConfig
	cfg.Pool, cfg.GELU = "mean", "tanh"
	src, err := New(G.NewGraph(), cfg, WithSeed(11))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.SaveWeights(path); err != nil {
		t.Fatal(err)
	}
	dst, err := New(G.NewGraph(), cfg, WithSeed(12))
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.LoadWeights(path); err != nil {
		t.Fatal(err)
	}
	opened, f, err := Open(G.NewGraph(), path)
	if err != nil {
		t.Fatal(err)
	}
	if opened.Config != cfg {
		t.Fatalf("Open rebuilt config %+v, want %+v", opened.Config, cfg)
	}
	for i, p := range src.Learnables() {
		want := p.Value().Data().([]float32)
		for _, m := range []*ViT{dst, opened} {
			got := m.Learnables()[i].Value().Data().([]float32)
			for j := range want {
				if got[j] != want[j] {
					t.Fatalf("%s[%d]: %v after load, want %v", p.Name(), j, got[j], want[j])
				}
			}
		}
	}
	if c, err := f.Config(); err != nil || c != cfg || f.Path != path {
		t.Fatalf("File.Config = %+v, %v (path %q)", c, err, f.Path)
	}
	// A plain timm file of width 32 does not tell its heads: Open says
	// which flag gives them.
	_, _, err = Open(G.NewGraph(), "../testdata/parity/vit_timm.safetensors")
	if err == nil || !strings.Contains(err.Error(), "-heads") || !errors.Is(err, ErrNoConfig) {
		t.Errorf("Open on plain weights of width 32: %v, expected ErrNoConfig naming -heads", err)
	}
	// A missing file is fs.ErrNotExist through Open and LoadClassifier.
	missing := filepath.Join(t.TempDir(), "absent.safetensors")
	if _, _, err := Open(G.NewGraph(), missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open on a missing file: %v is not fs.ErrNotExist", err)
	}
	if _, err := LoadClassifier(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadClassifier on a missing file: %v is not fs.ErrNotExist", err)
	}
}

// TestLoadMismatch: one error lists every missing, unexpected and
// mis-shaped tensor, and nothing is loaded.
func TestLoadMismatch(t *testing.T) {
	cfg := parityConfig
	cfg.Depth, cfg.NumClasses = 3, 7
	m, err := New(G.NewGraph(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := append([]float32(nil), m.PosEmbed.Value().Data().([]float32)...)
	err = m.LoadWeights("../testdata/parity/vit_torchvision.safetensors")
	if err == nil {
		t.Fatal("loaded a depth-2, 5-class file into a depth-3, 7-class model")
	}
	for _, want := range []string{"blocks.2.attn.qkv.weight", "blocks.2.mlp.fc2.bias", "head.weight", "expected [7 32], found [5 32]", "vit_torchvision.safetensors"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	for i, v := range m.PosEmbed.Value().Data().([]float32) {
		if v != before[i] {
			t.Fatal("a failed load changed the weights")
		}
	}
	// Unexpected tensors are named too.
	extra := filepath.Join(t.TempDir(), "extra.safetensors")
	st, _, err := readSafetensors("../testdata/parity/vit_timm.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	st["blocks.0.attn.rel_pos"] = Tensor{Shape: []int{2}, Data: []float64{1, 2}}
	names := make([]string, 0, len(st))
	for k := range st {
		names = append(names, k)
	}
	if err := writeSafetensors(extra, names, st, "F32", nil); err != nil {
		t.Fatal(err)
	}
	m2, _ := New(G.NewGraph(), parityConfig)
	if err := m2.LoadWeights(extra); err == nil || !strings.Contains(err.Error(), "blocks.0.attn.rel_pos") {
		t.Errorf("unexpected tensor: got %v", err)
	}
	if err := m2.LoadWeights(filepath.Join(t.TempDir(), "none.safetensors")); err == nil || !strings.Contains(err.Error(), "none.safetensors") {
		t.Errorf("missing file: got %v", err)
	}
}

// TestSharingWeights: a second graph built over the same tensors sees
// every change, and a mismatched config is refused.
func TestSharingWeights(t *testing.T) {
	a, err := New(G.NewGraph(), parityConfig, WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(G.NewGraph(), parityConfig, WithSeed(2), SharingWeights(a))
	if err != nil {
		t.Fatal(err)
	}
	a.Head.Weight.Value().Data().([]float32)[3] = 42
	if got := b.Head.Weight.Value().Data().([]float32)[3]; got != 42 {
		t.Fatalf("shared head weight reads %v, want 42", got)
	}
	other := parityConfig
	other.Depth = 1
	if _, err := New(G.NewGraph(), other, SharingWeights(a)); err == nil {
		t.Fatal("shared weights across different configs")
	}
}

// TestCheckpointExtras: extra tensors ride along in the file and are
// ignored by LoadWeights; names outside the reserved prefix are refused.
func TestCheckpointExtras(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	m, _ := New(G.NewGraph(), parityConfig)
	extra := map[string]Tensor{ExtraPrefix + "adam.m.head.bias": {Shape: []int{5}, Data: []float64{1, 2, 3, 4, 5}}}
	if err := m.SaveCheckpoint(path, extra, map[string]string{"epoch": "3"}); err != nil {
		t.Fatal(err)
	}
	st, meta, err := readSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta["epoch"] != "3" || st[ExtraPrefix+"adam.m.head.bias"].Data[4] != 5 {
		t.Fatalf("extras lost: meta %v", meta)
	}
	if _, _, err := Open(G.NewGraph(), path); err != nil {
		t.Fatalf("a checkpoint does not open as weights: %v", err)
	}
	if err := m.SaveCheckpoint(path, map[string]Tensor{"adam.m": {Shape: []int{1}, Data: []float64{1}}}, nil); err == nil {
		t.Fatal("extra tensor outside the reserved prefix accepted")
	}
	if err := m.SaveCheckpoint(path, nil, map[string]string{MetaConfig: "{}"}); err == nil {
		t.Fatal("reserved metadata key accepted")
	}
}

// TestCost checks the FLOP count of ViT-B/16 against a hand count
// (patch embedding 196·768·768 multiply-adds, 12 blocks of
// 197·(4·768² + 2·768·3072) + 2·197²·768, head 768·1000), which is the
// 17.6 G multiply-adds that timm lists for it.
func TestCost(t *testing.T) {
	c, _ := Preset("B/16")
	macs := 196.0*768*768 + 12*(197*(4*768*768+2*768*3072)+2*197*197*768) + 768*1000
	got := c.Cost(1)
	if got.ForwardFLOPs != 2*macs {
		t.Fatalf("B/16 forward %.4g FLOPs, want %.4g", got.ForwardFLOPs, 2*macs)
	}
	if g := got.ForwardFLOPs / 2 / 1e9; g < 17.4 || g > 17.7 {
		t.Errorf("B/16: %.2f G multiply-adds, timm reports 17.6", g)
	}
	if got.Params != 86_567_656 || got.TrainFLOPs != 3*got.ForwardFLOPs {
		t.Errorf("cost %+v", got)
	}
	if c.Cost(2).ActivationBytes != 2*got.ActivationBytes {
		t.Error("activation memory does not scale with the batch")
	}
}

// TestConfigFromShapes: plain weights in each naming give the architecture
// they were made with, heads from File.Heads; what they cannot tell is an
// error that names it.
func TestConfigFromShapes(t *testing.T) {
	for _, c := range []struct {
		file string
		eps  float64
	}{{"vit_timm.safetensors", 0}, {"vit_torchvision.safetensors", 0}, {"vit_hf.safetensors", 1e-12}} {
		f, err := ReadFile("../testdata/parity/" + c.file)
		if err != nil {
			t.Fatal(err)
		}
		f.Heads = 4
		cfg, err := f.Config()
		want := parityConfig
		if c.eps != 0 {
			want.Eps = c.eps // Hugging Face's ViTConfig default, with no config.json to say otherwise
		} else {
			want.Eps = 1e-6
		}
		if err != nil || cfg != want || f.Source() != FromShapes {
			t.Errorf("%s: %+v (from %s), %v; expected %+v from shapes", c.file, cfg, f.Source(), err, want)
		}
	}
	st := readFixture(t, "vit_timm.safetensors")
	for _, c := range []struct {
		drop, want string
	}{
		{"head.weight", "no classifier head"},
		{"patch_embed.proj.weight", `no tensor "patch_embed.proj.weight"`},
	} {
		in := maps.Clone(st)
		delete(in, c.drop)
		if _, err := configFromShapes(in, 4, 1e-6); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("without %s: %v, expected %q", c.drop, err, c.want)
		}
	}
	in := maps.Clone(st)
	in["pos_embed"] = Tensor{Shape: []int{1, 16, 32}, Data: make([]float64, 16*32)}
	if _, err := configFromShapes(in, 4, 1e-6); err == nil || !strings.Contains(err.Error(), "square grid") {
		t.Errorf("a positional embedding without a class token: %v", err)
	}
}
