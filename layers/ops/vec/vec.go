// Package vec holds the float32 element-wise kernels that dominate a small
// ViT's training step once the matrix products are fast: softmax rows and
// their backward, the exact GELU and its derivative, LayerNorm's row
// statistics, normalisation and backward, and the sums behind bias
// gradients and residual adds. On amd64 with AVX2 and FMA they run eight
// lanes at a time in assembly (vec_amd64.s, written by gen_vec.py); the
// pure-Go code computes the same formulas one element at a time and is used
// elsewhere. The package's tests check the exponential that the softmax
// and GELU kernels inline on its own (exp, expShifted).
//
// The kernels, by caller: SoftmaxRows and SoftmaxBackwardRows (attention),
// GELU and GELUGrad (the MLP), MeanRStd, NormAffine, LNBackwardSums, LNBackwardOut
// and AccXhatDy (LayerNorm), AddTo (bias and scale gradients) and Add
// (residual connections).
//
// Accuracy: e^x within 2 float32 ulps for x in [-87, 88] (inputs beyond are
// clamped to that range, so e^x never overflows to +Inf and very small
// results stay at about 1e-38 instead of going to 0); Φ(x) in GELU within
// 2e-7 absolute (Abramowitz and Stegun 7.1.26). NaN inputs give NaN outputs.
package vec

import "math"

// exp sets dst[i] = e^src[i] for every i < len(src).
func exp(dst, src []float32) {
	expShifted(dst, src, 0)
}

// expShifted sets dst[i] = e^(src[i]−m) for every i < len(src) and returns
// the sum of the results. dst may be src.
func expShifted(dst, src []float32, m float32) float32 {
	n := len(src)
	if n == 0 {
		return 0
	}
	_ = dst[n-1]
	if useAsm {
		return expShiftSum(&dst[0], &src[0], n, m)
	}
	var s float32
	for i, v := range src {
		e := exp32(v - m)
		dst[i] = e
		s += e
	}
	return s
}

// softmax replaces x by softmax(x), subtracting the largest element first.
func softmax(x []float32) {
	SoftmaxRows(x, len(x))
}

// SoftmaxRows replaces each row of n values of x by its softmax,
// subtracting the row's largest element first (len(x) must be a multiple
// of n).
func SoftmaxRows(x []float32, n int) {
	if len(x) == 0 || n <= 0 {
		return
	}
	if len(x)%n != 0 {
		panic("vec: SoftmaxRows: length is not a multiple of the row length")
	}
	SoftmaxRowsTo(x, n, x, n, len(x)/n, n)
}

// SoftmaxRowsTo writes the softmax of each of the rows rows of n values of
// src (row r at src[r*lds:]) into dst (row r at dst[r*ldd:]), with the
// same arithmetic as SoftmaxRows. dst may be src with the same stride.
func SoftmaxRowsTo(dst []float32, ldd int, src []float32, lds int, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	checkRows("SoftmaxRowsTo", dst, ldd, rows, n)
	checkRows("SoftmaxRowsTo", src, lds, rows, n)
	if useAsm {
		softmaxRows(&dst[0], &src[0], rows, n, ldd, lds)
		return
	}
	for r := 0; r < rows; r++ {
		softmaxGo(dst[r*ldd:r*ldd+n], src[r*lds:r*lds+n])
	}
}

// checkRows panics unless x holds rows rows of n values, ld apart.
func checkRows(name string, x []float32, ld, rows, n int) {
	if ld < n || len(x) < (rows-1)*ld+n {
		panic("vec: " + name + ": a matrix is too short for its rows")
	}
}

// softmaxGo writes softmax(src) into dst (which may be src).
func softmaxGo(dst, src []float32) {
	m := src[0]
	for _, v := range src[1:] {
		if v > m {
			m = v
		}
	}
	inv := 1 / expShifted(dst, src, m)
	for i := range dst {
		dst[i] *= inv
	}
}

// GELU sets y[i] = x[i]·Φ(x[i]) for every i < len(x).
func GELU(y, x []float32) {
	n := len(x)
	if n == 0 {
		return
	}
	_ = y[n-1]
	if useAsm {
		geluFwd(&y[0], &x[0], n)
		return
	}
	for i, v := range x {
		cdf, _ := normCDFPDF(v)
		y[i] = v * cdf
	}
}

// GELUGrad sets dx[i] = dy[i]·GELU′(x[i]) = dy[i]·(Φ(x[i]) + x[i]·φ(x[i])).
func GELUGrad(dx, x, dy []float32) {
	n := len(x)
	if n == 0 {
		return
	}
	_, _ = dx[n-1], dy[n-1]
	if useAsm {
		geluBwd(&dx[0], &x[0], &dy[0], n)
		return
	}
	for i, v := range x {
		cdf, pdf := normCDFPDF(v)
		dx[i] = dy[i] * (cdf + v*pdf)
	}
}

// Constants of the exponential (Cephes' single-precision expf).
const (
	expHi  = 88.0
	expLo  = -87.0
	log2e  = 1.4426950408889634
	expC1  = 0.693359375
	expC2  = -2.12194440e-4
	expP0  = 1.9875691500e-4
	expP1  = 1.3981999507e-3
	expP2  = 8.3334519073e-3
	expP3  = 4.1665795894e-2
	expP4  = 1.6666665459e-1
	expP5  = 5.0000001201e-1
	rsqrt2 = 0.7071067811865476
	// Abramowitz and Stegun 7.1.26.
	asP  = 0.3275911
	asA1 = 0.254829592
	asA2 = -0.284496736
	asA3 = 1.421413741
	asA4 = -1.453152027
	asA5 = 1.061405429
	// 1/√(2π)
	rsqrt2pi = 0.3989422804014327
)

// exp32 is the scalar form of the assembly exponential.
func exp32(x float32) float32 {
	if x != x {
		return x
	}
	x = min(max(x, expLo), expHi)
	n := float32(math.RoundToEven(float64(x * log2e)))
	r := x - n*expC1
	r -= n * expC2
	p := float32(expP0)
	p = p*r + expP1
	p = p*r + expP2
	p = p*r + expP3
	p = p*r + expP4
	p = p*r + expP5
	p = p*(r*r) + r + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// normCDFPDF returns Φ(x) and φ(x) = e^(−x²/2)/√(2π), as the assembly does.
func normCDFPDF(x float32) (cdf, pdf float32) {
	z := float32(math.Abs(float64(x))) * rsqrt2
	e := exp32(-z * z)
	t := 1 / (1 + asP*z)
	q := ((((asA5*t+asA4)*t+asA3)*t+asA2)*t + asA1) * t * e * 0.5
	cdf = 1 - q
	if math.Signbit(float64(x)) {
		cdf = q
	}
	return cdf, e * rsqrt2pi
}

// SoftmaxBackwardRows sets, for each row of n values, ds = p·(g − Σ p·g):
// the gradient through a row softmax with output p and output gradient g.
// ds may be g.
func SoftmaxBackwardRows(ds, p, g []float32, n int) {
	if len(p) == 0 || n <= 0 {
		return
	}
	if len(p)%n != 0 || len(g) < len(p) || len(ds) < len(p) {
		panic("vec: SoftmaxBackwardRows: bad lengths")
	}
	SoftmaxBackwardRowsStrided(ds, n, p, n, g, n, len(p)/n, n)
}

// SoftmaxBackwardRowsStrided is SoftmaxBackwardRows on rows rows of n
// values whose rows are ldds, ldp and ldg floats apart in ds, p and g. ds
// may be g with the same stride.
func SoftmaxBackwardRowsStrided(ds []float32, ldds int, p []float32, ldp int, g []float32, ldg int, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	checkRows("SoftmaxBackwardRows", ds, ldds, rows, n)
	checkRows("SoftmaxBackwardRows", p, ldp, rows, n)
	checkRows("SoftmaxBackwardRows", g, ldg, rows, n)
	if useAsm {
		softmaxBwdRows(&ds[0], &p[0], &g[0], rows, n, ldds, ldp, ldg)
		return
	}
	for r := 0; r < rows; r++ {
		pr, gr, dr := p[r*ldp:r*ldp+n], g[r*ldg:r*ldg+n], ds[r*ldds:r*ldds+n]
		var dot float32
		for j, v := range pr {
			dot += v * gr[j]
		}
		for j, v := range pr {
			dr[j] = v * (gr[j] - dot)
		}
	}
}

// AddTo adds x to acc element by element.
func AddTo(acc, x []float32) {
	n := len(x)
	if n == 0 {
		return
	}
	_ = acc[n-1]
	if useAsm {
		addTo(&acc[0], &x[0], n)
		return
	}
	for j, v := range x {
		acc[j] += v
	}
}

// Add sets y[j] = a[j] + b[j] for every j < len(a). y may be a or b.
func Add(y, a, b []float32) {
	n := len(a)
	if n == 0 {
		return
	}
	_, _ = y[n-1], b[n-1]
	if useAsm {
		add3(&y[0], &a[0], &b[0], n)
		return
	}
	for j, v := range a {
		y[j] = v + b[j]
	}
}
