package data

import (
	"fmt"
	"math"
	"math/rand"
)

// Mix is Mixup and CutMix over a batch, as timm's Mixup does in batch
// mode: each image is mixed with the image at the mirrored position of the
// batch (the batch reversed), and so are the soft targets.
//   - Mixup (alpha Mixup > 0): x ← λ·x + (1 − λ)·x_rev, λ ~ Beta(Mixup, Mixup).
//   - CutMix (alpha CutMix > 0): a box of about (1 − λ) of the image,
//     centred uniformly (and clipped to the image), is taken from x_rev,
//     λ ~ Beta(CutMix, CutMix) then set to the share of the image left.
//
// With both on, each batch takes one of them with probability 1/2. The
// targets become λ·y + (1 − λ)·y_rev, so label smoothing composes.
type Mix struct {
	Mixup, CutMix float64
}

// On reports whether m mixes anything.
func (m Mix) On() bool { return m.Mixup > 0 || m.CutMix > 0 }

// Check reports a negative or non-finite alpha.
func (m Mix) Check() error {
	for _, a := range []float64{m.Mixup, m.CutMix} {
		if !(a >= 0) || math.IsInf(a, 0) {
			return fmt.Errorf("data: mixing alphas must be ≥ 0, got mixup %v, cutmix %v", m.Mixup, m.CutMix)
		}
	}
	return nil
}

// Apply mixes n images x (each c×h×w) and their targets y (each k values)
// in place, drawing from rng, and returns λ, the share of each image's own
// content. Draws: the choice (only with both on), λ, then CutMix's box
// centre (y, then x).
func (m Mix) Apply(x, y []float32, n, c, h, w, k int, rng *rand.Rand) float64 {
	if !m.On() {
		return 1
	}
	cut := m.CutMix > 0
	if m.Mixup > 0 && m.CutMix > 0 {
		cut = rng.Float64() < 0.5
	}
	alpha := m.Mixup
	if cut {
		alpha = m.CutMix
	}
	lam := betaSym(alpha, rng)
	chw := c * h * w
	if !cut {
		a, b := float32(lam), float32(1-lam)
		for i := 0; i < n/2; i++ {
			p, q := x[i*chw:(i+1)*chw], x[(n-1-i)*chw:(n-i)*chw]
			for j := range p {
				p[j], q[j] = a*p[j]+b*q[j], a*q[j]+b*p[j]
			}
		}
	} else {
		r := math.Sqrt(1 - lam)
		ch, cw := int(float64(h)*r), int(float64(w)*r)
		cy, cx := rng.Intn(h), rng.Intn(w)
		y0, y1 := clampInt(cy-ch/2, 0, h), clampInt(cy+ch/2, 0, h)
		x0, x1 := clampInt(cx-cw/2, 0, w), clampInt(cx+cw/2, 0, w)
		for i := 0; i < n/2; i++ {
			p, q := x[i*chw:(i+1)*chw], x[(n-1-i)*chw:(n-i)*chw]
			for ch := 0; ch < c; ch++ {
				for yy := y0; yy < y1; yy++ {
					o := ch*h*w + yy*w
					for xx := x0; xx < x1; xx++ {
						p[o+xx], q[o+xx] = q[o+xx], p[o+xx]
					}
				}
			}
		}
		lam = 1 - float64((y1-y0)*(x1-x0))/float64(h*w)
	}
	a, b := float32(lam), float32(1-lam)
	for i := 0; i < n/2; i++ {
		p, q := y[i*k:(i+1)*k], y[(n-1-i)*k:(n-i)*k]
		for j := range p {
			p[j], q[j] = a*p[j]+b*q[j], a*q[j]+b*p[j]
		}
	}
	return lam
}

func clampInt(v, lo, hi int) int { return min(max(v, lo), hi) }

// betaSym draws from Beta(a, a) as X/(X+Y) with X, Y ~ Gamma(a).
func betaSym(a float64, rng *rand.Rand) float64 {
	x, y := gamma(a, rng), gamma(a, rng)
	if x+y == 0 {
		return 0.5
	}
	return x / (x + y)
}

// gamma draws from Gamma(a, 1) by Marsaglia and Tsang's method (for a < 1,
// from Gamma(a+1) times U^(1/a)).
func gamma(a float64, rng *rand.Rand) float64 {
	if a < 1 {
		u := rng.Float64()
		return gamma(a+1, rng) * math.Pow(u, 1/a)
	}
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		var x, v float64
		for v <= 0 {
			x = rng.NormFloat64()
			v = 1 + c*x
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
