package layers

import (
	"math"
	"math/rand"
)

// Init fills a new parameter's data.
type Init func(rng *rand.Rand, data []float64)

// TruncNormal draws from a normal distribution truncated at ±2 standard
// deviations and rescaled so that its standard deviation is std, as JAX's
// truncated-normal initialisers (big_vision's ViT) do. (timm truncates at
// ±2 in absolute units, which for std 0.02 is no truncation at all; both
// give weights of standard deviation std.)
func TruncNormal(std float64) Init {
	return func(rng *rand.Rand, d []float64) {
		for i := range d {
			v := rng.NormFloat64()
			for math.Abs(v) > 2 {
				v = rng.NormFloat64()
			}
			d[i] = v * std / truncStd
		}
	}
}

// truncStd is the standard deviation of N(0, 1) truncated to [−2, 2]:
// sqrt(1 − 4φ(2)/(2Φ(2)−1)).
const truncStd = 0.87962566103423978

// Normal draws from N(0, std²).
func Normal(std float64) Init {
	return func(rng *rand.Rand, d []float64) {
		for i := range d {
			d[i] = rng.NormFloat64() * std
		}
	}
}

// Constant sets every element to v.
func Constant(v float64) Init {
	return func(_ *rand.Rand, d []float64) {
		for i := range d {
			d[i] = v
		}
	}
}

// Uniform draws from U(−bound, bound); bound 1/√fan_in is PyTorch's default
// for Linear and Conv2d weights.
func Uniform(bound float64) Init {
	return func(rng *rand.Rand, d []float64) {
		for i := range d {
			d[i] = (2*rng.Float64() - 1) * bound
		}
	}
}
