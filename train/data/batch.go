package data

import (
	"fmt"
	"math"
	"math/rand"

	"github.com/vitgo/vit/model/preprocess"
)

// MinStd is the floor of every Std that ComputeNormalization returns, so that
// a constant channel does not divide by zero.
const MinStd = 1e-6

// ComputeNormalization returns the mean and the (population) standard
// deviation of each channel over every pixel of every image of d,
// accumulated in float64. Std is never below MinStd. An empty split gives
// mean 0 and std 1.
func ComputeNormalization(d *Dataset) preprocess.Normalization {
	return ComputeNormalizationOf(d, nil)
}

// ComputeNormalizationOf is ComputeNormalization over the images idx of d
// only (all of them if idx is nil): a training split without its held-out
// validation images.
func ComputeNormalizationOf(d *Dataset, idx []int) preprocess.Normalization {
	n := preprocess.Normalization{Mean: make([]float32, d.C), Std: make([]float32, d.C)}
	images := d.N
	if idx != nil {
		images = len(idx)
	}
	image := func(k int) int {
		if idx == nil {
			return k
		}
		return idx[k]
	}
	plane := d.H * d.W
	count := float64(images) * float64(plane)
	for c := 0; c < d.C; c++ {
		if count == 0 {
			n.Std[c] = 1
			continue
		}
		// Two passes (mean, then squared deviations): no cancellation.
		var sum float64
		for k := 0; k < images; k++ {
			i := image(k)
			for _, v := range d.Images[(i*d.C+c)*plane : (i*d.C+c+1)*plane] {
				sum += float64(v)
			}
		}
		mean := sum / count
		var sq float64
		for k := 0; k < images; k++ {
			i := image(k)
			for _, v := range d.Images[(i*d.C+c)*plane : (i*d.C+c+1)*plane] {
				dv := float64(v) - mean
				sq += dv * dv
			}
		}
		n.Mean[c] = float32(mean)
		n.Std[c] = float32(max(math.Sqrt(sq/count), MinStd))
	}
	return n
}

// Augment configures the random augmentation that Batch applies to each
// image, in this order:
//
//  1. Random crop: the normalised image is padded by Pad pixels on every side
//     with zeros — zero in normalised space, i.e. as if padded with the
//     channel's mean pixel value — and an H×W window is cut from the padded
//     (H+2·Pad)×(W+2·Pad) image at offsets dy, dx drawn uniformly from
//     0..2·Pad (dy first). Pad = 0 leaves the image in place and draws nothing.
//
//  2. Horizontal flip: with Flip, the image is mirrored left-right with
//     probability 0.5 (one draw, after the crop's).
//
//  3. An automatic augmentation policy (Policy: PolicyRandAugment with Ops
//     operations at bin Magnitude, or PolicyTrivialAugment; see
//     augment.go), on the raw image, before normalisation.
//
//  4. Random erasing, with probability Erase, on the normalised image.
//
// Draws come from rng in this order, image by image (crop, flip, policy,
// erasing), and only for the steps that are on, so a batch depends only on
// the rng's state and the old steps alone draw what they always did.
type Augment struct {
	Pad            int
	Flip           bool
	Policy         string
	Ops, Magnitude int
	Erase          float64
}

// Batch writes the normalised images idx of d into dst (len(idx)·C·H·W
// values, image by image, each C×H×W) and their labels into labels
// (len(idx)). With aug != nil each image gets a random crop and/or flip drawn
// from rng (see Augment); with aug == nil, rng is not used and may be nil.
// The result depends only on the arguments and the rng's state.
//
// Batch panics, with a message starting "data:", when it is called with
// inconsistent arguments — wrong dst or labels length, an index out of range,
// a Normalization of the wrong number of channels, a negative pad or a nil
// rng with aug — which are programming errors, not user input.
func (d *Dataset) Batch(dst []float32, labels []int, idx []int, norm preprocess.Normalization, aug *Augment, rng *rand.Rand) {
	chw := d.C * d.H * d.W
	if len(dst) != len(idx)*chw {
		panic(fmt.Sprintf("data: Batch: dst has %d values, expected %d (%d images of %d×%d×%d)", len(dst), len(idx)*chw, len(idx), d.C, d.H, d.W))
	}
	if len(labels) != len(idx) {
		panic(fmt.Sprintf("data: Batch: labels has %d entries, expected %d (one per index)", len(labels), len(idx)))
	}
	if len(norm.Mean) != d.C || len(norm.Std) != d.C {
		panic(fmt.Sprintf("data: Batch: normalization has %d means and %d stds, expected %d (one per channel)", len(norm.Mean), len(norm.Std), d.C))
	}
	if aug != nil {
		if aug.Pad < 0 {
			panic(fmt.Sprintf("data: Batch: augmentation pad %d, expected ≥ 0", aug.Pad))
		}
		if rng == nil && (aug.Pad > 0 || aug.Flip || aug.Policy != "" || aug.Erase > 0) {
			panic("data: Batch: augmentation requested with a nil rng")
		}
	}
	var raw, tmp []float32 // an image being augmented, and scratch
	if aug != nil && aug.Policy != "" {
		raw, tmp = make([]float32, chw), make([]float32, chw)
	}
	for k, i := range idx {
		if i < 0 || i >= d.N {
			panic(fmt.Sprintf("data: Batch: index %d (position %d) out of range, expected 0..%d", i, k, d.N-1))
		}
		labels[k] = d.Labels[i]
		out := dst[k*chw : (k+1)*chw]
		src := d.Image(i)
		dy, dx, flip := 0, 0, false
		if aug != nil {
			if aug.Pad > 0 {
				dy = rng.Intn(2*aug.Pad+1) - aug.Pad
				dx = rng.Intn(2*aug.Pad+1) - aug.Pad
			}
			if aug.Flip {
				flip = rng.Intn(2) == 1
			}
			if aug.Policy != "" {
				copy(raw, src)
				applyPolicy(raw, tmp, d.C, d.H, d.W, aug, rng)
				src = raw
			}
		}
		d.place(out, src, norm, dy, dx, flip)
		if aug != nil && aug.Erase > 0 {
			erase(out, d.C, d.H, d.W, aug.Erase, rng)
		}
	}
}

// place writes the normalised src into out, shifted so that out(y, x) =
// src(y+dy, x+dx) (0 where that is outside the image), then mirrored
// left-right if flip.
func (d *Dataset) place(out, src []float32, norm preprocess.Normalization, dy, dx int, flip bool) {
	H, W := d.H, d.W
	plane := H * W
	for c := 0; c < d.C; c++ {
		m, s := norm.Mean[c], norm.Std[c]
		in := src[c*plane : (c+1)*plane]
		o := out[c*plane : (c+1)*plane]
		for y := 0; y < H; y++ {
			row := o[y*W : (y+1)*W]
			sy := y + dy
			if sy < 0 || sy >= H {
				clear(row)
				continue
			}
			srow := in[sy*W : (sy+1)*W]
			for x := 0; x < W; x++ {
				sx := x + dx
				if flip {
					sx = W - 1 - x + dx
				}
				if sx < 0 || sx >= W {
					row[x] = 0
					continue
				}
				row[x] = (srow[sx] - m) / s
			}
		}
	}
}
