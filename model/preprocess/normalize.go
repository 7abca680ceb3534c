package preprocess

import (
	"math"

	"github.com/pkg/errors"
)

// Normalization holds per-channel statistics: a pixel x of channel c becomes
// (x − Mean[c]) / Std[c]. Its JSON form, {"Mean": [...], "Std": [...]}, is
// what checkpoints store under the "normalization" metadata key.
type Normalization struct{ Mean, Std []float32 }

// Identity is the normalisation that changes nothing: mean 0 and std 1 for
// each of ch channels.
func Identity(ch int) Normalization {
	n := Normalization{Mean: make([]float32, ch), Std: make([]float32, ch)}
	for i := range n.Std {
		n.Std[i] = 1
	}
	return n
}

// Clone returns a deep copy.
func (n Normalization) Clone() Normalization {
	return Normalization{Mean: append([]float32(nil), n.Mean...), Std: append([]float32(nil), n.Std...)}
}

// Check refuses a normalisation that is not one finite mean and one finite
// positive std for each of ch channels.
func (n Normalization) Check(ch int) error {
	if len(n.Mean) != ch || len(n.Std) != ch {
		return errors.Errorf("preprocess: normalisation has %d means and %d stds, expected %d of each (the model's channels)", len(n.Mean), len(n.Std), ch)
	}
	for i := 0; i < ch; i++ {
		m, sd := float64(n.Mean[i]), float64(n.Std[i])
		if math.IsNaN(m) || math.IsInf(m, 0) || !(sd > 0) || math.IsInf(sd, 0) {
			return errors.Errorf("preprocess: normalisation has mean %v and std %v for channel %d, expected a finite mean and a finite positive std", m, sd, i)
		}
	}
	return nil
}

// Apply normalises, in place, whole images of len(n.Mean) channels of plane
// pixels each, laid out N×C×plane: (x − Mean[c]) / Std[c].
func (n Normalization) Apply(x []float32, plane int) error {
	ch := len(n.Mean)
	if ch == 0 || len(n.Std) != ch || plane < 1 || len(x)%(ch*plane) != 0 {
		return errors.Errorf("preprocess: %d values are not a whole number of images of %d channels of %d pixels", len(x), ch, plane)
	}
	for i := 0; i < len(x); i += plane {
		c := (i / plane) % ch
		m, s := n.Mean[c], n.Std[c]
		for j := i; j < i+plane; j++ {
			x[j] = (x[j] - m) / s
		}
	}
	return nil
}
