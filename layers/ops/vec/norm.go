package vec

import "math"

// Row kernels of LayerNorm in float32 (sums in eight float32 lanes with the
// assembly, one float32 accumulator in the pure-Go code).

// moments returns the mean and the (biased) variance of x, in two passes.
func moments(x []float32) (mean, variance float32) {
	n := len(x)
	if n == 0 {
		return 0, 0
	}
	var s, q float32
	if useAsm {
		s, _ = sumDev(&x[0], n, 0)
		mean = s / float32(n)
		s, q = sumDev(&x[0], n, mean)
	} else {
		for _, v := range x {
			s += v
		}
		mean = s / float32(n)
		s = 0
		for _, v := range x {
			d := v - mean
			s += d
			q += d * d
		}
	}
	// s (the sum of deviations, zero but for rounding) corrects the mean.
	c := s / float32(n)
	return mean + c, max(q/float32(n)-c*c, 0)
}

// MeanRStd returns the mean of x and 1/√(variance+eps): LayerNorm's row
// statistics.
func MeanRStd(x []float32, eps float32) (mean, rstd float32) {
	m, v := moments(x)
	return m, invStd(v, eps)
}

// invStd returns 1/√(variance+eps).
func invStd(variance, eps float32) float32 {
	return float32(1 / math.Sqrt(float64(variance)+float64(eps)))
}

// NormAffine sets y[j] = (x[j]−m)·s·g[j] + b[j].
func NormAffine(y, x, g, b []float32, m, s float32) {
	n := len(x)
	if n == 0 {
		return
	}
	_, _, _ = y[n-1], g[n-1], b[n-1]
	if useAsm {
		normAffine(&y[0], &x[0], &g[0], &b[0], n, m, s)
		return
	}
	for j, v := range x {
		y[j] = (v-m)*s*g[j] + b[j]
	}
}

// LNBackwardSums returns Σ dy·g and Σ dy·g·(x−m).
func LNBackwardSums(x, dy, g []float32, m float32) (sg, sgx float32) {
	n := len(x)
	if n == 0 {
		return 0, 0
	}
	_, _ = dy[n-1], g[n-1]
	if useAsm {
		return lnBwdSums(&x[0], &dy[0], &g[0], n, m)
	}
	for j, v := range x {
		t := dy[j] * g[j]
		sg += t
		sgx += t * (v - m)
	}
	return sg, sgx
}

// LNBackwardOut sets dx[j] = c1·dy[j]·g[j] + c3·(x[j]−m) + c2.
func LNBackwardOut(dx, x, dy, g []float32, m, c1, c2, c3 float32) {
	n := len(x)
	if n == 0 {
		return
	}
	_, _, _ = dx[n-1], dy[n-1], g[n-1]
	if useAsm {
		lnBwdOut(&dx[0], &x[0], &dy[0], &g[0], n, m, c1, c2, c3)
		return
	}
	for j, v := range x {
		dx[j] = c1*dy[j]*g[j] + c3*(v-m) + c2
	}
}

// AccXhatDy adds dy[j]·(x[j]−m)·s to acc[j].
func AccXhatDy(acc, x, dy []float32, m, s float32) {
	n := len(x)
	if n == 0 {
		return
	}
	_, _ = acc[n-1], dy[n-1]
	if useAsm {
		accXhatDy(&acc[0], &x[0], &dy[0], n, m, s)
		return
	}
	for j, v := range x {
		acc[j] += dy[j] * (v - m) * s
	}
}
