package ops

import (
	"fmt"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/gradcheck"
)

// im2colGeoms are the geometries the tests run: both layouts, strides 1
// and 2, with and without padding, odd and even grids.
var im2colGeoms = []ConvGeom{
	{C: 2, H: 5, W: 6, K: 3, Stride: 1, Pad: 1},
	{C: 3, H: 6, W: 6, K: 3, Stride: 2, Pad: 1, ChannelsLast: true},
	{C: 2, H: 7, W: 5, K: 3, Stride: 2, Pad: 0},
	{C: 1, H: 4, W: 4, K: 2, Stride: 2, Pad: 0, ChannelsLast: true},
}

func TestIm2ColGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, g := range im2colGeoms {
		t.Run(fmt.Sprintf("%+v", g), func(t *testing.T) {
			gradcheck.Assert(t, func(_ *G.ExprGraph, n G.Nodes) (*G.Node, error) {
				return Im2Col(n[0], g)
			}, []*tensor.Dense{gradcheck.Random(rng, 1, g.inShape(2)...)}, 1e-6, gradcheck.Options{MaxElements: 120})
		})
	}
}

// TestIm2ColValues checks every window element against the definition of
// a convolution's input window, read directly from the input.
func TestIm2ColValues(t *testing.T) {
	for _, g := range im2colGeoms {
		const b = 2
		x := make([]float64, g.inShape(b).TotalSize())
		for i := range x {
			x[i] = float64(i + 1)
		}
		ho, wo := g.Out()
		k := g.C * g.K * g.K
		cols := make([]float64, b*ho*wo*k)
		for i := range cols {
			cols[i] = -1 // must all be overwritten
		}
		im2col(x, cols, b, g, false)
		for bi := 0; bi < b; bi++ {
			for oy := 0; oy < ho; oy++ {
				for ox := 0; ox < wo; ox++ {
					for c := 0; c < g.C; c++ {
						for ky := 0; ky < g.K; ky++ {
							for kx := 0; kx < g.K; kx++ {
								y, xx := oy*g.Stride-g.Pad+ky, ox*g.Stride-g.Pad+kx
								want := 0.0
								if y >= 0 && y < g.H && xx >= 0 && xx < g.W {
									if g.ChannelsLast {
										want = x[(bi*g.H*g.W+y*g.W+xx)*g.C+c]
									} else {
										want = x[((bi*g.C+c)*g.H+y)*g.W+xx]
									}
								}
								got := cols[((bi*ho+oy)*wo+ox)*k+(c*g.K+ky)*g.K+kx]
								if got != want {
									t.Fatalf("%+v: batch %d out (%d,%d) c%d (%d,%d): got %v, want %v", g, bi, oy, ox, c, ky, kx, got, want)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestIm2ColPatchify: a K×K kernel with stride K and no padding is the
// patch embedding's Patchify.
func TestIm2ColPatchify(t *testing.T) {
	const b, c, h, w, p = 2, 3, 8, 4, 4
	x := make([]float64, b*c*h*w)
	for i := range x {
		x[i] = float64(i)
	}
	a, want := make([]float64, len(x)), make([]float64, len(x))
	im2col(x, a, b, ConvGeom{C: c, H: h, W: w, K: p, Stride: p}, false)
	patchCopy(x, want, b, c, h, w, p, false)
	for i := range a {
		if a[i] != want[i] {
			t.Fatalf("element %d: Im2Col %v, Patchify %v", i, a[i], want[i])
		}
	}
}

func TestIm2ColBadInput(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, 3, 10, 10), G.WithName("x"))
	for _, geom := range []ConvGeom{
		{C: 2, H: 10, W: 10, K: 3, Stride: 1, Pad: 1},                     // channel count
		{C: 3, H: 10, W: 10, K: 3, Stride: 1, Pad: 1, ChannelsLast: true}, // layout
		{C: 3, H: 10, W: 10, K: 3, Stride: 0, Pad: 1},                     // stride
		{C: 3, H: 10, W: 10, K: 12, Stride: 1, Pad: 0},                    // kernel larger than the grid
	} {
		if _, err := Im2Col(x, geom); err == nil {
			t.Errorf("%+v on a (1, 3, 10, 10) input: expected an error", geom)
		}
	}
}
