package preprocess

import (
	"image"
	"image/color"
	"math"
	"strconv"

	"github.com/pkg/errors"
)

// Filter is a resampling filter of Resize, defined as PIL (Pillow) defines
// it, so that a resize here gives the pixels PIL's Image.resize gives.
type Filter int

// The filters of Resize.
const (
	Bilinear Filter = 2 // PIL's BILINEAR (2): the triangle filter, support 1
	Bicubic  Filter = 3 // PIL's BICUBIC (3): cubic convolution with a = −0.5, support 2
)

// String returns the filter's name.
func (f Filter) String() string {
	switch f {
	case Bilinear:
		return "bilinear"
	case Bicubic:
		return "bicubic"
	}
	return "filter(" + strconv.Itoa(int(f)) + ")"
}

// support is the half-width of the filter's kernel at scale 1.
func (f Filter) support() float64 {
	if f == Bicubic {
		return 2
	}
	return 1
}

// weight is the filter's kernel.
func (f Filter) weight(x float64) float64 {
	x = math.Abs(x)
	if f == Bicubic {
		const a = -0.5
		switch {
		case x < 1:
			return ((a+2)*x-(a+3))*x*x + 1
		case x < 2:
			return (((x-5)*x+8)*x - 4) * a
		}
		return 0
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// Image8 is an image of 8-bit samples held as C planes of H×W, row-major:
// what PIL holds for an "L" (C = 1) or "RGB" (C = 3) image.
type Image8 struct {
	W, H, C int
	Pix     []uint8 // C·H·W samples, plane by plane
}

// FromImage returns img's pixels as 8-bit gray (ch = 1) or RGB (ch = 3),
// as PIL's Image.convert("L") or convert("RGB") gives them: colour taken
// without its alpha (not composited), gray copied to R, G and B, colour
// turned into gray by ITU-R BT.601 luma in PIL's fixed point
// ((19595·R + 38470·G + 7471·B + 2¹⁵) >> 16). Samples of more than 8 bits
// keep their high byte. JPEG colour is upsampled as libjpeg does.
func FromImage(img image.Image, ch int) (*Image8, error) {
	if img == nil {
		return nil, errors.New("preprocess: nil image, expected a decoded image")
	}
	if ch != 1 && ch != 3 {
		return nil, errors.Errorf("preprocess: %d channels requested, expected 1 or 3", ch)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 || int64(w)*int64(h) > MaxPixels {
		return nil, errors.Wrapf(ErrTooManyPixels, "preprocess: image of %d×%d pixels, expected 1 to %d pixels", w, h, MaxPixels)
	}
	out := &Image8{W: w, H: h, C: ch, Pix: make([]uint8, ch*w*h)}
	plane := w * h
	forPixels(b, straightRGB(img), func(o int, r, g, bl uint8) {
		if ch == 3 {
			out.Pix[o], out.Pix[plane+o], out.Pix[2*plane+o] = r, g, bl
			return
		}
		out.Pix[o] = uint8((uint32(r)*19595 + uint32(g)*38470 + uint32(bl)*7471 + 1<<15) >> 16)
	})
	return out, nil
}

// straightRGB returns a reader of a pixel's 8-bit R, G, B without alpha,
// with fast paths for what the PNG and JPEG decoders produce.
func straightRGB(img image.Image) func(x, y int) (r, g, b uint8) {
	switch m := img.(type) {
	case *image.Gray:
		return func(x, y int) (uint8, uint8, uint8) {
			v := m.GrayAt(x, y).Y
			return v, v, v
		}
	case *image.YCbCr:
		return jpegRGB(m)
	case *image.NRGBA:
		return func(x, y int) (uint8, uint8, uint8) {
			c := m.NRGBAAt(x, y)
			return c.R, c.G, c.B
		}
	}
	return func(x, y int) (uint8, uint8, uint8) {
		c := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
		return uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8)
	}
}

// precision is the number of fraction bits of PIL's fixed-point weights
// for 8-bit images (32 − 8 − 2).
const precision = 22

// pilTaps returns, for each of out output positions, the first input
// position and the fixed-point weights that make it, exactly as PIL's
// precompute_coeffs and normalize_coeffs_8bpc compute them: the filter
// stretched by the scale when shrinking (antialiasing), centres at
// (i + 0.5)·in/out, weights normalised to sum 1, then rounded to
// precision bits away from zero.
func pilTaps(in, out int, f Filter) (first []int, taps [][]int32) {
	scale := float64(in) / float64(out)
	fscale := math.Max(scale, 1)
	support, inv := f.support()*fscale, 1/fscale
	first, taps = make([]int, out), make([][]int32, out)
	for i := range out {
		center := (float64(i) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		w := make([]float64, max(hi-lo, 0))
		var sum float64
		for k := range w {
			w[k] = f.weight((float64(k+lo) - center + 0.5) * inv)
			sum += w[k]
		}
		t := make([]int32, len(w))
		for k, v := range w {
			if sum != 0 {
				v /= sum
			}
			if v < 0 {
				t[k] = int32(-0.5 + v*(1<<precision))
			} else {
				t[k] = int32(0.5 + v*(1<<precision))
			}
		}
		first[i], taps[i] = lo, t
	}
	return first, taps
}

// clip8 is PIL's clip8: the fixed-point sum shifted down and clamped to a
// byte.
func clip8(s int32) uint8 {
	v := s >> precision
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// Resize returns m resampled to w×h as PIL's Image.resize(size, filter)
// does for an 8-bit image: separably, the horizontal pass first into an
// 8-bit image, then the vertical pass, each only when that side changes;
// antialiased when shrinking (the filter widened by the scale); weights and
// sums in PIL's 22-bit fixed point, so the result is PIL's, sample for
// sample.
func (m *Image8) Resize(w, h int, f Filter) (*Image8, error) {
	return m.resizeWindow(w, h, 0, 0, w, h, f)
}

// resizeWindow returns the cw×ch window at (x0, y0) of m resized to w×h:
// Resize then a crop, sample for sample, computing only the window (and
// the rows of the horizontal pass the window's vertical taps read).
func (m *Image8) resizeWindow(w, h, x0, y0, cw, ch int, f Filter) (*Image8, error) {
	if f != Bilinear && f != Bicubic {
		return nil, errors.Errorf("preprocess: resampling filter %v, expected bilinear or bicubic", f)
	}
	if w < 1 || h < 1 || w > MaxSize || h > MaxSize {
		return nil, errors.Errorf("preprocess: resize to %d×%d, expected sides of 1..%d", w, h, MaxSize)
	}
	if x0 < 0 || y0 < 0 || cw < 1 || ch < 1 || x0+cw > w || y0+ch > h {
		return nil, errors.Errorf("preprocess: a %d×%d window at (%d, %d) of a %d×%d image", cw, ch, x0, y0, w, h)
	}
	// The input rows the output rows y0..y0+ch read.
	r0, r1 := y0, y0+ch
	var vFirst []int
	var vTaps [][]int32
	if h != m.H {
		vFirst, vTaps = pilTaps(m.H, h, f)
		vFirst, vTaps = vFirst[y0:y0+ch], vTaps[y0:y0+ch]
		r0, r1 = m.H, 0
		for y, t := range vTaps {
			r0, r1 = min(r0, vFirst[y]), max(r1, vFirst[y]+len(t))
		}
		r1 = max(r1, r0)
	}
	// Horizontal pass: rows r0..r1, columns x0..x0+cw, into mid.
	rows := r1 - r0
	mid := &Image8{W: cw, H: rows, C: m.C, Pix: make([]uint8, m.C*rows*cw)}
	var hFirst []int
	var hTaps [][]int32
	if w != m.W {
		hFirst, hTaps = pilTaps(m.W, w, f)
		hFirst, hTaps = hFirst[x0:x0+cw], hTaps[x0:x0+cw]
	}
	for c := 0; c < m.C; c++ {
		for r := 0; r < rows; r++ {
			src := m.Pix[(c*m.H+r0+r)*m.W : (c*m.H+r0+r+1)*m.W]
			dst := mid.Pix[(c*rows+r)*cw : (c*rows+r+1)*cw]
			if hTaps == nil {
				copy(dst, src[x0:x0+cw])
				continue
			}
			for x, t := range hTaps {
				s := int32(1 << (precision - 1))
				in := src[hFirst[x] : hFirst[x]+len(t)]
				for k, c := range t {
					s += int32(in[k]) * c
				}
				dst[x] = clip8(s)
			}
		}
	}
	if vTaps == nil {
		return mid, nil
	}
	// Vertical pass, row by row: each output row is a weighted sum of whole
	// rows of mid, accumulated in acc (integer sums: the order changes no
	// bit).
	out := &Image8{W: cw, H: ch, C: m.C, Pix: make([]uint8, m.C*ch*cw)}
	acc := make([]int32, cw)
	for c := 0; c < m.C; c++ {
		src, dst := mid.Pix[c*rows*cw:(c+1)*rows*cw], out.Pix[c*ch*cw:(c+1)*ch*cw]
		for y, t := range vTaps {
			for x := range acc {
				acc[x] = 1 << (precision - 1)
			}
			for k, wt := range t {
				r := vFirst[y] - r0 + k
				in := src[r*cw : (r+1)*cw]
				in = in[:len(acc)]
				for x, v := range in {
					acc[x] += int32(v) * wt
				}
			}
			row := dst[y*cw : (y+1)*cw]
			row = row[:len(acc)]
			for x, v := range acc {
				row[x] = clip8(v)
			}
		}
	}
	return out, nil
}

// ResizeShorter resizes m so that its shorter side is size, the longer one
// in proportion, as torchvision's Resize(size) computes it: the longer
// side becomes int(size·long/short), truncated.
func (m *Image8) ResizeShorter(size int, f Filter) (*Image8, error) {
	w, h := m.shorterTo(size)
	return m.Resize(w, h, f)
}

// shorterTo is the size ResizeShorter resizes m to.
func (m *Image8) shorterTo(size int) (w, h int) {
	if m.W <= m.H {
		return size, int(float64(size) * float64(m.H) / float64(m.W))
	}
	return int(float64(size) * float64(m.W) / float64(m.H)), size
}

// cropOffsets is where CenterCrop places a w×h window in a W×H image.
func cropOffsets(W, H, w, h int) (left, top int) {
	return int(math.RoundToEven(float64(W-w) / 2)), int(math.RoundToEven(float64(H-h) / 2))
}

// ResizeCrop is Resize to w×h followed by CenterCrop(cw, ch), computing
// only the pixels the crop keeps.
func (m *Image8) ResizeCrop(w, h, cw, ch int, f Filter) (*Image8, error) {
	if cw > w || ch > h {
		return nil, errors.Errorf("preprocess: centre crop of %d×%d from an image of %d×%d, expected a crop within the image", cw, ch, w, h)
	}
	left, top := cropOffsets(w, h, cw, ch)
	return m.resizeWindow(w, h, left, top, cw, ch, f)
}

// CenterCrop cuts the centred w×h window out of m, placed as torchvision's
// CenterCrop places it: top = round((H − h)/2), left = round((W − w)/2),
// halves rounded to even as Python's round does.
func (m *Image8) CenterCrop(w, h int) (*Image8, error) {
	if w < 1 || h < 1 || w > m.W || h > m.H {
		return nil, errors.Errorf("preprocess: centre crop of %d×%d from an image of %d×%d, expected a crop within the image", w, h, m.W, m.H)
	}
	left, top := cropOffsets(m.W, m.H, w, h)
	out := &Image8{W: w, H: h, C: m.C, Pix: make([]uint8, m.C*w*h)}
	for c := 0; c < m.C; c++ {
		for y := 0; y < h; y++ {
			src := m.Pix[(c*m.H+top+y)*m.W+left:]
			copy(out.Pix[(c*h+y)*w:(c*h+y+1)*w], src[:w])
		}
	}
	return out, nil
}

// Floats writes m's samples scaled by 1/255 (torchvision's ToTensor) into
// dst, which must hold C·H·W values.
func (m *Image8) Floats(dst []float32) error {
	if len(dst) != len(m.Pix) {
		return errors.Errorf("preprocess: dst has %d values, expected %d (%d×%d×%d)", len(dst), len(m.Pix), m.C, m.H, m.W)
	}
	for i, v := range m.Pix {
		dst[i] = float32(v) / 255
	}
	return nil
}
