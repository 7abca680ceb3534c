package ops

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/gradcheck"
	"github.com/vitgo/vit/layers/graphtest"
)

func TestPatchifyGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	gradcheck.Assert(t, func(g *G.ExprGraph, n G.Nodes) (*G.Node, error) {
		return Patchify(n[0], 2)
	}, []*tensor.Dense{gradcheck.Random(rng, 1, 2, 3, 4, 6)}, 1e-6, gradcheck.Options{MaxElements: 200})
}

// TestPatchifyOrder pins the layout: patch t of image b holds pixels in
// (channel, row, column) order, patches in row-major order.
func TestPatchifyOrder(t *testing.T) {
	const b, c, h, w, p = 2, 3, 4, 6, 2
	x := make([]float64, b*c*h*w)
	for i := range x {
		x[i] = float64(i)
	}
	y := make([]float64, len(x))
	patchCopy(x, y, b, c, h, w, p, false)
	gw, k := w/p, c*p*p
	for bi := 0; bi < b; bi++ {
		for tk := 0; tk < (h/p)*gw; tk++ {
			for ch := 0; ch < c; ch++ {
				for i := 0; i < p; i++ {
					for j := 0; j < p; j++ {
						want := x[((bi*c+ch)*h+(tk/gw)*p+i)*w+(tk%gw)*p+j]
						got := y[(bi*(h/p)*gw+tk)*k+(ch*p+i)*p+j]
						if got != want {
							t.Fatalf("b%d patch %d c%d (%d,%d): got %v want %v", bi, tk, ch, i, j, got, want)
						}
					}
				}
			}
		}
	}
	back := make([]float64, len(x))
	patchCopy(back, y, b, c, h, w, p, true)
	for i := range x {
		if back[i] != x[i] {
			t.Fatalf("reverse at %d: %v != %v", i, back[i], x[i])
		}
	}
}

func TestPatchifyBadShape(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, 3, 10, 10), G.WithName("x"))
	if _, err := Patchify(x, 4); err == nil {
		t.Fatal("10×10 image with patch 4: expected an error")
	}
}

func TestTokenEmbedGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	in := []*tensor.Dense{gradcheck.Random(rng, 1, 2, 3, 4), gradcheck.Random(rng, 1, 1, 1, 4), gradcheck.Random(rng, 1, 1, 4, 4)}
	gradcheck.Assert(t, func(g *G.ExprGraph, n G.Nodes) (*G.Node, error) {
		return TokenEmbed(n[0], n[1], n[2])
	}, in, 1e-6, gradcheck.Options{})
}

func TestPoolGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, pooling := range []Pooling{PoolClassToken, PoolMean} {
		gradcheck.Assert(t, func(g *G.ExprGraph, n G.Nodes) (*G.Node, error) {
			return Pool(n[0], pooling)
		}, []*tensor.Dense{gradcheck.Random(rng, 1, 2, 4, 3)}, 1e-6, gradcheck.Options{})
	}
}

func TestCrossEntropy(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	target := tensor.New(tensor.WithShape(3, 4), tensor.WithBacking([]float64{
		1, 0, 0, 0,
		0, 0.9, 0.05, 0.05,
		0, 0, 0, 1,
	}))
	z := gradcheck.Random(rng, 3, 3, 4)
	build := func(g *G.ExprGraph, n G.Nodes) (*G.Node, error) {
		tn := G.NewTensor(g, tensor.Float64, 2, G.WithShape(3, 4), G.WithValue(target), G.WithName("target"))
		return CrossEntropy(n[0], tn)
	}
	gradcheck.Assert(t, build, []*tensor.Dense{z}, 1e-6, gradcheck.Options{})

	// Value against the definition, and stability at huge logits.
	zs := z.Data().([]float64)
	zs[0], zs[1] = 1000, -1000
	var want float64
	ts := target.Data().([]float64)
	for r := 0; r < 3; r++ {
		m := math.Inf(-1)
		for _, v := range zs[r*4 : r*4+4] {
			m = math.Max(m, v)
		}
		var s float64
		for _, v := range zs[r*4 : r*4+4] {
			s += math.Exp(v - m)
		}
		for j := 0; j < 4; j++ {
			want -= ts[r*4+j] * (zs[r*4+j] - m - math.Log(s)) / 3
		}
	}
	got := xentFwd(zs, ts, 4, nil)
	if math.IsNaN(got) || math.Abs(got-want) > 1e-9 {
		t.Fatalf("cross-entropy = %v, want %v", got, want)
	}
}

func TestDropout(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for _, unit := range []DropUnit{DropElements, DropSamples} {
		noise := NewNoise(42)
		gradcheck.Assert(t, func(g *G.ExprGraph, n G.Nodes) (*G.Node, error) {
			return Dropout(n[0], 0.3, unit, noise)
		}, []*tensor.Dense{gradcheck.Random(rng, 1, 8, 5, 4)}, 1e-6, gradcheck.Options{Prepare: func() { noise.Freeze(true) }})
	}

	// Statistics: about p of the elements dropped, the rest scaled by 1/(1−p);
	// a new mask every step; the same seed and step give the same mask.
	run := func(seed, step uint64, training bool) []float32 {
		noise := NewNoise(seed)
		noise.SetTraining(training)
		g := G.NewGraph()
		x := G.NewTensor(g, tensor.Float32, 2, G.WithShape(100, 100), G.WithInit(G.Ones()), G.WithName("x"))
		y := G.Must(Dropout(x, 0.25, DropElements, noise))
		noise.SetStep(step)
		graphtest.Run(t, g)
		return append([]float32(nil), y.Value().Data().([]float32)...)
	}
	a, b, c := run(1, 0, true), run(1, 0, true), run(1, 1, true)
	var dropped, same int
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same seed and step gave different masks")
		}
		if a[i] == c[i] {
			same++
		}
		switch a[i] {
		case 0:
			dropped++
		case float32(1 / 0.75):
		default:
			t.Fatalf("element %d = %v, want 0 or %v", i, a[i], 1/0.75)
		}
	}
	if f := float64(dropped) / 1e4; math.Abs(f-0.25) > 0.02 {
		t.Errorf("dropped fraction %.3f, want about 0.25", f)
	}
	if same > 7000 {
		t.Errorf("step 1 mask equals step 0 mask on %d of 10000 elements", same)
	}
	for i, v := range run(1, 0, false) {
		if v != 1 {
			t.Fatalf("inference mode: element %d = %v, want 1", i, v)
		}
	}
}
