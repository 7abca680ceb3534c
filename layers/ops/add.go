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
	return G.ApplyOp(addOp{base{out: new(outSlot), name: fmt.Sprintf("Add(r%d)", r), ranks: []int{r, r, r}}}, a, b)
}

type addOp struct{ base }

func (op addOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(ds)
	if err != nil {
		return nil, err
	}
	if !s[0].Eq(s[1]) {
		return nil, errors.Errorf("ops.%s: shapes %v and %v, expected equal shapes", op.name, s[0], s[1])
	}
	return s[0].Clone(), nil
}

func (op addOp) Do(vs ...G.Value) (G.Value, error) {
	in, dt, err := values(op.name, vs)
	if err != nil {
		return nil, err
	}
	if !in[0].Shape().Eq(in[1].Shape()) {
		return nil, errors.Errorf("ops.%s: shapes %v and %v, expected equal shapes", op.name, in[0].Shape(), in[1].Shape())
	}
	y, _ := op.allocFull(dt, in[0].Shape())
	if dt == tensor.Float32 {
		addFwd(sl[float32](in[0]), sl[float32](in[1]), sl[float32](y))
	} else {
		addFwd(sl[float64](in[0]), sl[float64](in[1]), sl[float64](y))
	}
	return y, nil
}

func addFwd[T Float](a, b, y []T) {
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
