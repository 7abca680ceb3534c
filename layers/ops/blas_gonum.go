//go:build !openblas

package ops

// BLAS names the matrix-multiply library in use: gonum's pure-Go one by
// default, OpenBLAS when built with -tags openblas.
const BLAS = "gonum"
