package ops

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Float is the element type every kernel in this package is written for.
type Float interface{ ~float32 | ~float64 }

// base holds what every op here shares: a printable name (which is also its
// hash, so two applications of the same op to the same inputs are merged by
// the graph, as Gorgonia intends), the ranks of its inputs and output for the
// type signature, and the usual "no extern, no in-place" answers.
type base struct {
	name  string   // unique description: op kind and every parameter
	ranks []int    // ranks of the inputs, then of the output; 0 means scalar
	out   *outSlot // the output tensor, kept from one run to the next
}

// outSlot holds an op's output between runs. A graph runs the same ops on
// the same shapes every step, so each op writes into the tensor it
// returned last time instead of allocating a new one (Gorgonia's tape
// machine keeps no reference to an op's result beyond the run, and never
// pools it). A result read after a run is therefore overwritten by the
// next run of the same graph.
//
// After ShareBuffers, share names a buffer this op's output uses in turn
// with other ops' outputs; t is then a tensor over its first elements.
type outSlot struct {
	t     *tensor.Dense
	share *shareBuf
	sums  blockSums // scratch of rowBlockSums
}

// alloc returns a zeroed output tensor: the op's kept one when its dtype
// and shape match, else a new one, which is then kept.
func (b base) alloc(dt tensor.Dtype, s tensor.Shape) *tensor.Dense {
	t, reused := b.allocFull(dt, s)
	if reused {
		switch d := t.Data().(type) {
		case []float32:
			clear(d)
		case []float64:
			clear(d)
		}
	}
	return t
}

// allocFull is alloc without the zeroing, for ops that write every element
// of their output; reused reports whether the tensor may hold old values
// (the previous run's, or another op's when the buffer is shared).
func (b base) allocFull(dt tensor.Dtype, s tensor.Shape) (t *tensor.Dense, reused bool) {
	if b.out == nil {
		return newDense(dt, s), false
	}
	if sh := b.out.share; sh != nil && sh.dt == dt && s.TotalSize() <= sh.n {
		if t := b.out.t; t == nil || !sameShape(t.Shape(), s) {
			b.out.t = tensor.New(tensor.WithShape(s.Clone()...), tensor.WithBacking(sh.backing(s.TotalSize())))
		}
		return b.out.t, true
	}
	if t := b.out.t; t != nil && t.Dtype() == dt && sameShape(t.Shape(), s) && !t.IsView() {
		return t, true
	}
	b.out.t = newDense(dt, s)
	return b.out.t, false
}

func (b base) Arity() int           { return len(b.ranks) - 1 }
func (b base) ReturnsPtr() bool     { return false }
func (b base) CallsExtern() bool    { return false }
func (b base) OverwritesInput() int { return -1 }
func (b base) String() string       { return b.name }
func (b base) WriteHash(h hash.Hash) {
	fmt.Fprint(h, b.name)
}
func (b base) Hashcode() uint32 {
	h := fnv.New32a()
	b.WriteHash(h)
	return h.Sum32()
}

// Type is a -> a -> ... -> a over one element type, with the ranks given.
func (b base) Type() hm.Type {
	a := hm.TypeVariable('a')
	ts := make([]hm.Type, len(b.ranks))
	for i, r := range b.ranks {
		if r == 0 {
			ts[i] = a
		} else {
			ts[i] = G.TensorType{Dims: r, Of: a}
		}
	}
	return hm.NewFnType(ts...)
}

// allDiff reports every input as differentiable.
func allDiff(n int) []bool {
	r := make([]bool, n)
	for i := range r {
		r[i] = true
	}
	return r
}

// shapes converts Gorgonia's DimSizers to shapes.
func shapes(ds []G.DimSizer) ([]tensor.Shape, error) {
	out := make([]tensor.Shape, len(ds))
	for i, d := range ds {
		s, ok := d.(tensor.Shape)
		if !ok {
			return nil, errors.Errorf("input %d has no shape (%T)", i, d)
		}
		out[i] = s
	}
	return out, nil
}

// dense returns v as a contiguous *tensor.Dense, materialising views.
func dense(v G.Value) (*tensor.Dense, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, errors.Errorf("expected a tensor, got %T", v)
	}
	if d.RequiresIterator() {
		m, ok := d.Materialize().(*tensor.Dense)
		if !ok {
			return nil, errors.New("cannot materialise view")
		}
		return m, nil
	}
	return d, nil
}

// scalarOf reads a scalar value (a Gorgonia scalar or a one-element tensor).
func scalarOf(v G.Value) (float64, error) {
	switch s := v.(type) {
	case *G.F32:
		return float64(*s), nil
	case *G.F64:
		return float64(*s), nil
	case *tensor.Dense:
		switch d := s.Data().(type) {
		case float32:
			return float64(d), nil
		case float64:
			return d, nil
		case []float32:
			if len(d) == 1 {
				return float64(d[0]), nil
			}
		case []float64:
			if len(d) == 1 {
				return d[0], nil
			}
		}
	}
	return 0, errors.Errorf("expected a scalar, got %T", v)
}

// newScalar returns a Gorgonia scalar of the given dtype.
func newScalar(dt tensor.Dtype, v float64) (G.Value, error) {
	switch dt {
	case tensor.Float32:
		return G.NewF32(float32(v)), nil
	case tensor.Float64:
		return G.NewF64(v), nil
	}
	return nil, errors.Errorf("unsupported dtype %v", dt)
}

// values unpacks inputs to dense tensors of one float dtype.
func values(op string, vs []G.Value) ([]*tensor.Dense, tensor.Dtype, error) {
	out := make([]*tensor.Dense, len(vs))
	var dt tensor.Dtype
	for i, v := range vs {
		d, err := dense(v)
		if err != nil {
			return nil, dt, errors.Wrapf(err, "%s: input %d", op, i)
		}
		if i == 0 {
			dt = d.Dtype()
		} else if d.Dtype() != dt {
			return nil, dt, errors.Errorf("%s: input %d has dtype %v, input 0 has %v", op, i, d.Dtype(), dt)
		}
		out[i] = d
	}
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, dt, errors.Errorf("%s: unsupported dtype %v (want float32 or float64)", op, dt)
	}
	return out, dt, nil
}

// newDense allocates a zeroed tensor.
func newDense(dt tensor.Dtype, s tensor.Shape) *tensor.Dense {
	return tensor.New(tensor.WithShape(s.Clone()...), tensor.Of(dt))
}

// sl returns the backing slice of a float tensor as []T.
func sl[T Float](d *tensor.Dense) []T {
	return d.Data().([]T)
}

// prodInts multiplies the given sizes.
func prodInts(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}

// sameShape compares shapes exactly ((3) and (1, 3) differ).
func sameShape(a, b tensor.Shape) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
