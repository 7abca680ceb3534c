package preprocess

import (
	"image"
	"image/color"
	"math"

	"github.com/pkg/errors"
)

// MaxSize bounds the side of the square images ToCHW produces, so that a
// typing slip cannot ask for a many-gigabyte tensor.
const MaxSize = 4096

// ToCHW converts img to ch×size×size float32 pixels in [0,1], written into
// dst (see the package notes: colour through the standard library's colour
// model, gray copied to R, G and B or RGB turned into BT.601 luma, the
// centred square of side min(width, height) resampled to size×size).
// Normalisation is left to the caller (Normalization.Apply).
//
// It returns an error for a nil or empty image, a channel count other than
// 1 or 3, a size outside 1..MaxSize, an image of more than MaxPixels pixels,
// or a dst of the wrong length.
func ToCHW(img image.Image, ch, size int, dst []float32) error {
	if img == nil {
		return errors.New("preprocess: nil image, expected a decoded image")
	}
	if ch != 1 && ch != 3 {
		return errors.Errorf("preprocess: %d channels requested, expected 1 or 3", ch)
	}
	if size < 1 || size > MaxSize {
		return errors.Errorf("preprocess: size %d, expected 1..%d", size, MaxSize)
	}
	if want := ch * size * size; len(dst) != want {
		return errors.Errorf("preprocess: dst has %d values, expected %d (%d×%d×%d)", len(dst), want, ch, size, size)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return errors.Errorf("preprocess: image of %d×%d pixels, expected a non-empty image", w, h)
	}
	if int64(w)*int64(h) > MaxPixels {
		return errors.Wrapf(ErrTooManyPixels, "preprocess: image of %d×%d pixels, expected at most %d pixels", w, h, MaxPixels)
	}
	s := min(w, h)
	x0, y0 := (w-s)/2, (h-s)/2
	crop := image.Rect(b.Min.X+x0, b.Min.Y+y0, b.Min.X+x0+s, b.Min.Y+y0+s)
	if s == size {
		toPlanes(img, crop, ch, dst)
		return nil
	}
	resample(img, crop, ch, size, dst)
	return nil
}

// ToImage turns c×h×w values in [0,1] (c = 1 or 3) back into an 8-bit
// image (values rounded to the nearest of 256 levels and clamped), so that
// pixels read from 8-bit files convert again exactly as the files would.
func ToImage(chw []float32, c, h, w int) (image.Image, error) {
	if (c != 1 && c != 3) || h < 1 || w < 1 || len(chw) != c*h*w {
		return nil, errors.Errorf("preprocess: ToImage: %d values as %d×%d×%d, expected c = 1 or 3 and c·h·w values", len(chw), c, h, w)
	}
	b := func(v float32) uint8 { return uint8(min(max(v*255+0.5, 0), 255)) }
	if c == 1 {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for j := range g.Pix {
			g.Pix[j] = b(chw[j])
		}
		return g, nil
	}
	plane := h * w
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for j := 0; j < plane; j++ {
		img.Pix[4*j] = b(chw[j])
		img.Pix[4*j+1] = b(chw[plane+j])
		img.Pix[4*j+2] = b(chw[2*plane+j])
		img.Pix[4*j+3] = 255
	}
	return img, nil
}

// toPlanes writes the pixels of img inside r as ch planes of r's size into
// dst, scaled to [0,1] (see the package notes on conversion).
func toPlanes(img image.Image, r image.Rectangle, ch int, dst []float32) {
	plane := r.Dx() * r.Dy()
	if m, ok := img.(*image.YCbCr); ok && ch == 3 {
		// The JPEG decoder's images, the common case, without a call per
		// pixel: the same values as below.
		w := r.Dx()
		for y := r.Min.Y; y < r.Max.Y; y++ {
			o := (y - r.Min.Y) * w
			for x := r.Min.X; x < r.Max.X; x++ {
				cr, cg, cb, _ := m.YCbCrAt(x, y).RGBA()
				dst[o], dst[plane+o], dst[2*plane+o] = float32(cr)/65535, float32(cg)/65535, float32(cb)/65535
				o++
			}
		}
		return
	}
	forPixels(r, rgbaFunc(img), func(o int, cr, cg, cb uint32) {
		switch {
		case ch == 3:
			dst[o] = float32(cr) / 65535
			dst[plane+o] = float32(cg) / 65535
			dst[2*plane+o] = float32(cb) / 65535
		case cr == cg && cg == cb:
			dst[o] = float32(cr) / 65535
		default:
			l := (0.299*float64(cr) + 0.587*float64(cg) + 0.114*float64(cb)) / 65535
			dst[o] = float32(min(max(l, 0), 1))
		}
	})
}

// forPixels calls set for every pixel of r with its offset in an r-sized
// row-major plane and its colour as at reads it.
func forPixels[T any](r image.Rectangle, at func(x, y int) (T, T, T), set func(o int, r, g, b T)) {
	w := r.Dx()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb := at(x, y)
			set((y-r.Min.Y)*w+x-r.Min.X, cr, cg, cb)
		}
	}
}

// rgbaFunc returns a reader of 16-bit premultiplied R, G, B, with fast paths
// (no per-pixel interface allocation) for the types the PNG and JPEG decoders
// produce most often.
func rgbaFunc(img image.Image) func(x, y int) (r, g, b uint32) {
	switch m := img.(type) {
	case *image.Gray:
		return rgbaOf(m.GrayAt)
	case *image.YCbCr:
		return rgbaOf(m.YCbCrAt)
	case *image.RGBA:
		return rgbaOf(m.RGBAAt)
	case *image.NRGBA:
		return rgbaOf(m.NRGBAAt)
	}
	return rgbaOf(img.At)
}

// rgbaOf turns a pixel reader of a concrete colour type into an R, G, B
// reader.
func rgbaOf[C color.Color](at func(x, y int) C) func(x, y int) (r, g, b uint32) {
	return func(x, y int) (uint32, uint32, uint32) {
		r, g, b, _ := at(x, y).RGBA()
		return r, g, b
	}
}

// tap is one input pixel's weight in an output pixel.
type tap struct {
	i int
	w float32
}

// resampleWeights gives, for each of the dst output positions, the input
// positions (of src) and weights that make it: area averaging when
// shrinking, linear interpolation between pixel centres when growing. Each
// output's weights sum to 1.
func resampleWeights(src, dst int) [][]tap {
	out := make([][]tap, dst)
	scale := float64(src) / float64(dst)
	for i := range out {
		var taps []tap
		if dst <= src {
			lo, hi := float64(i)*scale, float64(i+1)*scale
			sum := 0.0
			var ws []float64
			j0 := int(math.Floor(lo))
			for j := j0; j < src && float64(j) < hi; j++ {
				ov := math.Min(hi, float64(j+1)) - math.Max(lo, float64(j))
				if ov <= 1e-9 {
					ov = 0
				}
				ws = append(ws, ov)
				sum += ov
			}
			for k, wt := range ws {
				if wt > 0 {
					taps = append(taps, tap{j0 + k, float32(wt / sum)})
				}
			}
		} else {
			c := (float64(i)+0.5)*scale - 0.5
			j := int(math.Floor(c))
			f := c - float64(j)
			a, b := clampInt(j, 0, src-1), clampInt(j+1, 0, src-1)
			if a == b || f == 0 {
				taps = []tap{{a, 1}}
			} else {
				taps = []tap{{a, float32(1 - f)}, {b, float32(f)}}
			}
		}
		out[i] = taps
	}
	return out
}

func clampInt(v, lo, hi int) int { return min(max(v, lo), hi) }

// resample maps the ch planes of the square crop of img (side s) to ch
// planes of n×n in dst, separably with resampleWeights: each row of the
// crop is converted (toPlanes) and resampled horizontally a strip of rows
// at a time (so that the crop is never held whole in float32), then each
// column vertically.
func resample(img image.Image, crop image.Rectangle, ch, n int, dst []float32) {
	s := crop.Dx()
	wt := resampleWeights(s, n)
	tmp := make([]float32, ch*s*n) // per channel, s rows of n
	const strip = 16
	buf := make([]float32, ch*strip*s)
	for y0 := 0; y0 < s; y0 += strip {
		rows := min(strip, s-y0)
		b := buf[:ch*rows*s]
		toPlanes(img, image.Rect(crop.Min.X, crop.Min.Y+y0, crop.Max.X, crop.Min.Y+y0+rows), ch, b)
		for c := 0; c < ch; c++ {
			for yy := 0; yy < rows; yy++ {
				row := b[(c*rows+yy)*s : (c*rows+yy+1)*s]
				out := tmp[(c*s+y0+yy)*n : (c*s+y0+yy+1)*n]
				for x, taps := range wt {
					var v float32
					for _, t := range taps {
						v += t.w * row[t.i]
					}
					out[x] = v
				}
			}
		}
	}
	for c := 0; c < ch; c++ {
		in, out := tmp[c*s*n:(c+1)*s*n], dst[c*n*n:(c+1)*n*n]
		for y, taps := range wt {
			for x := 0; x < n; x++ {
				var v float32
				for _, t := range taps {
					v += t.w * in[t.i*n+x]
				}
				out[y*n+x] = min(max(v, 0), 1)
			}
		}
	}
}
