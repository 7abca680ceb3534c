package vec

import (
	"math"
	"math/rand"
	"testing"
)

// ulps returns the distance between a and the float32 nearest to want, in
// units of the float32 spacing at want.
func ulps(a float32, want float64) float64 {
	w := float32(want)
	ulp := math.Nextafter32(w, float32(math.Inf(1))) - w
	return math.Abs(float64(a)-want) / float64(ulp)
}

// inputs returns values spread over [lo, hi] plus a few special ones.
func inputs(n int, lo, hi float64, seed int64) []float32 {
	r := rand.New(rand.NewSource(seed))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return x
}

func checkExp(t *testing.T) {
	t.Helper()
	x := inputs(10007, -87, 88, 1)
	x = append(x, 0, -0, 1, -1, 0.5, -0.34657359, 0.34657359, 88, -87)
	y := make([]float32, len(x))
	expShifted(y, x, 0)
	worst := 0.0
	for i, v := range x {
		e := math.Exp(float64(v))
		if u := ulps(y[i], e); u > worst {
			worst = u
		}
	}
	if worst > 2 {
		t.Errorf("e^x: worst error %.2f ulp, want ≤ 2", worst)
	}
	// The sum, over inputs small enough for it not to overflow.
	xs := inputs(1000, -60, 60, 2)
	sum := expShifted(make([]float32, len(xs)), xs, 0)
	var want float64
	for _, v := range xs {
		want += math.Exp(float64(v))
	}
	if math.Abs(float64(sum)-want) > 1e-5*want {
		t.Errorf("sum %g, want %g", sum, want)
	}
	// Shifted, in place, every tail length.
	for n := 0; n <= 19; n++ {
		src := inputs(n, -10, 10, int64(n))
		dst := append([]float32(nil), src...)
		guard := append(dst, 12345) // a value past the end must not change
		s := expShifted(guard[:n], guard[:n], 3)
		var ref float64
		for i, v := range src {
			e := math.Exp(float64(v - 3)) // the shift is a float32 subtraction
			ref += e
			if ulps(guard[i], e) > 2 {
				t.Fatalf("n=%d: e^(%g−3) = %g, want %g", n, v, guard[i], e)
			}
		}
		if guard[n] != 12345 {
			t.Fatalf("n=%d: wrote past the end", n)
		}
		if math.Abs(float64(s)-ref) > 1e-5*ref+1e-30 {
			t.Fatalf("n=%d: sum %g, want %g", n, s, ref)
		}
	}
	// Special values.
	sp := []float32{float32(math.NaN()), -1000, 1000, float32(math.Inf(-1)), float32(math.Inf(1))}
	out := make([]float32, len(sp))
	exp(out, sp)
	if !math.IsNaN(float64(out[0])) {
		t.Errorf("e^NaN = %g, want NaN", out[0])
	}
	if !(out[1] >= 0 && out[1] < 2e-38) || !(out[3] >= 0 && out[3] < 2e-38) {
		t.Errorf("e^-1000, e^-Inf = %g, %g, want about 0", out[1], out[3])
	}
	if !(out[2] > 1e38) || math.IsInf(float64(out[2]), 0) || !(out[4] > 1e38) {
		t.Errorf("e^1000, e^Inf = %g, %g, want the clamped e^88", out[2], out[4])
	}
}

func geluRef(x float64) (y, d float64) {
	cdf := 0.5 * (1 + math.Erf(x/math.Sqrt2))
	pdf := math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi)
	return x * cdf, cdf + x*pdf
}

func checkGELU(t *testing.T) {
	t.Helper()
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 1000, 4099} {
		x := inputs(n, -9, 9, int64(n))
		if n > 10 {
			x[0], x[1], x[2], x[3] = 0, float32(math.Copysign(0, -1)), 30, -30
		}
		dy := inputs(n, -2, 2, int64(n+1))
		y := make([]float32, n+1)
		dx := make([]float32, n+1)
		y[n], dx[n] = 777, 777
		GELU(y[:n], x)
		GELUGrad(dx[:n], x, dy)
		if y[n] != 777 || dx[n] != 777 {
			t.Fatalf("n=%d: wrote past the end", n)
		}
		for i, v := range x {
			wy, wd := geluRef(float64(v))
			// Φ is accurate to 2e-7 absolute; y = x·Φ and the derivative
			// inherit it scaled by |x|, plus float32 rounding.
			tol := 3e-7*math.Max(1, math.Abs(float64(v))) + 2e-7*math.Abs(wy)
			if math.Abs(float64(y[i])-wy) > tol {
				t.Fatalf("n=%d: GELU(%g) = %g, want %g", n, v, y[i], wy)
			}
			wdx := wd * float64(dy[i])
			tol = (3e-7*math.Max(1, math.Abs(float64(v))) + 2e-7*math.Abs(wd)) * math.Max(1, math.Abs(float64(dy[i])))
			if math.Abs(float64(dx[i])-wdx) > tol {
				t.Fatalf("n=%d: GELU'(%g)·%g = %g, want %g", n, v, dy[i], dx[i], wdx)
			}
		}
	}
	nan := float32(math.NaN())
	y := make([]float32, 3)
	GELU(y, []float32{nan, float32(math.Inf(1)), 1})
	if !math.IsNaN(float64(y[0])) || !math.IsInf(float64(y[1]), 1) {
		t.Errorf("GELU(NaN), GELU(+Inf) = %g, %g, want NaN, +Inf", y[0], y[1])
	}
	GELUGrad(y, []float32{nan, 1, 1}, []float32{1, nan, 1})
	if !math.IsNaN(float64(y[0])) || !math.IsNaN(float64(y[1])) {
		t.Errorf("GELU' with NaN input or gradient = %g, %g, want NaN", y[0], y[1])
	}
}

func checkSoftmax(t *testing.T) {
	t.Helper()
	for _, n := range []int{1, 5, 50, 197} {
		x := inputs(n, -30, 30, int64(n))
		x[0] = 1e4 // a large logit must not overflow
		ref := make([]float64, n)
		var s float64
		for i, v := range x {
			ref[i] = math.Exp(float64(v) - 1e4)
			s += ref[i]
		}
		softmax(x)
		for i := range x {
			if math.Abs(float64(x[i])-ref[i]/s) > 1e-6 {
				t.Fatalf("n=%d: softmax[%d] = %g, want %g", n, i, x[i], ref[i]/s)
			}
		}
	}
}

func TestExp(t *testing.T)     { forEachPath(t, checkExp) }
func TestGELU(t *testing.T)    { forEachPath(t, checkGELU) }
func TestSoftmax(t *testing.T) { forEachPath(t, checkSoftmax) }

func BenchmarkExp(b *testing.B) {
	x := inputs(4096, -20, 0, 1)
	y := make([]float32, len(x))
	for i := 0; i < b.N; i++ {
		expShifted(y, x, 0)
	}
	b.ReportMetric(float64(b.N*len(x))/b.Elapsed().Seconds()/1e6, "Melem/s")
}

func BenchmarkGELU(b *testing.B) {
	x := inputs(4096, -5, 5, 1)
	y := make([]float32, len(x))
	for i := 0; i < b.N; i++ {
		GELU(y, x)
	}
	b.ReportMetric(float64(b.N*len(x))/b.Elapsed().Seconds()/1e6, "Melem/s")
}

func BenchmarkGELUGrad(b *testing.B) {
	x := inputs(4096, -5, 5, 1)
	dy := inputs(4096, -1, 1, 2)
	y := make([]float32, len(x))
	for i := 0; i < b.N; i++ {
		GELUGrad(y, x, dy)
	}
	b.ReportMetric(float64(b.N*len(x))/b.Elapsed().Seconds()/1e6, "Melem/s")
}

func checkSoftmaxRows(t *testing.T) {
	t.Helper()
	for _, n := range []int{1, 3, 8, 9, 17, 50} {
		rows := 5
		x := inputs(rows*n, -20, 20, int64(n))
		x[n/2] = -1e30 // a tiny logit in row 0
		if n > 1 {
			x[n+1] = 80 // a large one in row 1
		}
		want := make([]float64, len(x))
		for r := 0; r < rows; r++ {
			row := x[r*n : (r+1)*n]
			m := math.Inf(-1)
			for _, v := range row {
				m = math.Max(m, float64(v))
			}
			var s float64
			for j, v := range row {
				want[r*n+j] = math.Exp(float64(v) - m)
				s += want[r*n+j]
			}
			for j := range row {
				want[r*n+j] /= s
			}
		}
		guard := append(x, 4321)
		SoftmaxRows(guard[:len(x)], n)
		for i := range x {
			if math.Abs(float64(guard[i])-want[i]) > 1e-6 {
				t.Fatalf("n=%d: element %d = %g, want %g", n, i, guard[i], want[i])
			}
		}
		if guard[len(x)] != 4321 {
			t.Fatalf("n=%d: wrote past the end", n)
		}
	}
	x := []float32{1, float32(math.NaN()), 2, 3, 4, 5, 6, 7, 8, 9}
	SoftmaxRows(x, 5)
	if !math.IsNaN(float64(x[0])) || math.IsNaN(float64(x[5])) {
		t.Errorf("a NaN must make its own row NaN and no other: %v", x)
	}
}

func TestSoftmaxRows(t *testing.T) { forEachPath(t, checkSoftmaxRows) }

func checkSoftmaxBackward(t *testing.T) {
	t.Helper()
	for _, n := range []int{1, 3, 8, 9, 17, 50} {
		rows := 4
		p := inputs(rows*n, 0, 1, int64(n))
		g := inputs(rows*n, -1, 1, int64(n+7))
		ds := make([]float32, rows*n+1)
		ds[rows*n] = 55
		SoftmaxBackwardRows(ds[:rows*n], p, g, n)
		for r := 0; r < rows; r++ {
			var dot float64
			for j := 0; j < n; j++ {
				dot += float64(p[r*n+j]) * float64(g[r*n+j])
			}
			for j := 0; j < n; j++ {
				want := float64(p[r*n+j]) * (float64(g[r*n+j]) - dot)
				if math.Abs(float64(ds[r*n+j])-want) > 1e-6 {
					t.Fatalf("n=%d row %d: ds[%d] = %g, want %g", n, r, j, ds[r*n+j], want)
				}
			}
		}
		if ds[rows*n] != 55 {
			t.Fatalf("n=%d: wrote past the end", n)
		}
		acc := inputs(n+1, -1, 1, 3)
		want := append([]float32(nil), acc...)
		AddTo(acc[:n], g[:n])
		for j := 0; j < n; j++ {
			if acc[j] != want[j]+g[j] {
				t.Fatalf("n=%d: AddTo[%d] = %g, want %g", n, j, acc[j], want[j]+g[j])
			}
		}
		if acc[n] != want[n] {
			t.Fatalf("n=%d: AddTo wrote past the end", n)
		}
		y := make([]float32, n+1)
		y[n] = 66
		Add(y[:n], p[:n], g[:n])
		for j := 0; j < n; j++ {
			if y[j] != p[j]+g[j] {
				t.Fatalf("n=%d: Add[%d] = %g, want %g", n, j, y[j], p[j]+g[j])
			}
		}
		if y[n] != 66 {
			t.Fatalf("n=%d: Add wrote past the end", n)
		}
	}
}

func TestSoftmaxBackward(t *testing.T) { forEachPath(t, checkSoftmaxBackward) }

// checkStridedSoftmax: the strided forms give the contiguous forms' bits
// and write nothing between or after the rows.
func checkStridedSoftmax(t *testing.T) {
	t.Helper()
	const rows, sentinel = 5, float32(-777)
	for _, n := range []int{1, 7, 8, 17, 50} {
		for _, pad := range []int{0, 3, 14} {
			ld := n + pad
			x := inputs(rows*n, -20, 20, int64(n+pad))
			want := append([]float32(nil), x...)
			SoftmaxRows(want, n)
			strided := func(v []float32) []float32 { // rows ld apart, sentinels between
				s := make([]float32, rows*ld+2)
				for i := range s {
					s[i] = sentinel
				}
				for r := 0; r < rows; r++ {
					copy(s[r*ld:], v[r*n:(r+1)*n])
				}
				return s
			}
			src := strided(x)
			dst := strided(make([]float32, rows*n))
			srcCopy := append([]float32(nil), src...)
			SoftmaxRowsTo(dst, ld, src, ld, rows, n)
			inPlace := append([]float32(nil), src...)
			SoftmaxRowsTo(inPlace, ld, inPlace, ld, rows, n)
			for _, got := range [][]float32{dst, inPlace} {
				for r := 0; r < rows; r++ {
					for j := 0; j < ld; j++ {
						v := got[r*ld+j]
						if j < n && v != want[r*n+j] {
							t.Fatalf("n=%d ld=%d: [%d][%d] = %g, want %g", n, ld, r, j, v, want[r*n+j])
						}
						if j >= n && v != sentinel {
							t.Fatalf("n=%d ld=%d: wrote %g between rows", n, ld, v)
						}
					}
				}
				if got[rows*ld] != sentinel || got[rows*ld+1] != sentinel {
					t.Fatalf("n=%d ld=%d: wrote past the end", n, ld)
				}
			}
			for i := range src {
				if src[i] != srcCopy[i] {
					t.Fatalf("n=%d ld=%d: the source changed", n, ld)
				}
			}
			// Backward: contiguous reference, then strided into g in place.
			p := want
			g := inputs(rows*n, -1, 1, int64(n+pad+9))
			wantDS := make([]float32, rows*n)
			SoftmaxBackwardRows(wantDS, p, g, n)
			sp, sg := strided(p), strided(g)
			SoftmaxBackwardRowsStrided(sg, ld, sp, ld, sg, ld, rows, n)
			for r := 0; r < rows; r++ {
				for j := 0; j < ld; j++ {
					v := sg[r*ld+j]
					if j < n && v != wantDS[r*n+j] {
						t.Fatalf("backward n=%d ld=%d: [%d][%d] = %g, want %g", n, ld, r, j, v, wantDS[r*n+j])
					}
					if j >= n && v != sentinel {
						t.Fatalf("backward n=%d ld=%d: wrote %g between rows", n, ld, v)
					}
				}
			}
		}
	}
}

func TestStridedSoftmax(t *testing.T) { forEachPath(t, checkStridedSoftmax) }
