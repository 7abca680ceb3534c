package vec

//go:generate sh -c "python3 gen_vec.py > vec_amd64.s"

import "golang.org/x/sys/cpu"

// useAsm reports whether the AVX2/FMA kernels can run on this CPU.
var useAsm = cpu.X86.HasAVX && cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func expShiftSum(dst, src *float32, n int, m float32) float32

//go:noescape
func geluFwd(y, x *float32, n int)

//go:noescape
func geluBwd(dx, x, dy *float32, n int)
