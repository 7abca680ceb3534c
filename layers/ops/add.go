package ops

import (
	"fmt"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/ops/vec"
)

// Add returns a + b for tensors of the same shape: the residual connection.
// Unlike Gorgonia's Add it writes into a buffer kept between runs and uses
// both cores; the gradient passes unchanged to both inputs.
func Add(a, b *G.Node) (*G.Node, error) {
	if !a.Shape().Eq(b.Shape()) {
		return nil, errors.Errorf("ops.Add: shapes %v and %v, expected equal shapes", a.Shape(), b.Shape())
	}
	r := a.Dims()
	return G.ApplyOp(addOp{newBase(fmt.Sprintf("Add(r%d)", r), r, r, r)}, a, b)
}

type addOp struct{ base }

func (op addOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, op.outShape) }

func (op addOp) outShape(s []tensor.Shape) (tensor.Shape, error) {
	if !s[0].Eq(s[1]) {
		return nil, errors.Errorf("ops.%s: shapes %v and %v, expected equal shapes", op.name, s[0], s[1])
	}
	return s[0].Clone(), nil
}

func (op addOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, addDo[float32], addDo[float64])
}

func addDo[T float](op addOp, in []*tensor.Dense) (G.Value, error) {
	if _, err := op.outShape([]tensor.Shape{in[0].Shape(), in[1].Shape()}); err != nil {
		return nil, err
	}
	y := output[T](op.base, in[0].Shape())
	addFwd(sl[T](in[0]), sl[T](in[1]), sl[T](y))
	return y, nil
}

func addFwd[T float](a, b, y []T) {
	parallelFor(len(a), 1, func(lo, hi int) {
		if y32, ok := any(y).([]float32); ok {
			vec.Add(y32[lo:hi], any(a).([]float32)[lo:hi], any(b).([]float32)[lo:hi])
			return
		}
		for i := lo; i < hi; i++ {
			y[i] = a[i] + b[i]
		}
	})
}

func (op addOp) DiffWRT(n int) []bool { return allDiff(n) }

func (op addOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	return G.Nodes{grad, grad}, nil
}
