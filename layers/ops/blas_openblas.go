//go:build openblas

package ops

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int);
import "C"

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// BLAS names the matrix-multiply library in use.
const BLAS = "openblas"

// With -tags openblas every GEMM of this package, and Gorgonia's own, runs
// on OpenBLAS through cgo (Debian: libopenblas-dev).
func init() {
	blas32.Use(netlib.Implementation{})
	blas64.Use(netlib.Implementation{})
	G.Use(netlib.Implementation{})
	// One OpenBLAS thread per call: the ops run calls on every core
	// themselves, and OpenBLAS's own threads would compete with them.
	C.openblas_set_num_threads(1)
	splitGEMM = true
}
