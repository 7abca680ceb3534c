// Package graphtest helps tests that build small Gorgonia graphs: run one,
// read a value as float64, compare values. The tests of layers, layers/ops
// and train/optim use it.
package graphtest

import (
	"fmt"
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
)

// Run runs g once on a tape machine, failing t if the run fails. The
// nodes' values can be read afterwards.
func Run(t testing.TB, g *G.ExprGraph) {
	t.Helper()
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatalf("%+v", err)
	}
}

// Float64s returns a copy of a float32 or float64 value's data as float64.
func Float64s(v G.Value) []float64 {
	switch d := v.Data().(type) {
	case []float64:
		return append([]float64(nil), d...)
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out
	}
	panic(fmt.Sprintf("graphtest: unexpected data %T", v.Data()))
}

// MaxAbsDiff returns the largest |a[i] − b[i]|.
func MaxAbsDiff(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}
