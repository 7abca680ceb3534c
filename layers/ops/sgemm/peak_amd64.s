//go:build amd64

#include "textflag.h"

// FMA throughput loops for BenchmarkPeak: n iterations of 12 independent
// fused multiply-add chains (enough to cover the FMA latency on two pipes),
// on 256-bit (8 floats) or 512-bit (16 floats) registers. Each FMA is two
// floating-point operations per lane.

// func fmaLoopAVX2(n int)
TEXT ·fmaLoopAVX2(SB), NOSPLIT, $0-8
	MOVQ         n+0(FP), CX
	VXORPS       Y0, Y0, Y0
	VXORPS       Y1, Y1, Y1
	VXORPS       Y2, Y2, Y2
	VXORPS       Y3, Y3, Y3
	VXORPS       Y4, Y4, Y4
	VXORPS       Y5, Y5, Y5
	VXORPS       Y6, Y6, Y6
	VXORPS       Y7, Y7, Y7
	VXORPS       Y8, Y8, Y8
	VXORPS       Y9, Y9, Y9
	VXORPS       Y10, Y10, Y10
	VXORPS       Y11, Y11, Y11
	VXORPS       Y12, Y12, Y12
	VXORPS       Y13, Y13, Y13
	TESTQ        CX, CX
	JZ           done2
loop2:
	VFMADD231PS  Y12, Y13, Y0
	VFMADD231PS  Y12, Y13, Y1
	VFMADD231PS  Y12, Y13, Y2
	VFMADD231PS  Y12, Y13, Y3
	VFMADD231PS  Y12, Y13, Y4
	VFMADD231PS  Y12, Y13, Y5
	VFMADD231PS  Y12, Y13, Y6
	VFMADD231PS  Y12, Y13, Y7
	VFMADD231PS  Y12, Y13, Y8
	VFMADD231PS  Y12, Y13, Y9
	VFMADD231PS  Y12, Y13, Y10
	VFMADD231PS  Y12, Y13, Y11
	DECQ         CX
	JNZ          loop2
done2:
	VZEROUPPER
	RET

// func fmaLoopAVX512(n int)
TEXT ·fmaLoopAVX512(SB), NOSPLIT, $0-8
	MOVQ         n+0(FP), CX
	VXORPS       Z0, Z0, Z0
	VXORPS       Z1, Z1, Z1
	VXORPS       Z2, Z2, Z2
	VXORPS       Z3, Z3, Z3
	VXORPS       Z4, Z4, Z4
	VXORPS       Z5, Z5, Z5
	VXORPS       Z6, Z6, Z6
	VXORPS       Z7, Z7, Z7
	VXORPS       Z8, Z8, Z8
	VXORPS       Z9, Z9, Z9
	VXORPS       Z10, Z10, Z10
	VXORPS       Z11, Z11, Z11
	VXORPS       Z12, Z12, Z12
	VXORPS       Z13, Z13, Z13
	TESTQ        CX, CX
	JZ           done5
loop5:
	VFMADD231PS  Z12, Z13, Z0
	VFMADD231PS  Z12, Z13, Z1
	VFMADD231PS  Z12, Z13, Z2
	VFMADD231PS  Z12, Z13, Z3
	VFMADD231PS  Z12, Z13, Z4
	VFMADD231PS  Z12, Z13, Z5
	VFMADD231PS  Z12, Z13, Z6
	VFMADD231PS  Z12, Z13, Z7
	VFMADD231PS  Z12, Z13, Z8
	VFMADD231PS  Z12, Z13, Z9
	VFMADD231PS  Z12, Z13, Z10
	VFMADD231PS  Z12, Z13, Z11
	DECQ         CX
	JNZ          loop5
done5:
	VZEROUPPER
	RET

