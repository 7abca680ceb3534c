package sgemm

// packA packs rows [i0, i0+mc) × columns [p0, p0+kc) of op(A) into dst as
// ⌈mc/mr⌉ panels of kc×mr floats: panel r holds dst[r*mr*kc + p*mr + i] =
// op(A)[i0+r*mr+i][p0+p], zero for rows past mc. asm selects the assembly
// routine for the full panels of a transposed A.
func packA(asm bool, dst, a []float32, lda int, tA bool, i0, mc, p0, kc int) {
	if tA {
		if full := mc / mr; asm && full > 0 {
			o := p0*lda + i0
			s := a[o : o+(kc-1)*lda+full*mr] // bounds for the assembly
			d := dst[:full*mr*kc]
			packAT6(&d[0], &s[0], full, kc, lda)
			if full*mr == mc {
				return
			}
			dst, i0, mc = dst[full*mr*kc:], i0+full*mr, mc-full*mr
		}
		packAT(dst, a, lda, i0, mc, p0, kc)
		return
	}
	for ir := 0; ir < mc; ir += mr {
		rows := min(mr, mc-ir)
		d := dst[ir*kc : ir*kc+kc*mr]
		i := i0 + ir
		if rows < mr {
			for r := 0; r < mr; r++ {
				if r >= rows {
					for p := 0; p < kc; p++ {
						d[p*mr+r] = 0
					}
					continue
				}
				row := a[(i+r)*lda+p0:]
				row = row[:kc]
				for p, v := range row {
					d[p*mr+r] = v
				}
			}
			continue
		}
		// Each of the six rows is contiguous in p.
		base := i*lda + p0
		r0 := a[base : base+kc]
		r1 := a[base+lda : base+lda+kc]
		r2 := a[base+2*lda : base+2*lda+kc]
		r3 := a[base+3*lda : base+3*lda+kc]
		r4 := a[base+4*lda : base+4*lda+kc]
		r5 := a[base+5*lda : base+5*lda+kc]
		for p := range r0 {
			q := (*[mr]float32)(d[p*mr:])
			q[0] = r0[p]
			q[1] = r1[p]
			q[2] = r2[p]
			q[3] = r3[p]
			q[4] = r4[p]
			q[5] = r5[p]
		}
	}
}

// packAT is packA for op(A) = Aᵀ: row p of the stored A holds column p of
// op(A), and each contiguous segment of it is scattered across all panels.
func packAT(dst, a []float32, lda, i0, mc, p0, kc int) {
	full := mc / mr
	rest := mc - full*mr
	for p := 0; p < kc; p++ {
		src := a[(p0+p)*lda+i0:]
		src = src[:mc]
		for r := 0; r < full; r++ {
			s := (*[mr]float32)(src[r*mr:])
			q := (*[mr]float32)(dst[r*mr*kc+p*mr:])
			q[0] = s[0]
			q[1] = s[1]
			q[2] = s[2]
			q[3] = s[3]
			q[4] = s[4]
			q[5] = s[5]
		}
		if rest > 0 {
			q := (*[mr]float32)(dst[full*mr*kc+p*mr:])
			for i := range q {
				if i < rest {
					q[i] = src[full*mr+i]
				} else {
					q[i] = 0
				}
			}
		}
	}
}

// packB packs rows [p0, p0+kc) × columns [j0, j0+nc) of op(B) into dst as
// ⌈nc/nr⌉ panels of kc×nr floats: panel r holds dst[r*nr*kc + p*nr + j] =
// op(B)[p0+p][j0+r*nr+j], zero for columns past nc. asm selects the
// assembly routines for full panels.
func packB(asm bool, dst, b []float32, ldb int, tB bool, p0, kc, j0, nc int) {
	for jr := 0; jr < nc; jr += nr {
		cols := min(nr, nc-jr)
		d := dst[jr*kc : jr*kc+kc*nr]
		j := j0 + jr
		switch {
		case asm && !tB && cols == nr:
			o := p0*ldb + j
			s := b[o : o+(kc-1)*ldb+nr] // bounds for the assembly
			copyRows16(&d[0], &s[0], kc, ldb)
		case asm && tB && cols == nr:
			// Two 8-column halves, transposed in 8×8 blocks; the last
			// kc%8 rows of the panel are filled by the loop below.
			blocks := kc / 8
			if blocks > 0 {
				for h := 0; h < 2; h++ {
					o := (j+8*h)*ldb + p0
					s := b[o : o+7*ldb+8*blocks]
					transpose8(&d[8*h], &s[0], blocks, ldb)
				}
			}
			for p := 8 * blocks; p < kc; p++ {
				q := (*[nr]float32)(d[p*nr:])
				for x := range q {
					q[x] = b[(j+x)*ldb+p0+p]
				}
			}
		case !tB && cols == nr:
			// The sixteen values for one p are contiguous.
			for p := 0; p < kc; p++ {
				s := (*[nr]float32)(b[(p0+p)*ldb+j:])
				q := (*[nr]float32)(d[p*nr:])
				for x := range q {
					q[x] = s[x]
				}
			}
		case !tB:
			for p := 0; p < kc; p++ {
				s := b[(p0+p)*ldb+j:]
				s = s[:cols]
				q := (*[nr]float32)(d[p*nr:])
				for x := range q {
					if x < cols {
						q[x] = s[x]
					} else {
						q[x] = 0
					}
				}
			}
		default:
			// op(B) = Bᵀ: column j of op(B) is row j of B, contiguous in p.
			// Transpose four rows at a time, into a zeroed partial panel.
			if cols < nr {
				clear(d)
			}
			jj := 0
			for ; jj+4 <= cols; jj += 4 {
				base := (j+jj)*ldb + p0
				r0 := b[base : base+kc]
				r1 := b[base+ldb : base+ldb+kc]
				r2 := b[base+2*ldb : base+2*ldb+kc]
				r3 := b[base+3*ldb : base+3*ldb+kc]
				for p := range r0 {
					q := (*[4]float32)(d[p*nr+jj:])
					q[0] = r0[p]
					q[1] = r1[p]
					q[2] = r2[p]
					q[3] = r3[p]
				}
			}
			for ; jj < cols; jj++ {
				row := b[(j+jj)*ldb+p0:]
				row = row[:kc]
				for p, v := range row {
					d[p*nr+jj] = v
				}
			}
		}
	}
}
