package data

import (
	"fmt"
	"math"
	"math/rand"
	"strconv"
	"strings"
)

// Policies of automatic augmentation (Augment.Policy), as torchvision
// defines them (transforms.RandAugment, transforms.TrivialAugmentWide):
// each image gets Ops operations (TrivialAugment: one) drawn uniformly
// from the list below, each at a magnitude taken from 31 bins (RandAugment:
// bin Magnitude; TrivialAugment: a bin drawn uniformly), negated with
// probability 1/2 for the signed ones. Geometric operations sample the
// nearest pixel and fill with black; photometric ones work on 8-bit levels
// as PIL does. Gray images skip Color (saturation), a no-op on them.
const (
	PolicyRandAugment    = "randaugment"
	PolicyTrivialAugment = "trivialaugment"
)

// op is one augmentation operation.
type op int

const (
	opIdentity op = iota
	opShearX
	opShearY
	opTranslateX
	opTranslateY
	opRotate
	opBrightness
	opColor
	opContrast
	opSharpness
	opPosterize
	opSolarize
	opAutoContrast
	opEqualize
	numOps
)

var opNames = [numOps]string{"Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
	"Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize"}

func (o op) String() string { return opNames[o] }

const magnitudeBins = 31

// magnitude returns op's magnitude at bin (0..30) for an h×w image and
// whether it is signed: torchvision's augmentation spaces.
func (o op) magnitude(policy string, bin, h, w int) (float64, bool) {
	lin := func(hi float64) float64 { return hi * float64(bin) / (magnitudeBins - 1) }
	wide := policy == PolicyTrivialAugment
	switch o {
	case opShearX, opShearY:
		if wide {
			return lin(0.99), true
		}
		return lin(0.3), true
	case opTranslateX, opTranslateY:
		if wide {
			return lin(32), true
		}
		size := w
		if o == opTranslateY {
			size = h
		}
		return lin(150.0 / 331 * float64(size)), true
	case opRotate:
		if wide {
			return lin(135), true
		}
		return lin(30), true
	case opBrightness, opColor, opContrast, opSharpness:
		if wide {
			return lin(0.99), true
		}
		return lin(0.9), true
	case opPosterize:
		div := 4.0 // 8 down to 4 bits
		if wide {
			div = 6 // 8 down to 2
		}
		return 8 - math.RoundToEven(float64(bin)/((magnitudeBins-1)/div)), false
	case opSolarize:
		return 255 * (1 - float64(bin)/(magnitudeBins-1)), false
	}
	return 0, false
}

// ParsePolicy reads a policy as cmd/train takes it: "randaugment" (2
// operations at magnitude 9), "randaugment-nN-mM", "trivialaugment", or ""
// / "none" for no policy.
func ParsePolicy(s string) (policy string, ops, magnitude int, err error) {
	switch {
	case s == "" || s == "none":
		return "", 0, 0, nil
	case s == PolicyTrivialAugment:
		return s, 1, 0, nil
	case s == PolicyRandAugment:
		return s, 2, 9, nil
	case strings.HasPrefix(s, PolicyRandAugment+"-"):
		ops, magnitude = 2, 9
		for _, part := range strings.Split(strings.TrimPrefix(s, PolicyRandAugment+"-"), "-") {
			if len(part) < 2 {
				return "", 0, 0, fmt.Errorf("augmentation %q: bad part %q, expected nN or mM", s, part)
			}
			v, err := strconv.Atoi(part[1:])
			switch {
			case err != nil:
				return "", 0, 0, fmt.Errorf("augmentation %q: bad number in %q", s, part)
			case part[0] == 'n' && v >= 1 && v <= 10:
				ops = v
			case part[0] == 'm' && v >= 0 && v < magnitudeBins:
				magnitude = v
			default:
				return "", 0, 0, fmt.Errorf("augmentation %q: %q out of range (n1..n10, m0..m30)", s, part)
			}
		}
		return PolicyRandAugment, ops, magnitude, nil
	}
	return "", 0, 0, fmt.Errorf("unknown augmentation %q, expected randaugment, randaugment-nN-mM, trivialaugment or none", s)
}

// allOps are the operations of a policy; grayOps those for one channel
// (all but Color).
var allOps, grayOps = func() (all [numOps]op, gray [numOps - 1]op) {
	for o := op(0); o < numOps; o++ {
		all[o] = o
	}
	copy(gray[:], all[:opColor])
	copy(gray[opColor:], all[opColor+1:])
	return
}()

// applyPolicy applies aug's policy to one raw image (C×H×W values in
// [0, 1]) in place, drawing from rng; tmp holds at least C·H·W values.
func applyPolicy(img, tmp []float32, c, h, w int, aug *Augment, rng *rand.Rand) {
	ops := allOps[:]
	if c == 1 {
		ops = grayOps[:]
	}
	for n := 0; n < aug.Ops; n++ {
		o := ops[rng.Intn(len(ops))]
		bin := aug.Magnitude
		if aug.Policy == PolicyTrivialAugment {
			bin = rng.Intn(magnitudeBins)
		}
		mag, signed := o.magnitude(aug.Policy, bin, h, w)
		if signed && rng.Intn(2) == 1 {
			mag = -mag
		}
		applyOp(o, mag, img, tmp, c, h, w)
	}
}

// applyOp applies one operation at magnitude mag.
func applyOp(o op, mag float64, img, tmp []float32, c, h, w int) {
	switch o {
	case opShearX:
		affine(img, tmp, c, h, w, 0, [2]float64{}, [2]float64{math.Atan(mag) * 180 / math.Pi, 0}, 0, 0)
	case opShearY:
		affine(img, tmp, c, h, w, 0, [2]float64{}, [2]float64{0, math.Atan(mag) * 180 / math.Pi}, 0, 0)
	case opTranslateX:
		affine(img, tmp, c, h, w, 0, [2]float64{float64(int(mag)), 0}, [2]float64{}, float64(w)/2, float64(h)/2)
	case opTranslateY:
		affine(img, tmp, c, h, w, 0, [2]float64{0, float64(int(mag))}, [2]float64{}, float64(w)/2, float64(h)/2)
	case opRotate:
		affine(img, tmp, c, h, w, mag, [2]float64{}, [2]float64{}, float64(w)/2, float64(h)/2)
	case opBrightness:
		blend(img, nil, 1+mag)
	case opColor:
		plane := h * w
		gray := tmp[:plane]
		grayOf(img, gray, c, plane)
		for ch := 0; ch < c; ch++ {
			blend(img[ch*plane:(ch+1)*plane], gray, 1+mag)
		}
	case opContrast:
		plane := h * w
		gray := tmp[:plane]
		grayOf(img, gray, c, plane)
		var sum float64
		for _, v := range gray {
			sum += float64(level(v))
		}
		// PIL: the mean of the 8-bit gray image, rounded to a level.
		mean := float32(math.Floor(sum/float64(plane)+0.5)) / 255
		for i := range gray {
			gray[i] = mean
		}
		for ch := 0; ch < c; ch++ {
			blend(img[ch*plane:(ch+1)*plane], gray, 1+mag)
		}
	case opSharpness:
		sharpness(img, tmp, c, h, w, 1+mag)
	case opPosterize:
		mask := uint8(0xFF) << (8 - uint(mag))
		levels(img, func(v uint8) uint8 { return v & mask })
	case opSolarize:
		t := mag
		levels(img, func(v uint8) uint8 {
			if float64(v) >= t {
				return 255 - v
			}
			return v
		})
	case opAutoContrast:
		plane := h * w
		for ch := 0; ch < c; ch++ {
			autoContrast(img[ch*plane : (ch+1)*plane])
		}
	case opEqualize:
		plane := h * w
		for ch := 0; ch < c; ch++ {
			equalize(img[ch*plane : (ch+1)*plane])
		}
	}
}

// level is the 8-bit level of a value in [0, 1].
func level(v float32) uint8 {
	return uint8(math.Min(255, math.Max(0, math.Floor(float64(v)*255+0.5))))
}

// levels maps every value through f on 8-bit levels.
func levels(x []float32, f func(uint8) uint8) {
	for i, v := range x {
		x[i] = float32(f(level(v))) / 255
	}
}

// blend sets x to the 8-bit rounding of deg + f·(x − deg), clamped to
// [0, 1], as PIL's ImageEnhance does; deg nil is black.
func blend(x, deg []float32, f float64) {
	for i, v := range x {
		d := 0.0
		if deg != nil {
			d = float64(deg[i])
		}
		r := (d + f*(float64(v)-d)) * 255
		x[i] = float32(math.Min(255, math.Max(0, math.Floor(r+0.5)))) / 255
	}
}

// grayOf writes the luma of img into gray (PIL's L conversion for three
// channels; the channel itself for one).
func grayOf(img, gray []float32, c, plane int) {
	if c != 3 {
		copy(gray, img[:plane])
		return
	}
	for i := range gray {
		r, g, b := float64(level(img[i])), float64(level(img[plane+i])), float64(level(img[2*plane+i]))
		gray[i] = float32(math.Floor((r*299+g*587+b*114)/1000+0.5)) / 255
	}
}

// sharpness blends each channel with its 3×3 smoothing (PIL's SMOOTH
// kernel, 1 1 1 / 1 5 1 / 1 1 1 over 13; the border left as it is).
func sharpness(img, tmp []float32, c, h, w int, f float64) {
	plane := h * w
	deg := tmp[:plane]
	for ch := 0; ch < c; ch++ {
		x := img[ch*plane : (ch+1)*plane]
		copy(deg, x)
		for y := 1; y < h-1; y++ {
			for xx := 1; xx < w-1; xx++ {
				var s float64
				for dy := -1; dy <= 1; dy++ {
					for dx := -1; dx <= 1; dx++ {
						k := 1.0
						if dy == 0 && dx == 0 {
							k = 5
						}
						s += k * float64(level(x[(y+dy)*w+xx+dx]))
					}
				}
				deg[y*w+xx] = float32(math.Floor(s/13+0.5)) / 255
			}
		}
		blend(x, deg, f)
	}
}

// autoContrast stretches a channel's levels to 0..255.
func autoContrast(x []float32) {
	lo, hi := uint8(255), uint8(0)
	for _, v := range x {
		l := level(v)
		lo, hi = min(lo, l), max(hi, l)
	}
	if hi <= lo {
		return
	}
	scale := 255 / float64(hi-lo)
	levels(x, func(v uint8) uint8 { // PIL truncates
		return uint8(math.Min(255, math.Max(0, math.Floor((float64(v)-float64(lo))*scale))))
	})
}

// equalize equalises a channel's histogram as PIL's ImageOps.equalize.
func equalize(x []float32) {
	var hist [256]int
	for _, v := range x {
		hist[level(v)]++
	}
	last := 255
	for last > 0 && hist[last] == 0 {
		last--
	}
	step := (len(x) - hist[last]) / 255
	if step == 0 {
		return
	}
	var lut [256]uint8
	n := step / 2
	for i := range lut {
		lut[i] = uint8(min(255, n/step))
		n += hist[i]
	}
	levels(x, func(v uint8) uint8 { return lut[v] })
}

// affine resamples img (nearest pixel, black outside) through the inverse
// of torchvision's affine transform: rotation by angle degrees
// (counter-clockwise), translation t, shear (degrees, x then y) about the
// centre (cx, cy), in coordinates where pixel (i, j) spans [j, j+1)×[i, i+1).
func affine(img, tmp []float32, c, h, w int, angle float64, t, shear [2]float64, cx, cy float64) {
	rot := -angle * math.Pi / 180 // torchvision rotates by passing −angle
	sx, sy := shear[0]*math.Pi/180, shear[1]*math.Pi/180
	a := math.Cos(rot-sy) / math.Cos(sy)
	b := -math.Cos(rot-sy)*math.Tan(sx)/math.Cos(sy) - math.Sin(rot)
	cc := math.Sin(rot-sy) / math.Cos(sy)
	d := -math.Sin(rot-sy)*math.Tan(sx)/math.Cos(sy) + math.Cos(rot)
	// Inverse of [[a b] [c d]] (determinant 1), then the translations.
	m := [6]float64{d, -b, 0, -cc, a, 0}
	m[2] += m[0]*(-cx-t[0]) + m[1]*(-cy-t[1]) + cx
	m[5] += m[3]*(-cx-t[0]) + m[4]*(-cy-t[1]) + cy
	plane := h * w
	for ch := 0; ch < c; ch++ {
		src := img[ch*plane : (ch+1)*plane]
		out := tmp[:plane]
		for y := 0; y < h; y++ {
			py := float64(y) + 0.5
			for x := 0; x < w; x++ {
				px := float64(x) + 0.5
				ix := int(math.Floor(m[0]*px + m[1]*py + m[2]))
				iy := int(math.Floor(m[3]*px + m[4]*py + m[5]))
				if ix < 0 || ix >= w || iy < 0 || iy >= h {
					out[y*w+x] = 0
					continue
				}
				out[y*w+x] = src[iy*w+ix]
			}
		}
		copy(src, out)
	}
}

// erase applies random erasing (torchvision's RandomErasing with value 0:
// the mean pixel, in normalised space) to one normalised image with
// probability p: a rectangle of 2–33% of the area with aspect ratio in
// [0.3, 3.3] (log-uniform), ten tries to fit it.
func erase(out []float32, c, h, w int, p float64, rng *rand.Rand) {
	if rng.Float64() >= p {
		return
	}
	area := float64(h * w)
	logLo, logHi := math.Log(0.3), math.Log(3.3)
	for try := 0; try < 10; try++ {
		target := area * (0.02 + rng.Float64()*(1.0/3-0.02))
		ratio := math.Exp(logLo + rng.Float64()*(logHi-logLo))
		eh := int(math.Round(math.Sqrt(target * ratio)))
		ew := int(math.Round(math.Sqrt(target / ratio)))
		if eh >= h || ew >= w || eh < 1 || ew < 1 {
			continue
		}
		i, j := rng.Intn(h-eh+1), rng.Intn(w-ew+1)
		plane := h * w
		for ch := 0; ch < c; ch++ {
			for y := i; y < i+eh; y++ {
				clear(out[ch*plane+y*w+j : ch*plane+y*w+j+ew])
			}
		}
		return
	}
}
