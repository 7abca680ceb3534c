package model

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pkg/errors"

	"github.com/vitgo/vit/model/preprocess"
)

// Where File.Config found the architecture.
const (
	FromMetadata = "metadata"    // this package's "vit.config"
	FromHFConfig = "config.json" // a Hugging Face config.json beside the weights
	FromShapes   = "shapes"      // the tensors' names and shapes
)

// hfConfigName and hfProcessorName are the files a Hugging Face model
// directory holds beside model.safetensors.
const (
	hfConfigName    = "config.json"
	hfProcessorName = "preprocessor_config.json"
)

// hfConfig is the part of a Hugging Face ViTConfig (config.json) that
// describes the architecture and the classes.
type hfConfig struct {
	ModelType         string            `json:"model_type"`
	ImageSize         int               `json:"image_size"`
	PatchSize         int               `json:"patch_size"`
	NumChannels       int               `json:"num_channels"`
	HiddenSize        int               `json:"hidden_size"`
	NumHiddenLayers   int               `json:"num_hidden_layers"`
	NumAttentionHeads int               `json:"num_attention_heads"`
	IntermediateSize  int               `json:"intermediate_size"`
	LayerNormEps      float64           `json:"layer_norm_eps"`
	HiddenAct         string            `json:"hidden_act"`
	QKVBias           *bool             `json:"qkv_bias"`
	ID2Label          map[string]string `json:"id2label"`
}

// beside returns the path of a file named name in the weights' directory.
func (f *File) beside(name string) string { return filepath.Join(filepath.Dir(f.Path), name) }

// readHFConfig reads the config.json beside the weights: (nil, nil) when
// there is none.
func (f *File) readHFConfig() (*hfConfig, error) {
	b, err := os.ReadFile(f.beside(hfConfigName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errors.Wrap(err, "model")
	}
	var c hfConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, errors.Wrapf(err, "model: %s is not a JSON config", f.beside(hfConfigName))
	}
	if c.ModelType != "" && c.ModelType != "vit" {
		return nil, errors.Errorf("model: %s describes a %q model, expected \"vit\"", f.beside(hfConfigName), c.ModelType)
	}
	return &c, nil
}

// configFromHF turns a Hugging Face config into ours, its defaults
// (ViTConfig's) where a field is missing.
func configFromHF(c *hfConfig, classes int) (Config, error) {
	cfg := Config{
		ImageSize: orDefault(c.ImageSize, 224), PatchSize: orDefault(c.PatchSize, 16), Channels: orDefault(c.NumChannels, 3),
		Dim: orDefault(c.HiddenSize, 768), Depth: orDefault(c.NumHiddenLayers, 12), Heads: orDefault(c.NumAttentionHeads, 12),
		MLPDim: orDefault(c.IntermediateSize, 3072), NumClasses: classes, Eps: c.LayerNormEps,
		NoQKVBias: c.QKVBias != nil && !*c.QKVBias,
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-12 // ViTConfig's default
	}
	switch c.HiddenAct {
	case "", "gelu":
	case "gelu_new", "gelu_pytorch_tanh":
		cfg.GELU = GELUTanh
	default:
		return cfg, errors.Errorf("hidden_act %q, expected \"gelu\", \"gelu_new\" or \"gelu_pytorch_tanh\"", c.HiddenAct)
	}
	return cfg, nil
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// configFromShapes infers the architecture of timm-named tensors: patch
// size, channels and width from the patch projection, depth from the
// blocks, MLP width from the first block, classes from the head, image size
// from the positional embedding (a square grid plus the class token),
// pooling from fc_norm, the qkv bias from its presence. heads, if 0, is
// width/64, as in every standard ViT; eps is LayerNorm's epsilon.
func configFromShapes(st map[string]Tensor, heads int, eps float64) (Config, error) {
	shape := func(name string, dims int) ([]int, error) {
		t, ok := st[name]
		if !ok {
			return nil, errors.Errorf("no tensor %q", name)
		}
		if len(t.Shape) != dims {
			return nil, errors.Errorf("%q has shape %v, expected %d dimensions", name, t.Shape, dims)
		}
		return t.Shape, nil
	}
	var c Config
	pe, err := shape("patch_embed.proj.weight", 4)
	if err != nil {
		return c, err
	}
	if pe[2] != pe[3] {
		return c, errors.Errorf("the patch projection %v is not square", pe)
	}
	c.Dim, c.Channels, c.PatchSize = pe[0], pe[1], pe[2]
	if _, ok := st["patch_embed.stem.0.conv.weight"]; ok {
		// A conv stem: its convolutions halve the grid, widths D/2ⁿ⁻¹ … D.
		n := 0
		for n < 20 && st[fmt.Sprintf("patch_embed.stem.%d.conv.weight", n)].Shape != nil {
			n++
		}
		c.Stem, c.PatchSize = StemConv, 1<<n
		s0, err := shape("patch_embed.stem.0.conv.weight", 4)
		if err != nil {
			return c, err
		}
		c.Channels = s0[1]
	}
	for st[fmt.Sprintf("blocks.%d.norm1.weight", c.Depth)].Shape != nil {
		c.Depth++
	}
	fc1, err := shape("blocks.0.mlp.fc1.weight", 2)
	if err != nil {
		return c, err
	}
	c.MLPDim = fc1[0]
	head, err := shape("head.weight", 2)
	if err != nil {
		return c, errors.Wrap(err, "no classifier head (a backbone without one cannot classify)")
	}
	c.NumClasses = head[0]
	pos, err := shape("pos_embed", 3)
	if err != nil {
		return c, err
	}
	g := int(math.Round(math.Sqrt(float64(pos[1] - 1))))
	if g*g != pos[1]-1 {
		return c, errors.Errorf("pos_embed %v is not a class token and a square grid of patches", pos)
	}
	c.ImageSize = g * c.PatchSize
	if _, ok := st["fc_norm.weight"]; ok {
		c.Pool = PoolMean
	}
	if _, ok := st["blocks.0.attn.qkv.bias"]; !ok {
		c.NoQKVBias = true
	}
	c.Heads, c.Eps = heads, eps
	if c.Heads == 0 {
		if c.Dim%64 != 0 {
			return c, errors.Errorf("width %d is not a multiple of 64, so the number of heads cannot be assumed: give it (-heads, model.WithHeads)", c.Dim)
		}
		c.Heads = c.Dim / 64
	}
	return c, nil
}

// inferConfig finds the architecture of plain weights (no "vit.config"
// metadata): from a Hugging Face config.json beside the file, else from
// the tensors.
func (f *File) inferConfig() (Config, string, error) {
	st, naming, err := toTimmNames(f.Tensors)
	if err != nil {
		return Config{}, "", errors.Wrapf(err, "model: %s", f.Path)
	}
	f.naming = naming
	hc, err := f.readHFConfig()
	if err != nil {
		return Config{}, "", err
	}
	if hc != nil {
		classes := 0
		if h, ok := st["head.weight"]; ok && len(h.Shape) == 2 {
			classes = h.Shape[0]
		}
		cfg, err := configFromHF(hc, classes)
		if err == nil && f.Heads != 0 {
			cfg.Heads = f.Heads
		}
		return cfg, FromHFConfig, errors.Wrapf(err, "model: %s", f.beside(hfConfigName))
	}
	eps := 1e-6 // timm's and torchvision's
	if naming == namingHuggingFace {
		eps = 1e-12 // ViTConfig's default
	}
	cfg, err := configFromShapes(st, f.Heads, eps)
	return cfg, FromShapes, errors.Wrapf(err, "model: %s has no %q metadata and no %s beside it, and its tensors do not tell the architecture", f.Path, MetaConfig, hfConfigName)
}

// hfClasses returns the class names of a Hugging Face config's id2label,
// or nil if it has none for every class.
func hfClasses(c *hfConfig, k int) []string {
	if c == nil || len(c.ID2Label) != k {
		return nil
	}
	names := make([]string, k)
	for id, label := range c.ID2Label {
		i, err := strconv.Atoi(id)
		if err != nil || i < 0 || i >= k || names[i] != "" {
			return nil
		}
		names[i] = label
	}
	return names
}

// describeSource says where the config of plain weights came from, and what it is.
func describeSource(cfg Config, source, naming string) string {
	return fmt.Sprintf("architecture from the %s of %s-named weights: %v (eps %g)", source, strings.ReplaceAll(naming, "huggingface", "Hugging Face"), cfg, cfg.LayerNormEps())
}

// Transform returns the preprocessing the weights were made for, for a
// model of the given config, with a note saying how it was chosen:
//
//   - weights exported by this package: the transform in the metadata;
//   - this package's checkpoints: the training pipeline
//     (preprocess.TrainTransform) with the stored normalisation;
//   - a Hugging Face preprocessor_config.json beside the file: what it says;
//   - Hugging Face names without one: ViTImageProcessor's defaults (resize
//     to the input size, bilinear, mean and std 0.5);
//   - timm names: timm's evaluation transform of its ViTs (crop fraction
//     0.9, bicubic, mean and std 0.5);
//   - torchvision names: torchvision's (resize 256/224 of the input size,
//     bilinear, centre crop, ImageNet mean and std).
//
// Call Config first.
func (f *File) Transform(cfg Config) (preprocess.Transform, string, error) {
	if s, ok := f.Meta[MetaPreprocess]; ok {
		var t preprocess.Transform
		if err := json.Unmarshal([]byte(s), &t); err != nil {
			return t, "", errors.Errorf("model: %s: %q metadata is not a JSON transform: %v", f.Path, MetaPreprocess, err)
		}
		if t.Size != cfg.ImageSize || t.Channels != cfg.Channels {
			return t, "", errors.Errorf("model: %s: %q metadata is for %d×%d×%d images, the model takes %d×%d×%d", f.Path, MetaPreprocess, t.Channels, t.Size, t.Size, cfg.Channels, cfg.ImageSize, cfg.ImageSize)
		}
		return t, "", errors.Wrapf(t.Check(), "model: %s: %q metadata", f.Path, MetaPreprocess)
	}
	if f.source == FromMetadata {
		norm, note, err := f.Normalization(cfg.Channels)
		return preprocess.TrainTransform(cfg.ImageSize, cfg.Channels, norm), note, err
	}
	if cfg.Channels != 3 {
		return preprocess.Transform{}, "", errors.Errorf("model: %s: %d input channels, expected 3 for published weights", f.Path, cfg.Channels)
	}
	return f.namingTransform(cfg)
}

// namingTransform is the standard transform of the weights' naming.
func (f *File) namingTransform(cfg Config) (preprocess.Transform, string, error) {
	switch f.naming {
	case namingHuggingFace:
		p := f.beside(hfProcessorName)
		t, err := preprocess.HFProcessor(p, cfg.ImageSize)
		if err == nil {
			return t, "preprocessing from " + p, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return t, "", err
		}
		return preprocess.HFDefault(cfg.ImageSize), "Hugging Face weights without " + hfProcessorName + ": ViTImageProcessor's defaults", nil
	case namingTorchvision:
		return preprocess.TorchvisionEval(cfg.ImageSize, preprocess.ImageNet), "torchvision weights: torchvision's evaluation transform", nil
	}
	t, err := preprocess.TimmEval(cfg.ImageSize, 0.9, preprocess.Bicubic, preprocess.Half)
	return t, "timm weights: timm's evaluation transform of its ViTs", err
}
