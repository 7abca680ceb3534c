package layers

import (
	"fmt"
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/layers/ops"
)

// ConvStem replaces the patch embedding's single P×P projection by a stack
// of 3×3 convolutions of stride 2 (padding 1), each followed by a
// LayerNorm over channels and a GELU, and a final 1×1 convolution to D
// features ("Early convolutions help transformers see better", Xiao et
// al. 2021; torchvision's VisionTransformer conv_stem_configs, here with
// LayerNorm and GELU in place of BatchNorm and ReLU). n convolutions turn
// an H×W image into (H/2ⁿ)·(W/2ⁿ) tokens, as patches of 2ⁿ pixels would,
// but each token sees the pixels around its patch too, through features
// that are not linear in them.
//
// Parameters: name.stem.i.conv.weight (Cᵢ, Cᵢ₋₁, 3, 3), no bias (the norm
// follows); name.stem.i.norm.weight and .bias (Cᵢ); name.proj.weight
// (D, Cₙ, 1, 1) and name.proj.bias (D), as PyTorch's Conv2d stores them.
// Between layers the feature maps are channels-last (B, H·W, C).
type ConvStem struct {
	Convs []*G.Node      // (Cᵢ, Cᵢ₋₁, 3, 3)
	Norms []*LayerNorm   // over Cᵢ
	Proj  *G.Node        // (D, Cₙ, 1, 1)
	Bias  *G.Node        // (D)
	GELU  GELU           // after each norm
	Geoms []ops.ConvGeom // of each convolution
	name  string
}

// NewConvStem creates the stem for images of the given channels and size:
// one 3×3 stride-2 convolution per entry of widths (its output channels),
// then the 1×1 projection to dim. eps is the LayerNorms' epsilon. The image
// size must halve exactly at every convolution.
func NewConvStem(s *Scope, name string, channels, size int, widths []int, dim int, eps float64) (*ConvStem, error) {
	if len(widths) == 0 {
		return nil, errors.Errorf("layers: %s: a conv stem needs at least one convolution", name)
	}
	sc := s.Sub(name)
	st := &ConvStem{name: sc.path}
	in := channels
	for i, c := range widths {
		if size%2 != 0 {
			return nil, errors.Errorf("layers: %s: convolution %d of stride 2 on a %d×%d grid (want an even size)", name, i, size, size)
		}
		fanIn := float64(in * 9)
		w, err := sc.Sub("stem").Sub(fmt.Sprint(i)).Sub("conv").Param("weight", []int{c, in, 3, 3}, Uniform(1/math.Sqrt(fanIn)), Decay)
		if err != nil {
			return nil, err
		}
		norm, err := NewLayerNorm(sc.Sub("stem").Sub(fmt.Sprint(i)), "norm", c, eps)
		if err != nil {
			return nil, err
		}
		st.Convs = append(st.Convs, w)
		st.Norms = append(st.Norms, norm)
		st.Geoms = append(st.Geoms, ops.ConvGeom{C: in, H: size, W: size, K: 3, Stride: 2, Pad: 1, ChannelsLast: i > 0})
		in, size = c, size/2
	}
	var err error
	if st.Proj, st.Bias, err = sc.Sub("proj").weightAndBias([]int{dim, in, 1, 1}, TruncNormal(0.02), Decay, WithBias); err != nil {
		return nil, err
	}
	return st, nil
}

// Forward maps images (B, C, H, W) to tokens (B, N, D), N = (H/2ⁿ)·(W/2ⁿ)
// in row-major order, as PatchEmbed.Forward.
func (st *ConvStem) Forward(x *G.Node) (*G.Node, error) {
	h := x
	for i, w := range st.Convs {
		cols, err := ops.Im2Col(h, st.Geoms[i]) // (B, Hᵢ·Wᵢ, Cᵢ₋₁·9)
		if err != nil {
			return nil, errors.Wrapf(err, "%sstem.%d", st.name, i)
		}
		ws := w.Shape()
		w2, err := G.Reshape(w, []int{ws[0], ws[1] * ws[2] * ws[3]}) // no copy
		if err != nil {
			return nil, errors.Wrapf(err, "%sstem.%d", st.name, i)
		}
		if h, err = ops.Linear(cols, w2, nil); err != nil { // (B, Hᵢ·Wᵢ, Cᵢ)
			return nil, errors.Wrapf(err, "%sstem.%d", st.name, i)
		}
		if h, err = st.Norms[i].Forward(h); err != nil {
			return nil, err
		}
		if h, err = st.GELU.Forward(h); err != nil {
			return nil, errors.Wrapf(err, "%sstem.%d", st.name, i)
		}
	}
	ps := st.Proj.Shape()
	w, err := G.Reshape(st.Proj, []int{ps[0], ps[1]})
	if err != nil {
		return nil, errors.Wrap(err, st.name+"proj")
	}
	y, err := ops.Linear(h, w, st.Bias) // (B, N, D)
	return y, errors.Wrap(err, st.name+"proj")
}
