package ops

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/ops/vec"
)

// GELU applies the Gaussian error linear unit element-wise. exact selects
// x·Φ(x) with the error function (PyTorch's default); otherwise the tanh
// approximation 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) used by the original
// JAX ViT weights (PyTorch's approximate="tanh").
func GELU(x *G.Node, exact bool) (*G.Node, error) {
	r := x.Dims()
	return G.ApplyOp(geluOp{base{out: new(outSlot), name: fmt.Sprintf("GELU(r%d,exact=%t)", r, exact), ranks: []int{r, r}}, exact}, x)
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

func (op geluOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(ds)
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op geluOp) Do(vs ...G.Value) (G.Value, error) {
	in, dt, err := values(op.name, vs)
	if err != nil {
		return nil, err
	}
	y, _ := op.allocFull(dt, in[0].Shape())
	if dt == tensor.Float32 {
		geluFwd(sl[float32](in[0]), sl[float32](y), op.exact)
	} else {
		geluFwd(sl[float64](in[0]), sl[float64](y), op.exact)
	}
	return y, nil
}

func geluFwd[T Float](x, y []T, exact bool) {
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
	dx, err := G.ApplyOp(geluGrad{base{out: new(outSlot), name: fmt.Sprintf("GELUGrad(r%d,exact=%t)", r, op.exact), ranks: []int{r, r, r}}, op.exact}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// geluGrad: (x, dy) → dy·GELU'(x).
type geluGrad struct {
	base
	exact bool
}

func (op geluGrad) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(ds)
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op geluGrad) Do(vs ...G.Value) (G.Value, error) {
	in, dt, err := values(op.name, vs)
	if err != nil {
		return nil, err
	}
	dx, _ := op.allocFull(dt, in[0].Shape())
	if dt == tensor.Float32 {
		geluBwd(sl[float32](in[0]), sl[float32](in[1]), sl[float32](dx), op.exact)
	} else {
		geluBwd(sl[float64](in[0]), sl[float64](in[1]), sl[float64](dx), op.exact)
	}
	return dx, nil
}

func geluBwd[T Float](x, dy, dx []T, exact bool) {
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
