//go:build amd64

#include "textflag.h"

// func copyRows16(dst, src *float32, rows, lds int)
//
// dst[r*16+j] = src[r*lds+j] for r < rows, j < 16 (AVX).
TEXT ·copyRows16(SB), NOSPLIT, $0-32
	MOVQ    dst+0(FP), DI
	MOVQ    src+8(FP), SI
	MOVQ    rows+16(FP), CX
	MOVQ    lds+24(FP), R8
	SHLQ    $2, R8
	MOVQ    CX, BX
	SHRQ    $1, BX
	JZ      copytail

copyloop2:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS (SI)(R8*1), Y2
	VMOVUPS 32(SI)(R8*1), Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	LEAQ    (SI)(R8*2), SI
	ADDQ    $128, DI
	DECQ    BX
	JNZ     copyloop2

copytail:
	ANDQ    $1, CX
	JZ      copydone
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)

copydone:
	VZEROUPPER
	RET

// func transpose8(dst, src *float32, blocks, lds int)
//
// Transposes 8×8 blocks: for b < blocks, p < 8, j < 8,
// dst[(8b+p)*16+j] = src[j*lds+8b+p]. The rows of dst are 16 floats apart
// (one row of a packed B panel), so two calls fill a panel.
TEXT ·transpose8(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	MOVQ lds+24(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9   // 3·lds
	LEAQ (SI)(R8*4), R10  // row 4
	TESTQ CX, CX
	JZ   trdone

trloop:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (SI)(R9*1), Y3
	VMOVUPS (R10), Y4
	VMOVUPS (R10)(R8*1), Y5
	VMOVUPS (R10)(R8*2), Y6
	VMOVUPS (R10)(R9*1), Y7

	VUNPCKLPS Y1, Y0, Y8  // a0 b0 a1 b1 | a4 b4 a5 b5
	VUNPCKHPS Y1, Y0, Y9  // a2 b2 a3 b3 | a6 b6 a7 b7
	VUNPCKLPS Y3, Y2, Y10 // c0 d0 c1 d1 | ...
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15

	VSHUFPS $0x44, Y10, Y8, Y0  // a0 b0 c0 d0 | a4 b4 c4 d4
	VSHUFPS $0xEE, Y10, Y8, Y1  // a1 b1 c1 d1 | a5 ...
	VSHUFPS $0x44, Y11, Y9, Y2  // a2 ... | a6 ...
	VSHUFPS $0xEE, Y11, Y9, Y3  // a3 ... | a7 ...
	VSHUFPS $0x44, Y14, Y12, Y4 // e0 f0 g0 h0 | e4 ...
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7

	VPERM2F128 $0x20, Y4, Y0, Y8  // column 0
	VPERM2F128 $0x20, Y5, Y1, Y9  // column 1
	VPERM2F128 $0x20, Y6, Y2, Y10 // column 2
	VPERM2F128 $0x20, Y7, Y3, Y11 // column 3
	VPERM2F128 $0x31, Y4, Y0, Y12 // column 4
	VPERM2F128 $0x31, Y5, Y1, Y13 // column 5
	VPERM2F128 $0x31, Y6, Y2, Y14 // column 6
	VPERM2F128 $0x31, Y7, Y3, Y15 // column 7

	VMOVUPS Y8, (DI)
	VMOVUPS Y9, 64(DI)
	VMOVUPS Y10, 128(DI)
	VMOVUPS Y11, 192(DI)
	VMOVUPS Y12, 256(DI)
	VMOVUPS Y13, 320(DI)
	VMOVUPS Y14, 384(DI)
	VMOVUPS Y15, 448(DI)

	ADDQ $32, SI
	ADDQ $32, R10
	ADDQ $512, DI
	DECQ CX
	JNZ  trloop

trdone:
	VZEROUPPER
	RET

// func packAT6(dst, src *float32, panels, kc, lds int)
//
// Packs panels×6 columns of kc rows of a row-major matrix into panels of
// kc×6: dst[r*6*kc+p*6+i] = src[p*lds+r*6+i] for p < kc, r < panels, i < 6.
// Each source row segment is read contiguously and scattered to the panels.
TEXT ·packAT6(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ panels+16(FP), R11
	MOVQ kc+24(FP), CX
	MOVQ lds+32(FP), R8
	SHLQ $2, R8
	LEAQ (CX)(CX*2), R9
	SHLQ $3, R9           // panel stride: 6·kc floats = 24·kc bytes
	TESTQ R11, R11
	JZ   atdone
	TESTQ CX, CX
	JZ   atdone

atrow:
	MOVQ SI, AX
	MOVQ DI, DX
	MOVQ R11, BX

atpanel:
	VMOVUPS (AX), X0
	MOVQ    16(AX), R10
	VMOVUPS X0, (DX)
	MOVQ    R10, 16(DX)
	ADDQ    $24, AX
	ADDQ    R9, DX
	DECQ    BX
	JNZ     atpanel

	ADDQ R8, SI
	ADDQ $24, DI
	DECQ CX
	JNZ  atrow

atdone:
	RET
