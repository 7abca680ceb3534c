package model

import (
	"math"
	"math/rand"
	"strings"

	"github.com/pkg/errors"
)

// Initialisation schemes (Config.Init).
const (
	InitTimm        = "timm"        // the default: see New
	InitTorchvision = "torchvision" // torchvision's VisionTransformer
)

// initTorchvision overwrites the parameters with the initialisation of
// torchvision's VisionTransformer (torchvision 0.14, vision_transformer.py
// and nn.MultiheadAttention): patch projection N(0, 1/fan_in) (truncated at
// ±2 absolute, as torch.nn.init.trunc_normal_'s defaults) with a zero bias;
// class token 0; position embedding N(0, 0.02²); qkv weight Xavier-uniform
// over the whole 3D×D matrix, qkv bias 0; attention output projection
// U(±1/√D) (nn.Linear's default), bias 0; MLP weights Xavier-uniform, biases
// N(0, 1e-6²); LayerNorms 1 and 0; classifier head 0. A conv stem's
// convolutions get Conv2d's default U(±1/√fan_in), its 1×1 projection
// N(0, 2/D) (torchvision's conv_last). For small models this
// starts faster than timm's N(0, 0.02²) everywhere.
func (m *ViT) initTorchvision(seed int64) error {
	rng := rand.New(rand.NewSource(seed ^ 0x7043))
	d, h := float64(m.Config.Dim), float64(m.Config.MLPDim)
	fanIn := float64(m.Config.Channels * m.Config.PatchSize * m.Config.PatchSize)
	uniform := func(bound float64) func() float64 {
		return func() float64 { return (2*rng.Float64() - 1) * bound }
	}
	normal := func(std float64, trunc float64) func() float64 {
		return func() float64 {
			for {
				v := rng.NormFloat64() * std
				if trunc == 0 || math.Abs(v) <= trunc {
					return v
				}
			}
		}
	}
	zero := func() float64 { return 0 }
	one := func() float64 { return 1 }
	for _, p := range m.params {
		name := p.Name
		var f func() float64
		switch {
		case name == "cls_token":
			f = zero
		case name == "pos_embed":
			f = normal(0.02, 0)
		case name == "patch_embed.proj.weight" && m.Stem != nil:
			f = normal(math.Sqrt(2/d), 0) // torchvision's conv_last
		case name == "patch_embed.proj.weight":
			f = normal(math.Sqrt(1/fanIn), 2)
		case strings.HasPrefix(name, "patch_embed.stem.") && strings.HasSuffix(name, ".conv.weight"):
			s := p.Node.Shape()
			f = uniform(1 / math.Sqrt(float64(s[1]*s[2]*s[3]))) // Conv2d's default
		case strings.HasSuffix(name, "attn.qkv.weight"):
			f = uniform(math.Sqrt(6 / (d + 3*d)))
		case strings.HasSuffix(name, "attn.proj.weight"):
			f = uniform(1 / math.Sqrt(d))
		case strings.HasSuffix(name, "mlp.fc1.weight"), strings.HasSuffix(name, "mlp.fc2.weight"):
			f = uniform(math.Sqrt(6 / (d + h)))
		case strings.HasSuffix(name, "mlp.fc1.bias"), strings.HasSuffix(name, "mlp.fc2.bias"):
			f = normal(1e-6, 0)
		case strings.HasPrefix(name, "head."), strings.HasSuffix(name, ".bias"):
			f = zero
		case strings.HasSuffix(name, "norm.weight"), strings.HasSuffix(name, "norm1.weight"), strings.HasSuffix(name, "norm2.weight"):
			f = one
		default:
			return errors.Errorf("model: torchvision initialisation: no rule for parameter %q", name)
		}
		switch v := p.Node.Value().Data().(type) {
		case []float32:
			for i := range v {
				v[i] = float32(f())
			}
		case []float64:
			for i := range v {
				v[i] = f()
			}
		}
	}
	return nil
}
