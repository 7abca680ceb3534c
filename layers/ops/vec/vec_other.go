//go:build !amd64

package vec

const useAsm = false

func expShiftSum(dst, src *float32, n int, m float32) float32 {
	panic("vec: no assembly kernel on this architecture")
}

func geluFwd(y, x *float32, n int) { panic("vec: no assembly kernel on this architecture") }

func geluBwd(dx, x, dy *float32, n int) { panic("vec: no assembly kernel on this architecture") }

func sumDev(x *float32, n int, m float32) (s, q float32) { panic("vec: no assembly kernel") }

func normAffine(y, x, gamma, b *float32, n int, m, s float32) { panic("vec: no assembly kernel") }

func lnBwdSums(x, dy, gamma *float32, n int, m float32) (sg, sgx float32) {
	panic("vec: no assembly kernel")
}

func lnBwdOut(dx, x, dy, gamma *float32, n int, m, c1, c2, c3 float32) {
	panic("vec: no assembly kernel")
}

func accXhatDy(acc, x, dy *float32, n int, m, s float32) { panic("vec: no assembly kernel") }

func softmaxRows(dst, src *float32, rows, n, ldd, lds int) { panic("vec: no assembly kernel") }

func softmaxBwdRows(ds, p, grad *float32, rows, n, ldds, ldp, ldg int) {
	panic("vec: no assembly kernel")
}

func addTo(acc, x *float32, n int) { panic("vec: no assembly kernel") }

func add3(y, a, b *float32, n int) { panic("vec: no assembly kernel") }
