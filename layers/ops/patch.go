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
	return G.ApplyOp(patchOp{base{out: new(outSlot), name: fmt.Sprintf("Patchify(p=%d)", p), ranks: []int{4, 3}}, p}, x)
}

type patchOp struct {
	base
	p int
}

func (op patchOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(ds)
	if err != nil {
		return nil, err
	}
	x := s[0]
	if x.Dims() != 4 || op.p <= 0 || x[2]%op.p != 0 || x[3]%op.p != 0 {
		return nil, errors.Errorf("ops.Patchify: image shape %v is not (B, C, H, W) with H and W divisible by the patch size %d", x, op.p)
	}
	return tensor.Shape{x[0], (x[2] / op.p) * (x[3] / op.p), x[1] * op.p * op.p}, nil
}

func (op patchOp) Do(vs ...G.Value) (G.Value, error) {
	in, dt, err := values(op.name, vs)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape()
	b, c, h, w := s[0], s[1], s[2], s[3]
	y, _ := op.allocFull(dt, tensor.Shape{b, (h / op.p) * (w / op.p), c * op.p * op.p})
	if dt == tensor.Float32 {
		patchCopy(sl[float32](in[0]), sl[float32](y), b, c, h, w, op.p, false)
	} else {
		patchCopy(sl[float64](in[0]), sl[float64](y), b, c, h, w, op.p, false)
	}
	return y, nil
}

// patchCopy moves pixels between image layout and patch layout; reverse
// moves patches back into an image (the adjoint, used for the gradient).
func patchCopy[T Float](img, pat []T, b, c, h, w, p int, reverse bool) {
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
	d, err := G.ApplyOp(unpatchOp{base{out: new(outSlot), name: fmt.Sprintf("Unpatchify(p=%d,%v)", op.p, s), ranks: []int{3, 4}}, op.p, s.Clone()}, grad)
	if err != nil {
		return nil, errors.Wrap(err, "ops.Patchify backward")
	}
	return G.Nodes{d}, nil
}

// unpatchOp is the adjoint of Patchify: (B, N, C·p·p) → (B, C, H, W).
type unpatchOp struct {
	base
	p   int
	img tensor.Shape
}

func (op unpatchOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return op.img.Clone(), nil }

func (op unpatchOp) Do(vs ...G.Value) (G.Value, error) {
	in, dt, err := values(op.name, vs)
	if err != nil {
		return nil, err
	}
	s := op.img
	x := op.alloc(dt, s)
	if dt == tensor.Float32 {
		patchCopy(sl[float32](x), sl[float32](in[0]), s[0], s[1], s[2], s[3], op.p, true)
	} else {
		patchCopy(sl[float64](x), sl[float64](in[0]), s[0], s[1], s[2], s[3], op.p, true)
	}
	return x, nil
}
