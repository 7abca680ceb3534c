package ops

import (
	"fmt"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ConvGeom is the geometry of a square convolution: C input channels on an
// H×W grid, a K×K kernel moved by Stride, the grid padded with Pad zeros on
// every side. ChannelsLast says how the input is laid out: false for
// images (B, C, H, W), true for feature maps (B, H·W, C), the layout a
// Linear over channels and a LayerNorm over channels act on directly.
type ConvGeom struct {
	C, H, W        int
	K, Stride, Pad int
	ChannelsLast   bool
}

// Out returns the output grid, (H + 2·Pad − K)/Stride + 1 by the same for W.
func (g ConvGeom) Out() (ho, wo int) {
	return (g.H+2*g.Pad-g.K)/g.Stride + 1, (g.W+2*g.Pad-g.K)/g.Stride + 1
}

func (g ConvGeom) check() error {
	if g.C <= 0 || g.H <= 0 || g.W <= 0 || g.K <= 0 || g.Stride <= 0 || g.Pad < 0 || g.Pad >= g.K {
		return errors.Errorf("ops.Im2Col: bad geometry %+v (positive sizes, 0 ≤ pad < kernel)", g)
	}
	if ho, wo := g.Out(); ho <= 0 || wo <= 0 {
		return errors.Errorf("ops.Im2Col: kernel %d does not fit the %d×%d grid padded by %d", g.K, g.H, g.W, g.Pad)
	}
	return nil
}

// inShape is the input shape the geometry expects, for batch b.
func (g ConvGeom) inShape(b int) tensor.Shape {
	if g.ChannelsLast {
		return tensor.Shape{b, g.H * g.W, g.C}
	}
	return tensor.Shape{b, g.C, g.H, g.W}
}

// Im2Col gathers, for every output position of the convolution g, the K×K
// window of every input channel: x (B, C, H, W), or (B, H·W, C) when
// g.ChannelsLast, becomes (B, Ho·Wo, C·K·K), positions in row-major order,
// each window in (channel, row, column) order with zeros where it overlaps
// the padding. A PyTorch Conv2d kernel (D, C, K, K) reshaped to (D, C·K·K)
// is then the weight of a Linear that computes the convolution, whose
// output (B, Ho·Wo, D) is channels-last.
func Im2Col(x *G.Node, g ConvGeom) (*G.Node, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	r := 4
	if g.ChannelsLast {
		r = 3
	}
	if x.Dims() != r {
		return nil, errors.Errorf("ops.Im2Col: want input %v for geometry %+v, got shape %v", g.inShape(-1), g, x.Shape())
	}
	return G.ApplyOp(im2colOp{newBase(fmt.Sprintf("Im2Col(%+v)", g), r, 3), g}, x)
}

type im2colOp struct {
	base
	g ConvGeom
}

func (op im2colOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, op.outShape) }

func (op im2colOp) outShape(s []tensor.Shape) (tensor.Shape, error) {
	x := s[0]
	want := op.g.inShape(x[0])
	if !sameShape(x, want) {
		return nil, errors.Errorf("ops.Im2Col: input shape %v, want %v", x, want)
	}
	ho, wo := op.g.Out()
	return tensor.Shape{x[0], ho * wo, op.g.C * op.g.K * op.g.K}, nil
}

func (op im2colOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, im2colDo[float32], im2colDo[float64])
}

func im2colDo[T float](op im2colOp, in []*tensor.Dense) (G.Value, error) {
	b := in[0].Shape()[0]
	ho, wo := op.g.Out()
	y := output[T](op.base, tensor.Shape{b, ho * wo, op.g.C * op.g.K * op.g.K})
	im2col(sl[T](in[0]), sl[T](y), b, op.g, false)
	return y, nil
}

// im2col moves values between the input x and the windows cols. Forward it
// writes every element of cols (zeros for padding); reverse it adds each
// window element back into x, the adjoint (x must start zeroed). Each batch
// element is one worker's, so the reverse adds never race.
func im2col[T float](x, cols []T, b int, g ConvGeom, reverse bool) {
	ho, wo := g.Out()
	kk := g.K * g.K
	k := g.C * kk
	hw := g.H * g.W
	// Input element (bi, c, y, xx) is x[base + c·cs] with base the index of
	// channel 0 at (y, xx): channels are adjacent in the channels-last
	// layout, a whole plane apart in the image layout.
	cs := hw
	if g.ChannelsLast {
		cs = 1
	}
	parallelFor(b, ho*wo*k, func(lo, hi int) {
		for bi := lo; bi < hi; bi++ {
			for oy := 0; oy < ho; oy++ {
				y0 := oy*g.Stride - g.Pad
				for ox := 0; ox < wo; ox++ {
					x0 := ox*g.Stride - g.Pad
					row := cols[((bi*ho+oy)*wo+ox)*k:][:k]
					if !reverse && (y0 < 0 || x0 < 0 || y0+g.K > g.H || x0+g.K > g.W) {
						clear(row) // the window overlaps the padding
					}
					for ky := 0; ky < g.K; ky++ {
						y := y0 + ky
						if y < 0 || y >= g.H {
							continue
						}
						for kx := 0; kx < g.K; kx++ {
							xx := x0 + kx
							if xx < 0 || xx >= g.W {
								continue
							}
							var base int
							if g.ChannelsLast {
								base = (bi*hw + y*g.W + xx) * g.C
							} else {
								base = bi*g.C*hw + y*g.W + xx
							}
							j := ky*g.K + kx
							if reverse {
								for c := 0; c < g.C; c++ {
									x[base+c*cs] += row[c*kk+j]
								}
							} else {
								for c := 0; c < g.C; c++ {
									row[c*kk+j] = x[base+c*cs]
								}
							}
						}
					}
				}
			}
		}
	})
}

func (op im2colOp) DiffWRT(n int) []bool { return allDiff(n) }

func (op im2colOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	s := inputs[0].Shape()
	return oneGrad("ops.Im2Col backward", col2imOp{newBase(fmt.Sprintf("Col2Im(%+v,%v)", op.g, s), 3, len(s)), op.g, s.Clone()}, grad)
}

// col2imOp is the adjoint of Im2Col: (B, Ho·Wo, C·K·K) → the input's shape,
// each window element added back where it was read.
type col2imOp struct {
	base
	g  ConvGeom
	in tensor.Shape
}

func (op col2imOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return op.in.Clone(), nil }

func (op col2imOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, col2imDo[float32], col2imDo[float64])
}

func col2imDo[T float](op col2imOp, in []*tensor.Dense) (G.Value, error) {
	x := zeroed[T](op.base, op.in)
	im2col(sl[T](x), sl[T](in[0]), op.in[0], op.g, true)
	return x, nil
}
