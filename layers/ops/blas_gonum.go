//go:build !openblas

package ops

// BLAS names the matrix-multiply library in use: this module's own SGEMM
// (package sgemm) for float32 by default, OpenBLAS when built with
// -tags openblas. float64 products use gonum's pure-Go BLAS by default.
const BLAS = "sgemm"

// Our SGEMM is single-threaded: the ops split large products across the
// cores themselves.
func init() {
	ownSgemm = true
	splitGEMM = true
}
