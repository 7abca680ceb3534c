// Package gradcheck compares Gorgonia's symbolic gradients with central
// finite differences, in float64. Every op and layer of this module is
// checked with it; it works for any function of Gorgonia nodes.
package gradcheck

import (
	"fmt"
	"math"
	"math/rand"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Builder builds the function under test from its inputs (float64 nodes,
// one per tensor given to Check) and returns its output node.
type Builder func(g *G.ExprGraph, inputs G.Nodes) (*G.Node, error)

// Result is the outcome for one input.
type Result struct {
	Name      string
	MaxAbsErr float64 // largest |analytic − numeric| over the checked elements
	Scale     float64 // largest |numeric| (at least 1e-3): the error is judged relative to it
	RelErr    float64 // MaxAbsErr / Scale
	NonZero   bool    // the analytic gradient has a non-zero element
	Checked   int     // elements checked
}

func (r Result) String() string {
	return fmt.Sprintf("%s: rel err %.2e (abs %.2e, scale %.2e, %d elements, non-zero %t)", r.Name, r.RelErr, r.MaxAbsErr, r.Scale, r.Checked, r.NonZero)
}

// Options tune Check.
type Options struct {
	Eps         float64 // finite-difference step; default 1e-6
	MaxElements int     // elements checked per input (a random sample beyond that); default 64
	Seed        int64   // for the output weights and the sample
	// Prepare, if set, runs after the first forward pass, before the
	// finite differences (e.g. to freeze a dropout mask).
	Prepare func()
}

// Check builds cost = Σ out ⊙ R for a fixed random R (or cost = out when
// out is a scalar), asks Gorgonia for the gradient of every input, and
// compares it with central differences of the cost.
func Check(build Builder, inputs []*tensor.Dense, opt Options) ([]Result, error) {
	if opt.Eps == 0 {
		opt.Eps = 1e-6
	}
	if opt.MaxElements == 0 {
		opt.MaxElements = 64
	}
	rng := rand.New(rand.NewSource(opt.Seed))
	g := G.NewGraph()
	nodes := make(G.Nodes, len(inputs))
	for i, in := range inputs {
		if in.Dtype() != tensor.Float64 {
			return nil, errors.Errorf("gradcheck: input %d is %v, want float64", i, in.Dtype())
		}
		nodes[i] = G.NewTensor(g, tensor.Float64, in.Dims(), G.WithShape(in.Shape()...), G.WithValue(in), G.WithName(fmt.Sprintf("in%d", i)))
	}
	out, err := build(g, nodes)
	if err != nil {
		return nil, errors.Wrap(err, "gradcheck: build")
	}
	cost := out
	if !out.IsScalar() {
		r := tensor.New(tensor.WithShape(out.Shape().Clone()...), tensor.Of(tensor.Float64))
		for i, d := 0, r.Data().([]float64); i < len(d); i++ {
			d[i] = rng.NormFloat64()
		}
		rn := G.NewTensor(g, tensor.Float64, out.Dims(), G.WithShape(out.Shape().Clone()...), G.WithValue(r), G.WithName("R"))
		cost, err = G.Sum(G.Must(G.HadamardProd(out, rn)))
		if err != nil {
			return nil, errors.Wrap(err, "gradcheck: cost")
		}
	}
	return CheckGraph(cost, nodes, opt, rng)
}

// CheckGraph checks the gradient of a scalar float64 cost node with respect
// to nodes of its graph that hold values (inputs or parameters), perturbing
// their data in place and restoring it. The graph must not have been
// differentiated yet. rng picks the checked elements (nil: seeded from opt).
func CheckGraph(cost *G.Node, wrt G.Nodes, opt Options, rng *rand.Rand) ([]Result, error) {
	if opt.Eps == 0 {
		opt.Eps = 1e-6
	}
	if opt.MaxElements == 0 {
		opt.MaxElements = 64
	}
	if rng == nil {
		rng = rand.New(rand.NewSource(opt.Seed))
	}
	if _, err := G.Grad(cost, wrt...); err != nil {
		return nil, errors.Wrap(err, "gradcheck: Grad")
	}
	vm := G.NewTapeMachine(cost.Graph(), G.BindDualValues(wrt...))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return nil, errors.Wrap(err, "gradcheck: first run")
	}
	analytic := make([][]float64, len(wrt))
	for i, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			return nil, errors.Wrapf(err, "gradcheck: gradient of %v", n.Name())
		}
		analytic[i] = append([]float64(nil), gv.Data().([]float64)...)
	}
	if opt.Prepare != nil {
		opt.Prepare()
	}
	eval := func() (float64, error) {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			return 0, err
		}
		switch v := cost.Value().(type) {
		case *G.F64:
			return float64(*v), nil
		case *tensor.Dense:
			return v.Data().(float64), nil
		}
		return 0, errors.Errorf("gradcheck: cost value is %T", cost.Value())
	}
	res := make([]Result, len(wrt))
	for i, n := range wrt {
		data, ok := n.Value().Data().([]float64)
		if !ok {
			return nil, errors.Errorf("gradcheck: %v is not float64", n.Name())
		}
		idx := rng.Perm(len(data))
		if len(idx) > opt.MaxElements {
			idx = idx[:opt.MaxElements]
		}
		r := Result{Name: fmt.Sprintf("%s %v", n.Name(), n.Shape()), Scale: 1e-3, Checked: len(idx)}
		for _, a := range analytic[i] {
			if a != 0 {
				r.NonZero = true
				break
			}
		}
		for _, j := range idx {
			orig := data[j]
			data[j] = orig + opt.Eps
			fp, err := eval()
			if err != nil {
				return nil, err
			}
			data[j] = orig - opt.Eps
			fm, err := eval()
			if err != nil {
				return nil, err
			}
			data[j] = orig
			num := (fp - fm) / (2 * opt.Eps)
			r.MaxAbsErr = math.Max(r.MaxAbsErr, math.Abs(num-analytic[i][j]))
			r.Scale = math.Max(r.Scale, math.Abs(num))
		}
		r.RelErr = r.MaxAbsErr / r.Scale
		res[i] = r
	}
	return res, nil
}

// Random returns a float64 tensor of the given shape with N(0, std²)
// elements drawn from rng.
func Random(rng *rand.Rand, std float64, shape ...int) *tensor.Dense {
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float64))
	for i, d := 0, t.Data().([]float64); i < len(d); i++ {
		d[i] = rng.NormFloat64() * std
	}
	return t
}

// T is the part of *testing.T that Assert needs.
type T interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// Assert runs Check and fails t when any input's relative error exceeds
// tol, or when an input's gradient is identically zero.
func Assert(t T, build Builder, inputs []*tensor.Dense, tol float64, opt Options) {
	t.Helper()
	res, err := Check(build, inputs, opt)
	if err != nil {
		t.Fatalf("%+v", err)
	}
	Expect(t, res, tol)
}

// Expect fails t when any result's relative error exceeds tol, or when a
// gradient is identically zero; it logs every result.
func Expect(t T, res []Result, tol float64) {
	t.Helper()
	for _, r := range res {
		t.Logf("%v", r)
		if !(r.RelErr <= tol) {
			t.Errorf("gradient mismatch: %v (tolerance %.1e)", r, tol)
		}
		if !r.NonZero {
			t.Errorf("zero gradient: %v", r)
		}
	}
}
