package vec

//go:generate sh -c "python3 gen_vec.py > vec_amd64.s"

import (
	"os"

	"golang.org/x/sys/cpu"
)

// useAsm reports whether the AVX2/FMA kernels can run on this CPU.
// VIT_CPU=generic in the environment forces the pure-Go code, to test it
// or compare it on a CPU that has AVX2 (docs/performance.md).
var useAsm = cpu.X86.HasAVX && cpu.X86.HasAVX2 && cpu.X86.HasFMA && os.Getenv("VIT_CPU") != "generic"

//go:noescape
func expShiftSum(dst, src *float32, n int, m float32) float32

//go:noescape
func geluFwd(y, x *float32, n int)

//go:noescape
func geluBwd(dx, x, dy *float32, n int)

//go:noescape
func sumDev(x *float32, n int, m float32) (s, q float32)

//go:noescape
func normAffine(y, x, gamma, b *float32, n int, m, s float32)

//go:noescape
func lnBwdSums(x, dy, gamma *float32, n int, m float32) (sg, sgx float32)

//go:noescape
func lnBwdOut(dx, x, dy, gamma *float32, n int, m, c1, c2, c3 float32)

//go:noescape
func accXhatDy(acc, x, dy *float32, n int, m, s float32)

//go:noescape
func softmaxRows(dst, src *float32, rows, n, ldd, lds int)

//go:noescape
func softmaxBwdRows(ds, p, grad *float32, rows, n, ldds, ldp, ldg int)

//go:noescape
func addTo(acc, x *float32, n int)

//go:noescape
func add3(y, a, b *float32, n int)
