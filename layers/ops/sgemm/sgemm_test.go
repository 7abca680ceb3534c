package sgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"golang.org/x/sys/cpu"
)

// kernels lists the micro-kernels to test on this machine.
func kernels() []struct {
	name string
	asm  bool
} {
	ks := []struct {
		name string
		asm  bool
	}{{"go", false}}
	if useAsm {
		ks = append(ks, struct {
			name string
			asm  bool
		}{"asm", true})
	}
	return ks
}

// problem is one Sgemm call with its operands.
type problem struct {
	tA, tB        bool
	m, n, k       int
	alpha, beta   float32
	a, b, c       []float32
	bias          []float32 // nil: Sgemm; else SgemmBias
	lda, ldb, ldc int
}

func newProblem(rng *rand.Rand, tA, tB bool, m, n, k, pad int, alpha, beta float32) *problem {
	p := &problem{tA: tA, tB: tB, m: m, n: n, k: k, alpha: alpha, beta: beta}
	ar, ac, br, bc := storedShapes(tA, tB, m, n, k)
	p.lda, p.ldb, p.ldc = max(1, ac)+pad, max(1, bc)+pad, max(1, n)+pad
	p.a = randSlice(rng, ar, ac, p.lda)
	p.b = randSlice(rng, br, bc, p.ldb)
	p.c = randSlice(rng, m, n, p.ldc)
	if beta == 0 {
		for i := range p.c {
			p.c[i] = float32(math.NaN())
		}
	}
	if rng.IntN(2) == 0 {
		p.bias = randSlice(rng, 1, n, n)
		if p.bias == nil {
			p.bias = []float32{}
		}
	}
	return p
}

// randSlice returns a rows×cols matrix with row stride ld, of values in
// [-1, 1), trimmed to the minimal length so that reads past the last element
// panic.
func randSlice(rng *rand.Rand, rows, cols, ld int) []float32 {
	if rows == 0 || cols == 0 {
		return nil
	}
	x := make([]float32, (rows-1)*ld+cols)
	for i := range x {
		x[i] = 2*rng.Float32() - 1
	}
	return x
}

func (p *problem) opA(i, l int) float32 {
	if p.tA {
		return p.a[l*p.lda+i]
	}
	return p.a[i*p.lda+l]
}

func (p *problem) opB(l, j int) float32 {
	if p.tB {
		return p.b[j*p.ldb+l]
	}
	return p.b[l*p.ldb+j]
}

// check runs Sgemm with the given kernel and compares C with a float64
// reference; the padding of C must be untouched.
func (p *problem) check(t *testing.T, asm bool) {
	t.Helper()
	c0 := append([]float32(nil), p.c...)
	c := append([]float32(nil), p.c...)
	sgemm(asm, p.tA, p.tB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, c, p.ldc, p.bias, nil, 0)
	const eps = 1.0 / (1 << 23)
	for i := 0; i < p.m; i++ {
		for j := 0; j < p.ldc && i*p.ldc+j < len(c); j++ {
			got := c[i*p.ldc+j]
			if j >= p.n {
				if math.Float32bits(got) != math.Float32bits(c0[i*p.ldc+j]) {
					t.Fatalf("%s: padding C[%d][%d] changed", p, i, j)
				}
				continue
			}
			var sum, abs float64
			for l := 0; l < p.k; l++ {
				x := float64(p.opA(i, l)) * float64(p.opB(l, j))
				sum += x
				abs += math.Abs(x)
			}
			want := float64(p.alpha) * sum
			tol := float64(p.k+2) * eps * math.Abs(float64(p.alpha)) * abs
			if p.bias != nil {
				want += float64(p.bias[j])
				tol += 2 * eps * math.Abs(float64(p.bias[j]))
			}
			if p.beta != 0 {
				cij := float64(c0[i*p.ldc+j])
				want += float64(p.beta) * cij
				tol += 2 * eps * math.Abs(float64(p.beta)*cij)
			}
			tol += 1e-30
			if d := math.Abs(float64(got) - want); !(d <= tol) {
				t.Fatalf("%s: C[%d][%d] = %g, want %g (|diff| %g > tol %g)", p, i, j, got, want, d, tol)
			}
		}
	}
}

func (p *problem) String() string {
	return fmt.Sprintf("tA=%v tB=%v m=%d n=%d k=%d alpha=%g beta=%g lda=%d ldb=%d ldc=%d bias=%v",
		p.tA, p.tB, p.m, p.n, p.k, p.alpha, p.beta, p.lda, p.ldb, p.ldc, p.bias != nil)
}

var scalars = []float32{0, 1, -0.7}

func TestSgemmSmallShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 2, 3, 5, 6, 7, 11, 12, 15, 16, 17, 19, 23, 31, 33, 40}
	for _, kr := range kernels() {
		t.Run(kr.name, func(t *testing.T) {
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					for trial := 0; trial < 120; trial++ {
						m := sizes[rng.IntN(len(sizes))]
						n := sizes[rng.IntN(len(sizes))]
						k := sizes[rng.IntN(len(sizes))]
						pad := 0
						if trial%2 == 1 {
							pad = 1 + rng.IntN(5)
						}
						alpha := scalars[rng.IntN(3)]
						beta := scalars[rng.IntN(3)]
						newProblem(rng, tA, tB, m, n, k, pad, alpha, beta).check(t, kr.asm)
					}
				}
			}
		})
	}
}

// TestSgemmAllScalars covers every alpha/beta combination on tiles with edges
// in both directions.
func TestSgemmAllScalars(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, kr := range kernels() {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, alpha := range append(scalars, 2.5) {
					for _, beta := range append(scalars, 3) {
						newProblem(rng, tA, tB, 13, 37, 9, 2, alpha, beta).check(t, kr.asm)
						newProblem(rng, tA, tB, 12, 32, 1, 0, alpha, beta).check(t, kr.asm)
					}
				}
			}
		}
	}
}

// TestSgemmBlocking uses shapes that cross the mc, kc and nc block sizes.
func TestSgemmBlocking(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	shapes := [][3]int{
		{300, 200, 500},
		{mcMax + 1, nr*3 + 5, kcMax + 1},
		{2*mcMax + 7, 33, 2*kcMax + 3},
		{7, ncMax + 21, 20},
		{97, 65, 777},
	}
	for _, kr := range kernels() {
		for i, s := range shapes {
			tA, tB := i%2 == 1, i/2%2 == 1
			beta := scalars[i%3]
			newProblem(rng, tA, tB, s[0], s[1], s[2], i%3, -1.3, beta).check(t, kr.asm)
		}
		if !testing.Short() {
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					newProblem(rng, tA, tB, 300, 200, 500, 3, 1, 0.5).check(t, kr.asm)
				}
			}
		}
	}
}

// TestSgemmConcurrent runs two goroutines on disjoint row blocks of C.
func TestSgemmConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tA := range []bool{false, true} {
		p := newProblem(rng, tA, true, 150, 70, 300, 0, 1, 0)
		want := make([]float32, len(p.c))
		Sgemm(p.tA, p.tB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, want, p.ldc)
		got := make([]float32, len(p.c))
		for rep := 0; rep < 5; rep++ {
			var wg sync.WaitGroup
			for _, r := range [][2]int{{0, 71}, {71, 150}} {
				wg.Add(1)
				go func(lo, hi int) {
					defer wg.Done()
					aOff := lo * p.lda
					if tA {
						aOff = lo
					}
					Sgemm(p.tA, p.tB, hi-lo, p.n, p.k, p.alpha, p.a[aOff:], p.lda, p.b, p.ldb, p.beta, got[lo*p.ldc:], p.ldc)
				}(r[0], r[1])
			}
			wg.Wait()
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("tA=%v: element %d: concurrent %g, serial %g", tA, i, got[i], want[i])
				}
			}
		}
	}
}

func TestSgemmPanics(t *testing.T) {
	a := make([]float32, 12)
	for _, f := range []func(){
		func() { Sgemm(false, false, 3, 4, 4, 1, a, 3, a, 4, 0, a, 4) },  // lda < k
		func() { Sgemm(false, false, 4, 4, 4, 1, a, 4, a, 4, 0, a, 4) },  // a too short
		func() { Sgemm(false, false, -1, 4, 4, 1, a, 4, a, 4, 0, a, 4) }, // negative m
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}

// TestSgemmPacked: products on a B packed once give the bits of SgemmBias
// on the unpacked B, for every column block of whole panels, with and
// without a bias, for B stored transposed or not, with k over several
// blocks.
func TestSgemmPacked(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	for _, sh := range []struct{ m, n, k int }{{197, 576, 192}, {13, 200, 900}, {6, 16, 1}, {50, 50, 16}} {
		for _, tB := range []bool{false, true} {
			ldb := sh.n
			if tB {
				ldb = sh.k
			}
			a, b, bias := fill(sh.m*sh.k), fill(sh.k*sh.n), fill(sh.n)
			pb := PackB(tB, sh.k, sh.n, b, ldb)
			for _, cols := range [][2]int{{0, sh.n}, {0, min(32, sh.n)}, {16, sh.n}} {
				lo, hi := cols[0], cols[1]
				if lo >= hi {
					continue
				}
				for _, bs := range [][]float32{nil, bias[lo:hi]} {
					want := fill(sh.m * sh.n)
					got := append([]float32(nil), want...)
					bOff := lo
					if tB {
						bOff = lo * ldb
					}
					if bs == nil {
						Sgemm(false, tB, sh.m, hi-lo, sh.k, 1.5, a, sh.k, b[bOff:], ldb, 0.5, want[lo:], sh.n)
					} else {
						SgemmBias(false, tB, sh.m, hi-lo, sh.k, 1.5, a, sh.k, b[bOff:], ldb, 0.5, want[lo:], sh.n, bs)
					}
					SgemmPacked(false, sh.m, hi-lo, 1.5, a, sh.k, pb, lo, 0.5, got[lo:], sh.n, bs)
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("%+v tB=%v columns [%d,%d) bias=%v: element %d is %v, unpacked %v", sh, tB, lo, hi, bs != nil, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("columns not starting at a panel were accepted")
		}
	}()
	SgemmPacked(false, 1, 8, 1, make([]float32, 16), 16, PackB(false, 16, 32, make([]float32, 512), 32), 8, 0, make([]float32, 8), 8, nil)
}

// TestAVX512MatchesAVX2: with the 6×32 AVX-512 tiles the products are the
// bits of the AVX2 6×16 tiles, in every transpose case, with alpha, beta
// and a bias, at sizes with partial panels, partial rows and several k
// blocks. It also checks the products against float64 sums.
func TestAVX512MatchesAVX2(t *testing.T) {
	if !useAsm || !cpu.X86.HasAVX512F {
		t.Skip("this CPU has no AVX-512 (the AVX2 path is tested everywhere)")
	}
	saved := useAVX512
	defer func() { useAVX512 = saved }()
	rng := rand.New(rand.NewPCG(11, 3))
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	for _, sh := range []struct{ m, n, k int }{{6, 32, 1}, {197, 576, 192}, {50, 50, 16}, {13, 100, 800}, {64, 48, 7}, {300, 33, 65}} {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				lda, ldb := sh.k, sh.n
				if tA {
					lda = sh.m
				}
				if tB {
					ldb = sh.k
				}
				a, b, bias, c0 := fill(sh.m*sh.k), fill(sh.k*sh.n), fill(sh.n), fill(sh.m*sh.n)
				run := func(wide bool) []float32 {
					useAVX512 = wide
					c := append([]float32(nil), c0...)
					SgemmBias(tA, tB, sh.m, sh.n, sh.k, 0.75, a, lda, b, ldb, 0.5, c, sh.n, bias)
					return c
				}
				want, got := run(false), run(true)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%+v tA=%v tB=%v: element %d is %v with AVX-512, %v with AVX2", sh, tA, tB, i, got[i], want[i])
					}
				}
				for i := 0; i < sh.m; i += max(1, sh.m/7) {
					for j := 0; j < sh.n; j += max(1, sh.n/7) {
						var s float64
						for p := 0; p < sh.k; p++ {
							var av, bv float32
							if tA {
								av = a[p*lda+i]
							} else {
								av = a[i*lda+p]
							}
							if tB {
								bv = b[j*ldb+p]
							} else {
								bv = b[p*ldb+j]
							}
							s += float64(av) * float64(bv)
						}
						ref := 0.75*s + float64(bias[j]) + 0.5*float64(c0[i*sh.n+j])
						if d := math.Abs(float64(got[i*sh.n+j]) - ref); d > 1e-4*(1+math.Abs(ref))*math.Sqrt(float64(sh.k)) {
							t.Fatalf("%+v tA=%v tB=%v: C[%d][%d] = %v, float64 %v", sh, tA, tB, i, j, got[i*sh.n+j], ref)
						}
					}
				}
			}
		}
	}
}
