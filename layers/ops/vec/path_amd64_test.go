package vec

import (
	"os"
	"testing"
)

// forEachPath runs check with the assembly kernels (when the CPU has them)
// and with the pure-Go code.
func forEachPath(t *testing.T, check func(*testing.T)) {
	saved := useAsm
	defer func() { useAsm = saved }()
	if saved {
		t.Run("asm", check)
	} else {
		t.Log("no AVX2/FMA: assembly not tested")
	}
	useAsm = false
	t.Run("go", check)
}

// TestCPUSwitch: VIT_CPU=generic turns the assembly off (CI runs the tests
// of layers/ and model/ once so).
func TestCPUSwitch(t *testing.T) {
	if os.Getenv("VIT_CPU") == "generic" && useAsm {
		t.Error("VIT_CPU=generic, yet the assembly kernels are on")
	}
}
