package ops

import (
	"fmt"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Patchify cuts images x (B, C, H, W) into non-overlapping p×p patches and
// flattens each: the result is (B, N, C·p·p) with N = (H/p)·(W/p) patches in
// row-major order, each flattened in (channel, row, column) order. A
// convolution kernel (D, C, p, p) reshaped to (D, C·p·p) is therefore exactly
// the projection matrix of the patch embedding.
func Patchify(x *G.Node, p int) (*G.Node, error) {
	if x.Dims() != 4 {
		return nil, errors.Errorf("ops.Patchify: want images (B, C, H, W), got shape %v", x.Shape())
	}
	return G.ApplyOp(patchOp{newBase(fmt.Sprintf("Patchify(p=%d)", p), 4, 3), p}, x)
}

type patchOp struct {
	base
	p int
}

func (op patchOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, op.outShape) }

func (op patchOp) outShape(s []tensor.Shape) (tensor.Shape, error) {
	x := s[0]
	if x.Dims() != 4 || op.p <= 0 || x[2]%op.p != 0 || x[3]%op.p != 0 {
		return nil, errors.Errorf("ops.Patchify: image shape %v is not (B, C, H, W) with H and W divisible by the patch size %d", x, op.p)
	}
	return tensor.Shape{x[0], (x[2] / op.p) * (x[3] / op.p), x[1] * op.p * op.p}, nil
}

func (op patchOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, patchDo[float32], patchDo[float64])
}

func patchDo[T float](op patchOp, in []*tensor.Dense) (G.Value, error) {
	s := in[0].Shape()
	b, c, h, w := s[0], s[1], s[2], s[3]
	y := output[T](op.base, tensor.Shape{b, (h / op.p) * (w / op.p), c * op.p * op.p})
	patchCopy(sl[T](in[0]), sl[T](y), b, c, h, w, op.p, false)
	return y, nil
}

// patchCopy moves pixels between image layout and patch layout; reverse
// moves patches back into an image (the adjoint, used for the gradient).
func patchCopy[T float](img, pat []T, b, c, h, w, p int, reverse bool) {
	gw := w / p
	n := (h / p) * gw
	k := c * p * p
	for bi := 0; bi < b; bi++ {
		for t := 0; t < n; t++ {
			r0, c0 := (t/gw)*p, (t%gw)*p
			dst := pat[(bi*n+t)*k:]
			for ch := 0; ch < c; ch++ {
				for i := 0; i < p; i++ {
					src := img[((bi*c+ch)*h+r0+i)*w+c0:][:p]
					row := dst[(ch*p+i)*p:][:p]
					if reverse {
						copy(src, row)
					} else {
						copy(row, src)
					}
				}
			}
		}
	}
}

func (op patchOp) DiffWRT(n int) []bool { return allDiff(n) }

func (op patchOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	s := inputs[0].Shape()
	return oneGrad("ops.Patchify backward", unpatchOp{newBase(fmt.Sprintf("Unpatchify(p=%d,%v)", op.p, s), 3, 4), op.p, s.Clone()}, grad)
}

// unpatchOp is the adjoint of Patchify: (B, N, C·p·p) → (B, C, H, W).
type unpatchOp struct {
	base
	p   int
	img tensor.Shape
}

func (op unpatchOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return op.img.Clone(), nil }

func (op unpatchOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, unpatchDo[float32], unpatchDo[float64])
}

func unpatchDo[T float](op unpatchOp, in []*tensor.Dense) (G.Value, error) {
	s := op.img
	x := zeroed[T](op.base, s)
	patchCopy(sl[T](x), sl[T](in[0]), s[0], s[1], s[2], s[3], op.p, true)
	return x, nil
}
