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

// float is the element type every kernel in this package is written for.
type float interface{ ~float32 | ~float64 }

// base holds what every op here shares (see "The op contract" in doc.go):
// a printable name, which is also its hash, the ranks of its inputs and
// output for the type signature, the "no extern, no in-place, no pointer"
// answers, and the slot its output is kept in.
type base struct {
	name  string   // unique description: op kind and every parameter
	ranks []int    // ranks of the inputs, then of the output; 0 means scalar
	out   *outSlot // the output tensor, kept from one run to the next
}

// newBase returns the base of an op named name whose inputs and output
// have the given ranks, with a slot of its own for its output.
func newBase(name string, ranks ...int) base {
	return base{out: new(outSlot), name: name, ranks: ranks}
}

// outSlot holds an op's output between runs (doc.go: "Outputs are kept").
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

// Type is a → a → … → a over one element type, with the ranks given.
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

// run is the Do of the ops here: it unpacks the inputs to contiguous dense
// tensors of one float dtype and calls the op's computation for that
// element type, f32 or f64 (the two instantiations of one generic
// function, so that each op's computation is written once).
func run[O fmt.Stringer](op O, vs []G.Value, f32, f64 func(O, []*tensor.Dense) (G.Value, error)) (G.Value, error) {
	in, dt, err := values(op.String(), vs)
	if err != nil {
		return nil, err
	}
	if dt == tensor.Float32 {
		return f32(op, in)
	}
	return f64(op, in)
}

// output returns the op's output tensor of element type T and shape s,
// for a computation that writes every element (its old values remain).
func output[T float](b base, s tensor.Shape) *tensor.Dense {
	t, _ := b.allocFull(dtypeOf[T](), s)
	return t
}

// zeroed returns the op's output tensor of element type T and shape s,
// zeroed, for a computation that adds into it or leaves elements unset.
func zeroed[T float](b base, s tensor.Shape) *tensor.Dense { return b.alloc(dtypeOf[T](), s) }

// dtypeOf returns the tensor dtype of the element type T.
func dtypeOf[T float]() tensor.Dtype {
	if _, ok := any(T(0)).(float32); ok {
		return tensor.Float32
	}
	return tensor.Float64
}

// infer is the InferShape of the ops here: it converts Gorgonia's
// DimSizers to shapes and applies the op's shape rule to them.
func infer(ds []G.DimSizer, rule func(in []tensor.Shape) (tensor.Shape, error)) (tensor.Shape, error) {
	s, err := shapes(ds)
	if err != nil {
		return nil, err
	}
	return rule(s)
}

// likeFirst is the shape rule of an op whose output has its first input's
// shape.
func likeFirst(in []tensor.Shape) (tensor.Shape, error) { return in[0].Clone(), nil }

// lastAxis is the shape rule of an op that reduces its first input to its
// last axis, (..., n) → (n).
func lastAxis(in []tensor.Shape) (tensor.Shape, error) {
	return tensor.Shape{in[0][len(in[0])-1]}, nil
}

// gradNode applies a backward op; what names the gradient in the error.
func gradNode(what string, op G.Op, inputs ...*G.Node) (*G.Node, error) {
	n, err := G.ApplyOp(op, inputs...)
	if err != nil {
		return nil, errors.Wrap(err, what)
	}
	return n, nil
}

// oneGrad is the SymDiff result of a one-input op: the backward op
// applied to inputs; what names the gradient in the error.
func oneGrad(what string, op G.Op, inputs ...*G.Node) (G.Nodes, error) {
	n, err := gradNode(what, op, inputs...)
	if err != nil {
		return nil, err
	}
	return G.Nodes{n}, nil
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
func sl[T float](d *tensor.Dense) []T {
	return d.Data().([]T)
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
