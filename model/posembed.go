package model

import (
	"math"

	"github.com/pkg/errors"
)

// bicubicA is the cubic-convolution coefficient PyTorch uses for
// mode="bicubic" (Keys' kernel with a = -0.75).
const bicubicA = -0.75

// gridOf returns the side of the square grid that n patch tokens form, or an
// error if n is not a positive perfect square.
func gridOf(n int) (int, error) {
	if n <= 0 {
		return 0, errors.Errorf("model: %d grid tokens, expected a positive square number", n)
	}
	g := int(math.Sqrt(float64(n)))
	for g*g > n {
		g--
	}
	for (g+1)*(g+1) <= n {
		g++
	}
	if g*g != n {
		return 0, errors.Errorf("model: %d grid tokens do not form a square grid (%d² = %d, %d² = %d)", n, g, g*g, g+1, (g+1)*(g+1))
	}
	return g, nil
}

// resizePosEmbed resamples a positional embedding t of shape
// (1, prefix + gh·gw, D) to (1, prefix + nh·nw, D). The first prefix rows
// (class token, ...) are copied unchanged; the rest is a gh×gw grid in
// row-major (row, col) order, resampled to nh×nw exactly as PyTorch's
// F.interpolate(mode="bicubic", align_corners=False, antialias=False) does
// on the (1, D, gh, gw) image: cubic convolution with a = -0.75, source
// coordinate (dst + 0.5)·in/out − 0.5, taps clamped at the borders, and a
// plain copy when the size does not change.
func resizePosEmbed(t Tensor, prefix, gh, gw, nh, nw int) (Tensor, error) {
	if prefix < 0 || gh <= 0 || gw <= 0 || nh <= 0 || nw <= 0 {
		return Tensor{}, errors.Errorf("model: resize pos embed: prefix %d, grid %dx%d -> %dx%d: expected prefix >= 0 and positive grid sizes", prefix, gh, gw, nh, nw)
	}
	if len(t.Shape) != 3 || t.Shape[0] != 1 || t.Shape[2] <= 0 {
		return Tensor{}, errors.Errorf("model: resize pos embed: shape %v, expected (1, %d, D) with D > 0", t.Shape, prefix+gh*gw)
	}
	tokens, d := t.Shape[1], t.Shape[2]
	if cells, err := stNumElements([]int{gh, gw}); err != nil || tokens != prefix+cells {
		return Tensor{}, errors.Errorf("model: resize pos embed: %d tokens in shape %v, expected %d prefix + %dx%d grid = %d", tokens, t.Shape, prefix, gh, gw, prefix+gh*gw)
	}
	if n, err := stNumElements(t.Shape); err != nil || n != len(t.Data) {
		return Tensor{}, errors.Errorf("model: resize pos embed: shape %v needs %d values, found %d", t.Shape, tokens*d, len(t.Data))
	}
	cells, err := stNumElements([]int{nh, nw})
	if err == nil && cells > math.MaxInt-prefix {
		err = errors.New("overflow")
	}
	if err == nil {
		_, err = stNumElements([]int{prefix + cells, d})
	}
	if err != nil {
		return Tensor{}, errors.Errorf("model: resize pos embed: target grid %dx%d with %d prefix rows and D = %d is too large", nh, nw, prefix, d)
	}

	out := Tensor{
		Shape: []int{1, prefix + nh*nw, d},
		Data:  make([]float64, (prefix+nh*nw)*d),
	}
	copy(out.Data, t.Data[:prefix*d])
	src, dst := t.Data[prefix*d:], out.Data[prefix*d:]

	if gh == nh && gw == nw { // PyTorch copies the input in this case
		copy(dst, src)
		return out, nil
	}

	ys, wy := cubicTaps(gh, nh)
	xs, wx := cubicTaps(gw, nw)
	// Separable: first along the columns (gh×gw -> gh×nw), then the rows.
	tmp := make([]float64, gh*nw*d)
	for r := 0; r < gh; r++ {
		for c := 0; c < nw; c++ {
			o := tmp[(r*nw+c)*d : (r*nw+c+1)*d]
			for k := 0; k < 4; k++ {
				w := wx[4*c+k]
				s := src[(r*gw+xs[4*c+k])*d:]
				for e := range o {
					o[e] += w * s[e]
				}
			}
		}
	}
	for r := 0; r < nh; r++ {
		for c := 0; c < nw; c++ {
			o := dst[(r*nw+c)*d : (r*nw+c+1)*d]
			for k := 0; k < 4; k++ {
				w := wy[4*r+k]
				s := tmp[(ys[4*r+k]*nw+c)*d:]
				for e := range o {
					o[e] += w * s[e]
				}
			}
		}
	}
	return out, nil
}

// cubicTaps returns, for each of the out output positions along one axis,
// the 4 input indices (clamped to [0, in-1]) and weights that PyTorch's
// bicubic upsampling with align_corners=False combines.
func cubicTaps(in, out int) (idx []int, w []float64) {
	scale := float64(in) / float64(out)
	idx = make([]int, 4*out)
	w = make([]float64, 4*out)
	for o := 0; o < out; o++ {
		pos := scale*(float64(o)+0.5) - 0.5 // not clamped at 0 for cubic
		i0 := int(math.Floor(pos))
		if i0 > in-1 {
			i0 = in - 1
		}
		t := math.Min(math.Max(pos-float64(i0), 0), 1)
		c := cubicCoeffs(t)
		for k := 0; k < 4; k++ {
			j := i0 - 1 + k
			if j < 0 {
				j = 0
			} else if j > in-1 {
				j = in - 1
			}
			idx[4*o+k] = j
			w[4*o+k] = c[k]
		}
	}
	return idx, w
}

// cubicCoeffs returns the 4 cubic-convolution weights for a fractional
// offset t in [0, 1] (PyTorch's get_cubic_upsample_coefficients).
func cubicCoeffs(t float64) [4]float64 {
	const a = bicubicA
	conv1 := func(x float64) float64 { return ((a+2)*x-(a+3))*x*x + 1 }   // |x| <= 1
	conv2 := func(x float64) float64 { return ((a*x-5*a)*x+8*a)*x - 4*a } // 1 < |x| < 2
	return [4]float64{conv2(t + 1), conv1(t), conv1(1 - t), conv2(2 - t)}
}
