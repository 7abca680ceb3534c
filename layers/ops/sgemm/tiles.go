package sgemm

// Work holds the packing buffers of the products a goroutine computes with
// Tiles, one after another: a worker that runs many small products (those
// of attention, one per image and head) keeps one, instead of each call
// taking its buffers from a pool as Sgemm does. A Work must not be used by
// two goroutines at once.
type Work struct {
	ws workspace
}

// PaddedRows returns the number of rows Tiles writes for a product with m
// rows: m rounded up to whole micro-tiles (6 rows).
func PaddedRows(m int) int { return roundUp(m, mr) }

// PaddedCols returns the number of columns Tiles writes for a product with
// n columns: n rounded up to whole micro-tiles (16 columns).
func PaddedCols(n int) int { return roundUp(n, nr) }

// Tiles sets T = alpha·op(A)·op(B), op(A) m×k and op(B) k×n stored as for
// Sgemm, in whole micro-tiles: T (row stride ldt) receives PaddedRows(m)
// rows of PaddedCols(n) values, those outside the m×n product being
// unspecified, and is never read. Each element of the product has the bits
// Sgemm gives it with beta = 0. What Sgemm does per call and Tiles does not
// (taking buffers from a pool, cutting m and n into cache blocks, merging
// partial tiles at the edges of C) is what dominates products as small as
// attention's (N×N×16 with N = 17 or 50), which its callers then read from
// T in place or copy where they belong.
func (w *Work) Tiles(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, t []float32, ldt int) {
	w.tiles(useAsm, tA, tB, m, n, k, alpha, a, lda, b, ldb, t, ldt)
}

// tiles is Tiles on the assembly kernels if asm, else on the Go one.
func (w *Work) tiles(asm, tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, t []float32, ldt int) {
	if m < 0 || n < 0 || k < 0 {
		panic("sgemm: negative dimension")
	}
	ar, ac, br, bc := storedShapes(tA, tB, m, n, k)
	checkMatrix("a", ar, ac, a, lda)
	checkMatrix("b", br, bc, b, ldb)
	mp, np := PaddedRows(m), PaddedCols(n)
	checkMatrix("t", mp, np, t, ldt)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		for i := 0; i < mp; i++ {
			clear(t[i*ldt : i*ldt+np])
		}
		return
	}
	wide := asm && useAVX512
	ws := &w.ws
	kc := evenBlock(k, kcMax, 1) // the k blocks of Sgemm, for the same bits
	// op(A) = A is read in place by the assembly kernels but for a last
	// partial panel, copied into a 6-row buffer whose other rows hold stale
	// values (their results land in T's padding rows); otherwise op(A) is
	// packed whole, zero-padded to mp rows.
	inPlace := asm && !tA
	rem := m % mr
	var packedA []float32
	if inPlace {
		packedA = ws.buffer(&ws.a, mr*kc)
	} else {
		packedA = ws.buffer(&ws.a, mp*kc)
	}
	packedB := ws.buffer(&ws.b, np*kc)
	for pc := 0; pc < k; pc += kc {
		kcur := min(kc, k-pc)
		beta := float32(0)
		if pc > 0 {
			beta = 1 // later k blocks add to the first's sums, as in Sgemm
		}
		packB(asm, packedB, b, ldb, tB, pc, kcur, 0, n)
		if !inPlace {
			packA(asm, packedA, a, lda, tA, 0, m, pc, kcur)
		} else if rem != 0 {
			for i := 0; i < rem; i++ {
				o := (m-rem+i)*lda + pc
				copy(packedA[i*kcur:(i+1)*kcur], a[o:o+kcur])
			}
		}
		for jr := 0; jr < np; {
			width := nr
			if wide && np-jr >= 2*nr {
				width = 2 * nr // a 6×32 tile: two panels
			}
			bp := packedB[jr*kcur : jr*kcur+width*kcur]
			kern, kernRows := kernelAsm, kernelAsmRows
			if width > nr {
				kern, kernRows = kernel512, kernel512Rows
			}
			// One call per run of tiles down the column panel(s).
			switch {
			case !asm:
				for ir := 0; ir < m; ir += mr {
					co := ir*ldt + jr
					kernelGo(kcur, packedA[ir*kcur:ir*kcur+kcur*mr], bp, t[co:co+(mr-1)*ldt+width], ldt, alpha, beta)
				}
			case inPlace:
				full := m / mr
				if full > 0 {
					ap := a[pc : pc+(full*mr-1)*lda+kcur]
					ct := t[jr : jr+(full*mr-1)*ldt+width]
					kernRows(kcur, &ap[0], lda, &bp[0], &ct[0], ldt, alpha, beta, nil, full)
				}
				if rem != 0 {
					co := full*mr*ldt + jr
					ct := t[co : co+(mr-1)*ldt+width]
					kernRows(kcur, &packedA[0], kcur, &bp[0], &ct[0], ldt, alpha, beta, nil, 1)
				}
			default:
				ct := t[jr : jr+(mp-1)*ldt+width]
				kern(kcur, &packedA[0], &bp[0], &ct[0], ldt, alpha, beta, nil, mp/mr)
			}
			jr += width
		}
	}
}
