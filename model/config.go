package model

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/pkg/errors"
)

// Config describes a Vision Transformer. The first eight fields are the
// architecture; the zero value of every other field is the paper's
// standard ViT (class-token pooling, qkv bias, LayerNorm eps 1e-6, exact
// GELU, no dropout), so a literal with only the eight is the standard model.
type Config struct {
	ImageSize  int `json:"image_size"`  // input height and width, pixels
	PatchSize  int `json:"patch_size"`  // patch height and width; divides ImageSize
	Channels   int `json:"channels"`    // input channels: 3 for RGB, 1 for grey
	Dim        int `json:"dim"`         // token width D ("hidden size")
	Depth      int `json:"depth"`       // number of encoder blocks L
	Heads      int `json:"heads"`       // attention heads; divides Dim
	MLPDim     int `json:"mlp_dim"`     // hidden width of each block's MLP (4·D in the paper)
	NumClasses int `json:"num_classes"` // classifier outputs

	Dropout     float64  `json:"dropout,omitempty"`      // after attention projection, in the MLP and after embedding (paper: 0.1 for ImageNet training from scratch)
	AttnDropout float64  `json:"attn_dropout,omitempty"` // on attention probabilities
	DropPath    float64  `json:"drop_path,omitempty"`    // stochastic depth, rising linearly from 0 in the first block to this in the last
	Pool        Pooling  `json:"pool,omitempty"`         // PoolClassToken (default, the paper) or PoolMean (mean of patch tokens, then a LayerNorm named fc_norm, as timm)
	Eps         float64  `json:"eps,omitempty"`          // LayerNorm epsilon; 0 means 1e-6 (timm, torchvision, big_vision)
	GELU        GELUForm `json:"gelu,omitempty"`         // GELUExact (default, erf) or GELUTanh (the approximation used by the original JAX weights)
	NoQKVBias   bool     `json:"no_qkv_bias,omitempty"`  // drop the bias of the qkv projection (the paper's model has one)
	Init        string   `json:"init,omitempty"`         // initialisation: "timm" (default) or "torchvision" (see New)
	PosEmbed    string   `json:"pos_embed,omitempty"`    // PosLearned (default, the paper) or PosSinCos (fixed 2-D sin-cos, not trained; see SinCos2D)
	Stem        string   `json:"stem,omitempty"`         // StemPatch (default, the paper's P×P projection) or StemConv (3×3 convolutions; see StemWidths)
}

// Patch embeddings (Config.Stem).
const (
	StemPatch = "patch" // one P×P convolution of stride P, the paper's linear projection of patches
	StemConv  = "conv"  // log₂P 3×3 convolutions of stride 2, each with a LayerNorm and a GELU, then a 1×1 to D (layers.ConvStem)
)

// ConvStem reports whether the patch embedding is a convolutional stem.
func (c Config) ConvStem() bool { return c.Stem == StemConv }

// StemWidths returns the output channels of the conv stem's convolutions:
// log₂P of them, doubling up to D (for P = 4 and D = 64: 32, 64). Nil
// without a conv stem.
func (c Config) StemWidths() []int {
	if !c.ConvStem() {
		return nil
	}
	var w []int
	for p := c.PatchSize / 2; p >= 1; p /= 2 {
		w = append(w, c.Dim/p)
	}
	return w
}

// Positional embeddings (Config.PosEmbed).
const (
	PosLearned = "learned" // learned, initialised as Config.Init says
	PosSinCos  = "sincos"  // fixed 2-D sin-cos (big_vision's posemb_sincos_2d), zero for the class token
)

// FixedPositions reports whether the positional embedding is fixed (not
// trained).
func (c Config) FixedPositions() bool { return c.PosEmbed == PosSinCos }

// Pooling is how Config.Pool reduces the tokens to the features; the empty
// string means PoolClassToken. It is stored in weight files as its string.
type Pooling string

// Poolings (Config.Pool).
const (
	PoolClassToken Pooling = "cls"  // the class token, as the paper
	PoolMean       Pooling = "mean" // the mean of the patch tokens, then fc_norm, as timm's global_pool="avg"
)

// GELUForm is the formula of the MLP's GELU (Config.GELU); the empty
// string means GELUExact. It is stored in weight files as its string.
type GELUForm string

// GELU forms (Config.GELU).
const (
	GELUExact GELUForm = "exact" // x·Φ(x) with erf, PyTorch's default
	GELUTanh  GELUForm = "tanh"  // the tanh approximation the original JAX weights were trained with
)

// LayerNormEps returns the effective LayerNorm epsilon.
func (c Config) LayerNormEps() float64 {
	if c.Eps == 0 {
		return 1e-6
	}
	return c.Eps
}

// MeanPool reports whether features are the mean of the patch tokens.
func (c Config) MeanPool() bool { return c.Pool == PoolMean }

// Grid returns the number of patches per side.
func (c Config) Grid() int { return c.ImageSize / c.PatchSize }

// Tokens returns the sequence length: the patches plus the class token.
func (c Config) Tokens() int { return c.Grid()*c.Grid() + 1 }

// Validate reports the first impossible setting, naming the field.
func (c Config) Validate() error {
	pos := []struct {
		name string
		v    int
	}{{"ImageSize", c.ImageSize}, {"PatchSize", c.PatchSize}, {"Channels", c.Channels}, {"Dim", c.Dim},
		{"Depth", c.Depth}, {"Heads", c.Heads}, {"MLPDim", c.MLPDim}, {"NumClasses", c.NumClasses}}
	for _, f := range pos {
		if f.v <= 0 {
			return errors.Errorf("model: Config.%s must be positive, got %d", f.name, f.v)
		}
	}
	if c.ImageSize%c.PatchSize != 0 {
		return errors.Errorf("model: Config.ImageSize %d is not divisible by Config.PatchSize %d", c.ImageSize, c.PatchSize)
	}
	if c.Dim%c.Heads != 0 {
		return errors.Errorf("model: Config.Dim %d is not divisible by Config.Heads %d", c.Dim, c.Heads)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"Dropout", c.Dropout}, {"AttnDropout", c.AttnDropout}, {"DropPath", c.DropPath}} {
		if !(f.v >= 0 && f.v < 1) {
			return errors.Errorf("model: Config.%s must be in [0, 1), got %v", f.name, f.v)
		}
	}
	if !(c.Eps >= 0 && c.Eps < 1) {
		return errors.Errorf("model: Config.Eps must be in [0, 1), got %v", c.Eps)
	}
	switch c.Pool {
	case "", PoolClassToken, PoolMean:
	default:
		return errors.Errorf(`model: Config.Pool must be %q or %q, got %q`, PoolClassToken, PoolMean, c.Pool)
	}
	switch c.GELU {
	case "", GELUExact, GELUTanh:
	default:
		return errors.Errorf(`model: Config.GELU must be %q or %q, got %q`, GELUExact, GELUTanh, c.GELU)
	}
	switch c.PosEmbed {
	case "", PosLearned:
	case PosSinCos:
		if c.Dim%4 != 0 || c.Dim < 8 {
			return errors.Errorf("model: sin-cos positions need Config.Dim a multiple of 4 and at least 8, got %d", c.Dim)
		}
	default:
		return errors.Errorf(`model: Config.PosEmbed must be %q or %q, got %q`, PosLearned, PosSinCos, c.PosEmbed)
	}
	switch c.Stem {
	case "", StemPatch:
	case StemConv:
		if c.PatchSize < 2 || c.PatchSize&(c.PatchSize-1) != 0 {
			return errors.Errorf("model: a conv stem needs Config.PatchSize a power of 2 (each convolution halves the grid), got %d", c.PatchSize)
		}
		if c.Dim < c.PatchSize/2 {
			return errors.Errorf("model: a conv stem of patch %d needs Config.Dim at least %d (its first convolution has Dim/%d channels), got %d", c.PatchSize, c.PatchSize/2, c.PatchSize/2, c.Dim)
		}
	default:
		return errors.Errorf(`model: Config.Stem must be %q or %q, got %q`, StemPatch, StemConv, c.Stem)
	}
	switch c.Init {
	case "", InitTimm, InitTorchvision:
	default:
		return errors.Errorf(`model: Config.Init must be "timm" or "torchvision", got %q`, c.Init)
	}
	return nil
}

func (c Config) String() string {
	s := fmt.Sprintf("ViT image %d×%d×%d, patch %d (%d tokens), dim %d, depth %d, heads %d, mlp %d, classes %d",
		c.ImageSize, c.ImageSize, c.Channels, c.PatchSize, c.Tokens(), c.Dim, c.Depth, c.Heads, c.MLPDim, c.NumClasses)
	if c.Dropout > 0 || c.AttnDropout > 0 || c.DropPath > 0 {
		s += fmt.Sprintf(", dropout %g, attn dropout %g, drop path %g", c.Dropout, c.AttnDropout, c.DropPath)
	}
	if c.MeanPool() {
		s += ", mean pooling"
	}
	if c.GELU == GELUTanh {
		s += ", tanh GELU"
	}
	if c.NoQKVBias {
		s += ", no qkv bias"
	}
	if c.Init == InitTorchvision {
		s += ", torchvision init"
	}
	if c.FixedPositions() {
		s += ", fixed sin-cos positions"
	}
	if c.ConvStem() {
		s += fmt.Sprintf(", conv stem %v", c.StemWidths())
	}
	return s
}

// marshal returns the config as JSON (as stored in weight files).
func (c Config) marshal() string {
	b, _ := json.Marshal(c) // a struct of ints, floats, strings and bools cannot fail
	return string(b)
}

// parseConfig reads a config stored by marshal, refusing unknown fields.
func parseConfig(s string) (Config, error) {
	var c Config
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, errors.Wrap(err, "model: config metadata is not a valid config")
	}
	return c, c.Validate()
}

// presets are the paper's models at 224×224×3 with 1000 classes, and
// small-data models for 32×32×3 (CIFAR-style) and 28×28×1 (MNIST-style)
// images with 10 classes.
var presets = map[string]Config{
	"Ti/16": {ImageSize: 224, PatchSize: 16, Channels: 3, Dim: 192, Depth: 12, Heads: 3, MLPDim: 768, NumClasses: 1000},
	"S/16":  {ImageSize: 224, PatchSize: 16, Channels: 3, Dim: 384, Depth: 12, Heads: 6, MLPDim: 1536, NumClasses: 1000},
	"B/16":  {ImageSize: 224, PatchSize: 16, Channels: 3, Dim: 768, Depth: 12, Heads: 12, MLPDim: 3072, NumClasses: 1000},
	"L/16":  {ImageSize: 224, PatchSize: 16, Channels: 3, Dim: 1024, Depth: 24, Heads: 16, MLPDim: 4096, NumClasses: 1000},
	"H/14":  {ImageSize: 224, PatchSize: 14, Channels: 3, Dim: 1280, Depth: 32, Heads: 16, MLPDim: 5120, NumClasses: 1000},
	// CIFAR-style: 8×8 patches of 4×4 pixels, ViT-Ti width.
	"cifar-tiny": {ImageSize: 32, PatchSize: 4, Channels: 3, Dim: 192, Depth: 6, Heads: 3, MLPDim: 768, NumClasses: 10},
	// CIFAR-style, a smaller and quicker model.
	"cifar-small": {ImageSize: 32, PatchSize: 4, Channels: 3, Dim: 96, Depth: 4, Heads: 3, MLPDim: 192, NumClasses: 10},
	// MNIST-style: 4×4 patches of 7×7 pixels.
	"mnist-small": {ImageSize: 28, PatchSize: 7, Channels: 1, Dim: 64, Depth: 6, Heads: 4, MLPDim: 128, NumClasses: 10},
	// MNIST-style, the quickest useful model.
	"mnist-tiny": {ImageSize: 28, PatchSize: 7, Channels: 1, Dim: 32, Depth: 2, Heads: 2, MLPDim: 64, NumClasses: 10},
}

// presetKey folds a preset name to a lookup key: "ViT-Ti/16", "vit_ti16",
// "Ti/16" and "ti16" all name the same model.
func presetKey(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "vit-"), "vit_")
	return strings.NewReplacer("/", "", "_", "", "-", "").Replace(s)
}

// Preset returns the named config. Names are the paper's (Ti/16, S/16,
// B/16, L/16, H/14, also written vit-ti16 and the like) and the small-data
// presets listed by Presets.
func Preset(name string) (Config, error) {
	k := presetKey(name)
	for n, c := range presets {
		if presetKey(n) == k {
			return c, nil
		}
	}
	return Config{}, errors.Errorf("model: unknown preset %q (known: %s)", name, strings.Join(Presets(), ", "))
}

// Presets lists the preset names.
func Presets() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NumParams returns the number of learnable scalars of a model with this
// config, without building it.
func (c Config) NumParams() int { return int(c.numParams()) }

// numParams is NumParams in float64, which cannot overflow for the
// absurd configs a damaged file may hold (see File.Config); it is exact for
// every model that fits in memory.
func (c Config) numParams() float64 {
	d, h := float64(c.Dim), float64(c.MLPDim)
	qkvBias := 3 * d
	if c.NoQKVBias {
		qkvBias = 0
	}
	block := 2*d + (3*d*d + qkvBias) + (d*d + d) + 2*d + (h*d + h) + (d*h + d)
	grid := float64(c.ImageSize / c.PatchSize)
	embed := d*float64(c.Channels*c.PatchSize*c.PatchSize) + d + d + (grid*grid+1)*d
	if c.ConvStem() {
		in := float64(c.Channels)
		embed = 0
		for _, w := range c.StemWidths() {
			embed += float64(w)*in*9 + 2*float64(w) // kernel, LayerNorm
			in = float64(w)
		}
		embed += d*in + d + d + (grid*grid+1)*d // 1×1 projection and bias, class token, positions
	}
	k := float64(c.NumClasses)
	return embed + float64(c.Depth)*block + 2*d + k*d + k
}
