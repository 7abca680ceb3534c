package vec

import (
	"math"
	"testing"
)

func checkNorm(t *testing.T) {
	for _, n := range []int{1, 2, 7, 8, 9, 15, 16, 17, 31, 64, 100, 192, 768} {
		x := inputs(n, -3, 5, int64(n))
		for i := range x {
			x[i] += 40 // a large mean, as after a few residual blocks
		}
		g := inputs(n, 0.5, 1.5, int64(n+1))
		b := inputs(n, -1, 1, int64(n+2))
		dy := inputs(n, -1, 1, int64(n+3))
		var mean, vr float64
		for _, v := range x {
			mean += float64(v)
		}
		mean /= float64(n)
		for _, v := range x {
			vr += (float64(v) - mean) * (float64(v) - mean)
		}
		vr /= float64(n)
		m, v := moments(x)
		if math.Abs(float64(m)-mean) > 2e-6*math.Abs(mean) || math.Abs(float64(v)-vr) > 1e-5*vr+1e-6 {
			t.Fatalf("n=%d: moments = %g, %g; want %g, %g", n, m, v, mean, vr)
		}
		s := invStd(v, 1e-6)
		y := make([]float32, n+1)
		y[n] = 99
		NormAffine(y[:n], x, g, b, m, s)
		sg, sgx := LNBackwardSums(x, dy, g, m)
		var wsg, wsgx float64
		for j := range x {
			want := (float64(x[j])-float64(m))*float64(s)*float64(g[j]) + float64(b[j])
			if math.Abs(float64(y[j])-want) > 1e-5 {
				t.Fatalf("n=%d: NormAffine[%d] = %g, want %g", n, j, y[j], want)
			}
			tg := float64(dy[j]) * float64(g[j])
			wsg += tg
			wsgx += tg * (float64(x[j]) - float64(m))
		}
		if y[n] != 99 {
			t.Fatalf("n=%d: NormAffine wrote past the end", n)
		}
		if math.Abs(float64(sg)-wsg) > 1e-5*float64(n) || math.Abs(float64(sgx)-wsgx) > 1e-5*float64(n)*5 {
			t.Fatalf("n=%d: LNBackwardSums = %g, %g; want %g, %g", n, sg, sgx, wsg, wsgx)
		}
		dx := make([]float32, n+1)
		dx[n] = 99
		LNBackwardOut(dx[:n], x, dy, g, m, 0.5, -0.25, 2)
		acc := make([]float32, n+1)
		acc[n] = 99
		for j := range acc[:n] {
			acc[j] = 1
		}
		AccXhatDy(acc[:n], x, dy, m, s)
		for j := range x {
			want := 0.5*float64(dy[j])*float64(g[j]) + 2*(float64(x[j])-float64(m)) - 0.25
			if math.Abs(float64(dx[j])-want) > 1e-5 {
				t.Fatalf("n=%d: LNBackwardOut[%d] = %g, want %g", n, j, dx[j], want)
			}
			wacc := 1 + float64(dy[j])*(float64(x[j])-float64(m))*float64(s)
			if math.Abs(float64(acc[j])-wacc) > 1e-5 {
				t.Fatalf("n=%d: AccXhatDy[%d] = %g, want %g", n, j, acc[j], wacc)
			}
		}
		if dx[n] != 99 || acc[n] != 99 {
			t.Fatalf("n=%d: wrote past the end", n)
		}
	}
}

func TestNormKernels(t *testing.T) { forEachPath(t, checkNorm) }
