//go:build !amd64

package vec

const useAsm = false

func expShiftSum(dst, src *float32, n int, m float32) float32 {
	panic("vec: no assembly kernel on this architecture")
}

func geluFwd(y, x *float32, n int) { panic("vec: no assembly kernel on this architecture") }

func geluBwd(dx, x, dy *float32, n int) { panic("vec: no assembly kernel on this architecture") }
