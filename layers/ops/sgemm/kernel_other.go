//go:build !amd64

package sgemm

// useAsm reports whether an assembly micro-kernel is available.
const useAsm = false

// useAVX512 reports whether the AVX-512 micro-kernels are used.
var useAVX512 = false

func kernel512(k int, a, b, c *float32, ldc int, alpha, beta float32, bias *float32, tiles int) {
	panic("sgemm: no assembly kernel on this architecture")
}

func kernel512Rows(k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, bias *float32, tiles int) {
	panic("sgemm: no assembly kernel on this architecture")
}

func kernelAsm(k int, a, b, c *float32, ldc int, alpha, beta float32, bias *float32, tiles int) {
	panic("sgemm: no assembly kernel on this architecture")
}

func kernelAsmRows(k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, bias *float32, tiles int) {
	panic("sgemm: no assembly kernel on this architecture")
}

func copyRows16(dst, src *float32, rows, lds int) {
	panic("sgemm: no assembly kernel on this architecture")
}

func transpose8(dst, src *float32, blocks, lds int) {
	panic("sgemm: no assembly kernel on this architecture")
}

func packAT6(dst, src *float32, panels, kc, lds int) {
	panic("sgemm: no assembly kernel on this architecture")
}
