package sgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// paths lists the kernel paths this machine can run, each as the values
// of useAsm and useAVX512 that select it.
func paths() []struct {
	name     string
	asm, avx bool
} {
	ps := []struct {
		name     string
		asm, avx bool
	}{{"go", false, false}}
	if useAsm {
		ps = append(ps, struct {
			name     string
			asm, avx bool
		}{"avx2", true, false})
		if cpu.X86.HasAVX512F {
			ps = append(ps, struct {
				name     string
				asm, avx bool
			}{"avx512", true, true})
		}
	}
	return ps
}

// TestTiles: on every kernel path, in every transpose case, Tiles gives
// each element of the product the bits of Sgemm (beta = 0) on the same
// path, writes only the padded rows and columns it promises, and keeps
// those bits when one Work serves products of other sizes in between.
func TestTiles(t *testing.T) {
	saved := useAVX512
	defer func() { useAVX512 = saved }()
	const sentinel = float32(-999)
	rng := rand.New(rand.NewPCG(5, 8))
	shapes := []struct{ m, n, k int }{
		{17, 17, 16}, {50, 50, 16}, {50, 16, 50}, {197, 197, 64}, {197, 64, 197},
		{1, 1, 1}, {7, 33, 5}, {6, 32, 3}, {13, 100, 800}, {5, 48, 0}, {0, 4, 4},
	}
	for _, path := range paths() {
		useAVX512 = path.avx
		var w Work // shared by every product of the path
		for _, sh := range shapes {
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					alpha := float32(0.25 + rng.Float64())
					name := fmt.Sprintf("%s %+v tA=%v tB=%v", path.name, sh, tA, tB)
					ar, ac, br, bc := storedShapes(tA, tB, sh.m, sh.n, sh.k)
					lda, ldb := max(1, ac)+1, max(1, bc)+2
					a, b := randSlice(rng, ar, ac, lda), randSlice(rng, br, bc, ldb)
					want := make([]float32, sh.m*sh.n)
					sgemm(path.asm, tA, tB, sh.m, sh.n, sh.k, alpha, a, lda, b, ldb, 0, want, max(1, sh.n), nil, nil, 0)
					mp, np := PaddedRows(sh.m), PaddedCols(sh.n)
					ldt := np + 3
					got := make([]float32, (mp+1)*ldt)
					for i := range got {
						got[i] = sentinel
					}
					w.tiles(path.asm, tA, tB, sh.m, sh.n, sh.k, alpha, a, lda, b, ldb, got, ldt)
					for i := 0; i <= mp; i++ {
						for j := 0; j < ldt; j++ {
							v := got[i*ldt+j]
							switch {
							case i < sh.m && j < sh.n:
								if math.Float32bits(v) != math.Float32bits(want[i*sh.n+j]) {
									t.Fatalf("%s: T[%d][%d] = %v, Sgemm gives %v", name, i, j, v, want[i*sh.n+j])
								}
							case i >= mp || j >= np:
								if v != sentinel {
									t.Fatalf("%s: wrote T[%d][%d] outside the padded product", name, i, j)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestTilesPanics: bad sizes and short slices panic, as in Sgemm.
func TestTilesPanics(t *testing.T) {
	var w Work
	x := make([]float32, 64)
	for name, f := range map[string]func(){
		"negative":  func() { w.Tiles(false, false, -1, 2, 2, 1, x, 2, x, 2, x, 16) },
		"short t":   func() { w.Tiles(false, false, 2, 2, 2, 1, x, 2, x, 2, x[:20], 16) },
		"small ldt": func() { w.Tiles(false, false, 2, 2, 2, 1, x, 2, x, 2, x, 8) },
		"short a":   func() { w.Tiles(false, false, 4, 2, 20, 1, x, 20, x, 2, x, 16) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
