package sgemm

//go:generate sh -c "python3 gen_kernel.py > kernel_amd64.s"
//go:generate sh -c "python3 gen_kernel_go.py > kernel_generic.go"
//go:generate sh -c "python3 gen_kernel.py avx512 > kernel512_amd64.s"

import (
	"os"

	"golang.org/x/sys/cpu"
)

// useAsm reports whether the AVX2/FMA micro-kernel can run on this CPU
// (the OS must also save the YMM state, which cpu.X86.HasAVX checks).
// VIT_CPU=generic in the environment forces the pure-Go code, to test it
// or compare it on a CPU that has AVX2 (docs/performance.md).
var useAsm = cpu.X86.HasAVX && cpu.X86.HasAVX2 && cpu.X86.HasFMA && os.Getenv("VIT_CPU") != "generic"

// useAVX512 reports whether the assembly path may also use the AVX-512
// micro-kernels (6×32 tiles) where two whole column panels are left.
// VIT_CPU=avx2 keeps to the AVX2 kernels. Results are the same bits
// either way.
var useAVX512 = useAsm && cpu.X86.HasAVX512F && os.Getenv("VIT_CPU") != "avx2"

// kernel512 is kernelAsm for a 6×32 tile: b points to two consecutive
// packed panels of B (k×16 each, the second k·16 floats after the first),
// bias to 32 floats or nil.
//
//go:noescape
func kernel512(k int, a, b, c *float32, ldc int, alpha, beta float32, bias *float32, tiles int)

// kernel512Rows is kernelAsmRows for a 6×32 tile, b as for kernel512.
//
//go:noescape
func kernel512Rows(k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, bias *float32, tiles int)

// kernelAsm is the AVX2/FMA micro-kernel (kernel_amd64.s): it computes the
// 6×16 tile c[i*ldc+j] = alpha·Σ_p a[p*6+i]·b[p*16+j] + bias[j] + beta·c[i*ldc+j]
// from packed panels a (k×6) and b (k×16), not reading c when beta == 0;
// bias may be nil (no bias) or point to 16 floats. It computes tiles such
// tiles one under the other: the next from the next panel of a (6·k floats
// on) into c six rows down, with the same b.
//
//go:noescape
func kernelAsm(k int, a, b, c *float32, ldc int, alpha, beta float32, bias *float32, tiles int)

// kernelAsmRows is kernelAsm with A read in place from a row-major matrix:
// element (i, p) of the 6×k panel is a[i*lda+p]; the next tile's panel is
// six rows of a down.
//
//go:noescape
func kernelAsmRows(k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, bias *float32, tiles int)

// copyRows16 copies rows×16 floats: dst[r*16+j] = src[r*lds+j].
//
//go:noescape
func copyRows16(dst, src *float32, rows, lds int)

// transpose8 transposes 8×8 blocks into rows 16 floats apart:
// dst[(8b+p)*16+j] = src[j*lds+8b+p] for b < blocks, p, j < 8.
//
//go:noescape
func transpose8(dst, src *float32, blocks, lds int)

// packAT6 packs panels×6 columns of kc rows of a row-major matrix (row
// stride lds) into panels of kc×6: dst[r*6*kc+p*6+i] = src[p*lds+r*6+i].
//
//go:noescape
func packAT6(dst, src *float32, panels, kc, lds int)
