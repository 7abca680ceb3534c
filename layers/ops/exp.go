package ops

import "math"

// expApprox returns eˣ to within a few parts in 10⁹ (relative), far below a
// float32 ulp, in a few nanoseconds: x = n·ln2 + r with |r| ≤ ln2/2, eʳ by
// its Taylor series to r⁸, and 2ⁿ put straight into the exponent bits.
// Only float32 kernels use it; float64 ones call math.Exp.
func expApprox(x float64) float64 {
	switch {
	case x < -708:
		return 0
	case x > 709:
		return math.Inf(1)
	case x != x:
		return x
	}
	const (
		log2e = 1.4426950408889634
		ln2hi = 6.93147180369123816490e-01
		ln2lo = 1.90821492927058770002e-10
	)
	n := math.Floor(x*log2e + 0.5)
	r := (x - n*ln2hi) - n*ln2lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040+r*(1.0/40320))))))))
	return p * math.Float64frombits(uint64(int64(n)+1023)<<52)
}

// expT is e^x for a kernel's element type: expApprox for float32, math.Exp
// for float64 (so that float64 gradient checks stay exact).
func expT[T Float](x T) T {
	if _, f32 := any(x).(float32); f32 {
		return T(expApprox(float64(x)))
	}
	return T(math.Exp(float64(x)))
}
