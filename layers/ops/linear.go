package ops

import (
	"fmt"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/ops/sgemm"
	"github.com/vitgo/vit/layers/ops/vec"
)

// Linear returns x·Wᵀ (+ b) over the last axis of x, for x of any rank ≥ 2:
// x is (..., in), w is (out, in) as PyTorch stores it, b is (out) or nil.
// The bias is added row by row, never broadcast into a full-size copy.
func Linear(x, w, b *G.Node) (*G.Node, error) {
	if x.Dims() < 2 || w.Dims() != 2 {
		return nil, errors.Errorf("ops.Linear: want x of rank ≥ 2 and a 2-D weight, got x %v and w %v", x.Shape(), w.Shape())
	}
	r, name := x.Dims(), fmt.Sprintf("Linear(r%d,bias=%t)", x.Dims(), b != nil)
	if b != nil {
		return G.ApplyOp(linearOp{newBase(name, r, 2, 1, r), new(frozenWeight)}, x, w, b)
	}
	return G.ApplyOp(linearOp{newBase(name, r, 2, r), new(frozenWeight)}, x, w)
}

type linearOp struct {
	base
	frozen *frozenWeight // the weight packed once, after FreezeWeights
}

func (op linearOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, linearShape) }

// linearShape is Linear's shape rule.
func linearShape(s []tensor.Shape) (tensor.Shape, error) {
	x, w := s[0], s[1]
	in := x[len(x)-1]
	if w[1] != in {
		return nil, errors.Errorf("ops.Linear: input has %d features (shape %v) but the weight expects %d (shape %v)", in, x, w[1], w)
	}
	if len(s) == 3 && (s[2].Dims() != 1 || s[2][0] != w[0]) {
		return nil, errors.Errorf("ops.Linear: bias shape %v does not match %d outputs", s[2], w[0])
	}
	out := x.Clone()
	out[len(out)-1] = w[0]
	return out, nil
}

func (op linearOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, linearDo[float32], linearDo[float64])
}

func linearDo[T float](op linearOp, in []*tensor.Dense) (G.Value, error) {
	x, w := in[0], in[1]
	s := x.Shape().Clone()
	s[len(s)-1] = w.Shape()[0]
	y := output[T](op.base, s)
	var b *tensor.Dense
	if len(in) == 3 {
		b = in[2]
	}
	if op.frozen != nil && linearFrozen[T](op, x, w, b, y) {
		return y, nil
	}
	linearFwd[T](x, w, b, y)
	return y, nil
}

func linearFwd[T float](x, w, b, y *tensor.Dense) {
	out, in := w.Shape()[0], w.Shape()[1]
	m := x.Shape().TotalSize() / in
	ys := sl[T](y)
	if y32, ok := any(ys).([]float32); ok && b != nil && ownSgemm {
		// The bias goes in inside the GEMM kernel: no separate pass over y.
		x32, w32, b32 := sl[float32](x), sl[float32](w), sl[float32](b)
		if splitByColumns(false, m, out) {
			parallelCols(out, m*in/8, func(lo, hi int) {
				sgemm.SgemmBias(false, true, m, hi-lo, in, 1, x32, in, w32[lo*in:], in, 0, y32[lo:], out, b32[lo:hi])
			})
			return
		}
		parallelFor(m, out*in/8, func(lo, hi int) {
			sgemm.SgemmBias(false, true, hi-lo, out, in, 1, x32[lo*in:], in, w32, in, 0, y32[lo*out:], out, b32)
		})
		return
	}
	beta := T(0)
	if b != nil {
		bs := sl[T](b)
		parallelFor(m, out, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				copy(ys[r*out:(r+1)*out], bs)
			}
		})
		beta = 1
	}
	gemmPar(false, true, m, out, in, 1, sl[T](x), in, sl[T](w), in, beta, ys, out)
}

func (op linearOp) DiffWRT(n int) []bool { return allDiff(n) }

func (op linearOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	x, w := inputs[0], inputs[1]
	r := x.Dims()
	dx, err := gradNode("ops.Linear backward (input)", matmulNN{newBase(fmt.Sprintf("LinearGradX(r%d)", r), r, 2, r)}, grad, w)
	if err != nil {
		return nil, err
	}
	dw, err := gradNode("ops.Linear backward (weight)", linGradW{newBase(fmt.Sprintf("LinearGradW(r%d)", r), r, r, 2)}, grad, x)
	if err != nil {
		return nil, err
	}
	if len(inputs) == 2 {
		return G.Nodes{dx, dw}, nil
	}
	return withRowSum("ops.Linear backward (bias)", G.Nodes{dx, dw}, grad)
}

// matmulNN: (..., k) · (k, n) → (..., n), the input gradient of Linear.
type matmulNN struct{ base }

func (op matmulNN) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, matmulShape) }

// matmulShape is matmulNN's shape rule.
func matmulShape(s []tensor.Shape) (tensor.Shape, error) {
	out := s[0].Clone()
	out[len(out)-1] = s[1][1]
	return out, nil
}

func (op matmulNN) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, matmulDo[float32], matmulDo[float64])
}

func matmulDo[T float](op matmulNN, in []*tensor.Dense) (G.Value, error) {
	a, b := in[0], in[1]
	k, n := b.Shape()[0], b.Shape()[1]
	s := a.Shape().Clone()
	s[len(s)-1] = n
	y := output[T](op.base, s)
	m := a.Shape().TotalSize() / k
	gemmPar(false, false, m, n, k, 1, sl[T](a), k, sl[T](b), n, 0, sl[T](y), n)
	return y, nil
}

// linGradW: dy (..., out), x (..., in) → dyᵀ·x (out, in), the weight gradient.
type linGradW struct{ base }

func (op linGradW) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return infer(ds, linGradWShape)
}

// linGradWShape is linGradW's shape rule.
func linGradWShape(s []tensor.Shape) (tensor.Shape, error) {
	return tensor.Shape{s[0][len(s[0])-1], s[1][len(s[1])-1]}, nil
}

func (op linGradW) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, linGradWDo[float32], linGradWDo[float64])
}

func linGradWDo[T float](op linGradW, in []*tensor.Dense) (G.Value, error) {
	dy, x := in[0], in[1]
	out, inF := dy.Shape()[dy.Dims()-1], x.Shape()[x.Dims()-1]
	m := x.Shape().TotalSize() / inF
	y := output[T](op.base, tensor.Shape{out, inF})
	gemmPar(true, false, out, inF, m, 1, sl[T](dy), out, sl[T](x), inF, 0, sl[T](y), inF)
	return y, nil
}

// sumRowsOf returns the op that sums x (..., n) over every axis but the
// last, giving (n): the gradient of a bias or of any parameter added to
// every row.
func sumRowsOf(x *G.Node) sumRowsOp {
	return sumRowsOp{newBase(fmt.Sprintf("SumRows(r%d)", x.Dims()), x.Dims(), 1)}
}

// withRowSum appends to grads the gradient of a parameter added to every
// row of the output (a bias, LayerNorm's shift): grad summed over the rows.
func withRowSum(what string, grads G.Nodes, grad *G.Node) (G.Nodes, error) {
	d, err := gradNode(what, sumRowsOf(grad), grad)
	if err != nil {
		return nil, err
	}
	return append(grads, d), nil
}

type sumRowsOp struct{ base }

func (op sumRowsOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, lastAxis) }

func (op sumRowsOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, sumRowsDo[float32], sumRowsDo[float64])
}

func sumRowsDo[T float](op sumRowsOp, in []*tensor.Dense) (G.Value, error) {
	x := in[0]
	n := x.Shape()[x.Dims()-1]
	y := zeroed[T](op.base, tensor.Shape{n})
	sumRows(op.sums(), sl[T](x), sl[T](y), n)
	return y, nil
}

func sumRows[T float](buf *blockSums, x, y []T, n int) {
	if x32, ok := any(x).([]float32); ok {
		y32, rows := any(y).([]float32), len(x)/n
		total := rowBlockSums(buf, rows, n, n, func(acc []float32, r int) {
			vec.AddTo(acc, x32[r*n:(r+1)*n])
		})
		for j := range total {
			y32[j] += float32(total[j])
		}
		return
	}
	for r := 0; r+n <= len(x); r += n {
		row := x[r : r+n]
		for j, v := range row {
			y[j] += v
		}
	}
}
