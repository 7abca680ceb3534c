package preprocess

import (
	"image"
)

// yccToRGB converts a JPEG YCbCr sample to RGB as libjpeg's
// ycc_rgb_convert does: 16-bit fixed-point JFIF coefficients, R and B
// rounded to nearest, G rounded down from a half added to the Cb term.
// (The standard library's color.YCbCrToRGB rounds differently: a third of
// a photo's red samples differ from PIL's by one.)
func yccToRGB(y, cb, cr uint8) (r, g, b uint8) {
	const half = 1 << 15
	x, z := int32(cb)-128, int32(cr)-128
	yy := int32(y)
	clamp := func(v int32) uint8 { return uint8(min(max(v, 0), 255)) }
	r = clamp(yy + (91881*z+half)>>16)
	g = clamp(yy + (-22554*x+half-46802*z)>>16)
	b = clamp(yy + (116130*x+half)>>16)
	return r, g, b
}

// upsampleChroma returns the full-resolution Cb and Cr planes (W×H each) of
// a JPEG image whose chroma is subsampled 2:1 horizontally (4:2:2) or in
// both directions (4:2:0), interpolated as libjpeg's default "fancy"
// upsampling does (what PIL decodes with): each output sample is the
// triangle-weighted mix (3/4 nearer, 1/4 farther) of the chroma samples
// around it, edges replicated, rounded as libjpeg rounds. ok is false for other subsamplings (read sample by sample).
func upsampleChroma(m *image.YCbCr) (cb, cr []uint8, ok bool) {
	var vert bool
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio420:
		vert = true
	case image.YCbCrSubsampleRatio422:
	default:
		return nil, nil, false
	}
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	cw, ch := (w+1)/2, h
	if vert {
		ch = (h + 1) / 2
	}
	// The chroma samples of the image, cw×ch from the image's origin.
	x0, y0 := b.Min.X/2, b.Min.Y
	if vert {
		y0 = b.Min.Y / 2
	}
	// libjpeg's rounding: 4:2:0 adds 8 then 7 (of 16), 4:2:2 adds 1 then 2
	// (of 4, here scaled to 16).
	roundEven, roundOdd := int32(4), int32(8)
	if vert {
		roundEven, roundOdd = 8, 7
	}
	plane := func(src []uint8) []uint8 {
		out := make([]uint8, w*h)
		at := func(x, y int) int32 {
			x, y = min(max(x, 0), cw-1), min(max(y, 0), ch-1)
			return int32(src[(y0+y)*m.CStride+x0+x])
		}
		row := make([]int32, cw) // column sums of the row pair (×4)
		for y := 0; y < h; y++ {
			cy := y
			if vert {
				// Output row y lies between chroma rows y/2 and y/2 ± 1: the
				// nearer counts 3, the farther 1.
				cy = y / 2
				far := cy - 1
				if y%2 == 1 {
					far = cy + 1
				}
				for x := range row {
					row[x] = 3*at(x, cy) + at(x, far)
				}
			} else {
				for x := range row {
					row[x] = 4 * at(x, cy)
				}
			}
			col := func(x int) int32 { return row[min(max(x, 0), cw-1)] }
			out := out[y*w : (y+1)*w]
			for x := 0; x < w; x++ {
				c := x / 2
				if x%2 == 0 {
					out[x] = uint8((3*col(c) + col(c-1) + roundEven) >> 4)
				} else {
					out[x] = uint8((3*col(c) + col(c+1) + roundOdd) >> 4)
				}
			}
		}
		return out
	}
	return plane(m.Cb), plane(m.Cr), true
}

// jpegRGB returns a reader of the pixels of a JPEG image as libjpeg gives
// them: chroma subsampled 4:2:0 or 4:2:2 upsampled as libjpeg does, colour
// converted as libjpeg does.
func jpegRGB(m *image.YCbCr) func(x, y int) (r, g, b uint8) {
	cb, cr, ok := upsampleChroma(m)
	if !ok {
		return func(x, y int) (uint8, uint8, uint8) {
			c := m.YCbCrAt(x, y)
			return yccToRGB(c.Y, c.Cb, c.Cr)
		}
	}
	w := m.Rect.Dx()
	return func(x, y int) (uint8, uint8, uint8) {
		i := (y-m.Rect.Min.Y)*w + x - m.Rect.Min.X
		return yccToRGB(m.Y[m.YOffset(x, y)], cb[i], cr[i])
	}
}
