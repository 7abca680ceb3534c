package ops

import (
	"fmt"
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/ops/vec"
)

// GELUForm selects the formula of GELU.
type GELUForm uint8

const (
	// GELUExact is x·Φ(x) with the error function (PyTorch's default).
	GELUExact GELUForm = iota
	// GELUTanh is the approximation 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))
	// used by the original JAX ViT weights (PyTorch's approximate="tanh").
	GELUTanh
)

// GELU applies the Gaussian error linear unit element-wise, in the given
// form. The backward pass is the analytic derivative of that form.
func GELU(x *G.Node, form GELUForm) (*G.Node, error) {
	if form != GELUExact && form != GELUTanh {
		return nil, errors.Errorf("ops.GELU: invalid GELUForm %d", form)
	}
	exact := form == GELUExact
	r := x.Dims()
	return G.ApplyOp(geluOp{newBase(fmt.Sprintf("GELU(r%d,exact=%t)", r, exact), r, r), exact}, x)
}

type geluOp struct {
	base
	exact bool
}

const (
	sqrt2       = math.Sqrt2
	sqrt2OverPi = 0.7978845608028654 // √(2/π)
	invSqrt2Pi  = 0.3989422804014327 // 1/√(2π)
	geluC       = 0.044715
)

func (op geluOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, likeFirst) }

func (op geluOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, geluDo[float32], geluDo[float64])
}

func geluDo[T float](op geluOp, in []*tensor.Dense) (G.Value, error) {
	y := output[T](op.base, in[0].Shape())
	geluFwd(sl[T](in[0]), sl[T](y), op.exact)
	return y, nil
}

func geluFwd[T float](x, y []T, exact bool) {
	if x32, ok := any(x).([]float32); ok && exact {
		y32 := any(y).([]float32)
		parallelFor(len(x), 2, func(lo, hi int) { vec.GELU(y32[lo:hi], x32[lo:hi]) })
		return
	}
	parallelFor(len(x), 20, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			if exact {
				y[i] = T(0.5 * v * (1 + math.Erf(v/sqrt2)))
			} else {
				y[i] = T(0.5 * v * (1 + math.Tanh(sqrt2OverPi*(v+geluC*v*v*v))))
			}
		}
	})
}

func (op geluOp) DiffWRT(n int) []bool { return allDiff(n) }

func (op geluOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	r := inputs[0].Dims()
	g := geluGrad{newBase(fmt.Sprintf("GELUGrad(r%d,exact=%t)", r, op.exact), r, r, r), op.exact}
	return oneGrad("ops.GELU backward", g, inputs[0], grad)
}

// geluGrad: (x, dy) → dy·GELU'(x).
type geluGrad struct {
	base
	exact bool
}

func (op geluGrad) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, likeFirst) }

func (op geluGrad) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, geluGradDo[float32], geluGradDo[float64])
}

func geluGradDo[T float](op geluGrad, in []*tensor.Dense) (G.Value, error) {
	dx := output[T](op.base, in[0].Shape())
	geluBwd(sl[T](in[0]), sl[T](in[1]), sl[T](dx), op.exact)
	return dx, nil
}

func geluBwd[T float](x, dy, dx []T, exact bool) {
	if x32, ok := any(x).([]float32); ok && exact {
		dy32, dx32 := any(dy).([]float32), any(dx).([]float32)
		parallelFor(len(x), 2, func(lo, hi int) { vec.GELUGrad(dx32[lo:hi], x32[lo:hi], dy32[lo:hi]) })
		return
	}
	parallelFor(len(x), 30, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			var d float64
			if exact {
				d = 0.5*(1+math.Erf(v/sqrt2)) + v*invSqrt2Pi*math.Exp(-0.5*v*v)
			} else {
				t := math.Tanh(sqrt2OverPi * (v + geluC*v*v*v))
				d = 0.5*(1+t) + 0.5*v*(1-t*t)*sqrt2OverPi*(1+3*geluC*v*v)
			}
			dx[i] = T(d * float64(dy[i]))
		}
	})
}
