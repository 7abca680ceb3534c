package optim

import (
	"errors"
	"math"
	"math/big"
	"math/rand"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers"
	"github.com/vitgo/vit/layers/graphtest"
)

var testCfg = Config{LR: 1e-2, WeightDecay: 0.05}

// (b) With zero gradients the Adam term is exactly 0, so a step changes a
// parameter only through decoupled weight decay: p·(1−lr·λ) exactly where
// Decay is true, nothing where it is false.
func TestWeightDecayOnlyWhereFlagged(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		t.Run(dt.String(), func(t *testing.T) {
			g := G.NewGraph()
			init := []float64{0.5, -1.25, 2, 3.75, -0.125, 1}
			ps := []param{
				newParam(g, "weight", dt, []int{2, 3}, init, true),
				newParam(g, "bias", dt, []int{6}, init, false),
			}
			params, vgs := paramsOf(ps)
			opt, err := NewAdamW(params, testCfg)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float64, len(init))
			copy(want, init)
			for step := 0; step < 3; step++ {
				if err := opt.Step(vgs); err != nil {
					t.Fatal(err)
				}
				for i := range want {
					if dt == tensor.Float32 {
						want[i] = float64(float32(want[i]) * float32(1-testCfg.LR*testCfg.WeightDecay))
					} else {
						want[i] *= 1 - testCfg.LR*testCfg.WeightDecay
					}
				}
				if got := graphtest.Float64s(ps[0].vg.v); graphtest.MaxAbsDiff(got, want) != 0 {
					t.Errorf("step %d: decayed weight = %v, want %v", step+1, got, want)
				}
				if got := graphtest.Float64s(ps[1].vg.v); graphtest.MaxAbsDiff(got, init) != 0 {
					t.Errorf("step %d: undecayed bias changed: %v, want %v", step+1, got, init)
				}
			}
			// With equal nonzero gradients, the two differ by the decay only.
			g2 := G.NewGraph()
			a := newParam(g2, "a", dt, []int{6}, init, true)
			b := newParam(g2, "b", dt, []int{6}, init, false)
			o2, err := NewAdamW([]*layers.Param{a.p, b.p}, testCfg)
			if err != nil {
				t.Fatal(err)
			}
			grad := []float64{0.1, -0.2, 0.3, 0, 1, -1}
			setData(t, a.vg.g, grad)
			setData(t, b.vg.g, grad)
			if err := o2.Step([]G.ValueGrad{a.vg, b.vg}); err != nil {
				t.Fatal(err)
			}
			av, bv := graphtest.Float64s(a.vg.v), graphtest.Float64s(b.vg.v)
			for i := range init {
				// a = init·(1−lr·λ) − u, b = init − u, so a − b = −lr·λ·init.
				if d := (av[i] - bv[i]) - (-testCfg.LR * testCfg.WeightDecay * init[i]); math.Abs(d) > 1e-6 {
					t.Errorf("element %d: decayed − undecayed = %v, want %v", i, av[i]-bv[i], -testCfg.LR*testCfg.WeightDecay*init[i])
				}
			}
		})
	}
}

func randVals(rng *rand.Rand, n int, scale float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = rng.NormFloat64() * scale
	}
	return out
}

type spec struct {
	name  string
	dt    tensor.Dtype
	shape []int
	decay bool
}

var stateSpecs = []spec{
	{"w32", tensor.Float32, []int{5, 7}, true},
	{"b32", tensor.Float32, []int{7}, false},
	{"w64", tensor.Float64, []int{4, 3}, true},
	{"b64", tensor.Float64, []int{3}, false},
}

func buildSpecs(t *testing.T, specs []spec, inits [][]float64) ([]param, *AdamW, []G.ValueGrad) {
	t.Helper()
	g := G.NewGraph()
	var ps []param
	for i, s := range specs {
		ps = append(ps, newParam(g, s.name, s.dt, s.shape, inits[i], s.decay))
	}
	params, vgs := paramsOf(ps)
	opt, err := NewAdamW(params, testCfg)
	if err != nil {
		t.Fatal(err)
	}
	return ps, opt, vgs
}

func sizeOf(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func bitsEqual(t *testing.T, what string, a, b *tensor.Dense) {
	t.Helper()
	switch x := a.Data().(type) {
	case []float32:
		y := b.Data().([]float32)
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				t.Fatalf("%s element %d: %v vs %v (not bit-identical)", what, i, x[i], y[i])
			}
		}
	case []float64:
		y := b.Data().([]float64)
		for i := range x {
			if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
				t.Fatalf("%s element %d: %v vs %v (not bit-identical)", what, i, x[i], y[i])
			}
		}
	}
}

// (c) Snapshot after 3 steps; a fresh optimizer restored from the snapshot
// takes the same 2 further steps to bit-identical parameters.
func TestStateSaveRestoreBitExact(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	var inits [][]float64
	for _, s := range stateSpecs {
		inits = append(inits, randVals(rng, sizeOf(s.shape), 0.5))
	}
	grads := make([][][]float64, 5) // [step][param]
	for s := range grads {
		for _, sp := range stateSpecs {
			grads[s] = append(grads[s], randVals(rng, sizeOf(sp.shape), 0.1*float64(s+1)))
		}
	}
	step := func(opt *AdamW, ps []param, vgs []G.ValueGrad, s int) {
		t.Helper()
		for i, p := range ps {
			setData(t, p.vg.g, grads[s][i])
		}
		if err := opt.Step(vgs); err != nil {
			t.Fatal(err)
		}
	}

	ps, opt, vgs := buildSpecs(t, stateSpecs, inits)
	for s := 0; s < 3; s++ {
		step(opt, ps, vgs, s)
	}
	snap := opt.State()
	var snapVals [][]float64
	for _, p := range ps {
		snapVals = append(snapVals, graphtest.Float64s(p.vg.v)) // exact for float32 too
	}
	if snap.Step != 3 || len(snap.M) != len(stateSpecs) || len(snap.V) != len(stateSpecs) {
		t.Fatalf("State: step %d, %d M and %d V slices", snap.Step, len(snap.M), len(snap.V))
	}
	// The snapshot is a deep copy: later steps must not change it.
	m0 := append([]float64(nil), snap.M[0]...)
	for s := 3; s < 5; s++ {
		step(opt, ps, vgs, s)
	}
	if graphtest.MaxAbsDiff(m0, snap.M[0]) != 0 {
		t.Fatal("State is not a deep copy: later steps changed it")
	}

	ps2, opt2, vgs2 := buildSpecs(t, stateSpecs, snapVals)
	if err := opt2.SetState(snap); err != nil {
		t.Fatal(err)
	}
	snap.M[0][0] += 1 // SetState must have copied
	if opt2.Steps() != 3 {
		t.Fatalf("Steps after SetState = %d, want 3", opt2.Steps())
	}
	for s := 3; s < 5; s++ {
		step(opt2, ps2, vgs2, s)
	}
	for i := range ps {
		bitsEqual(t, "param "+stateSpecs[i].name, ps[i].vg.v, ps2[i].vg.v)
	}
	a, b := opt.State(), opt2.State()
	for i := range a.M {
		for j := range a.M[i] {
			if math.Float64bits(a.M[i][j]) != math.Float64bits(b.M[i][j]) || math.Float64bits(a.V[i][j]) != math.Float64bits(b.V[i][j]) {
				t.Fatalf("moments of param %d differ at %d after restore", i, j)
			}
		}
	}
	if opt2.Steps() != 5 {
		t.Errorf("Steps = %d, want 5", opt2.Steps())
	}
}

// Splitting the work across goroutines must not change any bit.
func TestParallelSplitDeterministic(t *testing.T) {
	specs := []spec{
		{"a", tensor.Float32, []int{37, 29}, true},
		{"b", tensor.Float64, []int{101}, false},
		{"c", tensor.Float32, []int{3}, false},
		{"d", tensor.Float64, []int{17, 23}, true},
	}
	rng := rand.New(rand.NewSource(3))
	var inits, grads [][]float64
	for _, s := range specs {
		inits = append(inits, randVals(rng, sizeOf(s.shape), 1))
		grads = append(grads, randVals(rng, sizeOf(s.shape), 0.3))
	}
	run := func(workers, minChunk int) []param {
		ps, opt, vgs := buildSpecs(t, specs, inits)
		opt.workers, opt.minChunk = workers, minChunk
		for s := 0; s < 4; s++ {
			for i, p := range ps {
				setData(t, p.vg.g, grads[i])
			}
			if err := opt.Step(vgs); err != nil {
				t.Fatal(err)
			}
		}
		return ps
	}
	ref := run(1, 0)
	for _, w := range []int{2, 3, 7} {
		got := run(w, 1)
		for i := range ref {
			bitsEqual(t, specs[i].name, ref[i].vg.v, got[i].vg.v)
		}
	}
}

// After the first step, Step allocates nothing (serial path).
func TestStepDoesNotAllocate(t *testing.T) {
	_, opt, vgs := buildSpecs(t, stateSpecs, [][]float64{nil, nil, nil, nil})
	opt.workers = 1
	if err := opt.Step(vgs); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		if err := opt.Step(vgs); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Step allocates %v times per call, want 0", allocs)
	}
}

// powInt must be correctly rounded (Python's ** on floats is), unlike
// math.Pow: compare with a 600-bit big.Float power.
func TestPowIntCorrectlyRounded(t *testing.T) {
	// Values of 0.9**t and 0.999**t printed by CPython 3.11.
	py9 := []float64{0.9, 0.81, 0.7290000000000001, 0.6561, 0.5904900000000001}
	py999 := []float64{0.999, 0.998001, 0.997002999, 0.996005996001, 0.995009990004999}
	for i := range py9 {
		if got := powInt(0.9, i+1); got != py9[i] {
			t.Errorf("powInt(0.9, %d) = %v, Python %v", i+1, got, py9[i])
		}
		if got := powInt(0.999, i+1); got != py999[i] {
			t.Errorf("powInt(0.999, %d) = %v, Python %v", i+1, got, py999[i])
		}
	}
	ns := []int{0, 1, 2, 3}
	for n := 4; n < 200; n++ {
		ns = append(ns, n)
	}
	ns = append(ns, 999, 1000, 4097, 10000, 65537, 100000, 1000003)
	for _, b := range []float64{0.9, 0.95, 0.98, 0.99, 0.999, 0.9999} {
		for _, n := range ns {
			want := bigPow(b, n)
			if got := powInt(b, n); got != want {
				t.Errorf("powInt(%v, %d) = %v, want %v (correctly rounded)", b, n, got, want)
			}
		}
	}
}

func bigPow(b float64, n int) float64 {
	const prec = 600
	r := new(big.Float).SetPrec(prec).SetFloat64(1)
	x := new(big.Float).SetPrec(prec).SetFloat64(b)
	for ; n > 0; n >>= 1 {
		if n&1 == 1 {
			r.Mul(r, x)
		}
		x.Mul(x, x)
	}
	f, _ := r.Float64()
	return f
}

// (d) Bad inputs give "optim: " errors and leave everything unchanged.
func TestBadInputs(t *testing.T) {
	g := G.NewGraph()
	w := newParam(g, "w", tensor.Float64, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}, true)
	b := newParam(g, "b", tensor.Float64, []int{3}, []float64{1, 2, 3}, false)
	opt, err := NewAdamW([]*layers.Param{w.p, b.p}, testCfg)
	if err != nil {
		t.Fatal(err)
	}
	before := graphtest.Float64s(w.vg.v)
	setData(t, w.vg.g, []float64{1, 1, 1, 1, 1, 1})

	wantErr(t, opt.Step([]G.ValueGrad{w.vg}), "expected 2 value-grads")
	wantErr(t, opt.Step(nil), "found 0")
	wantErr(t, opt.Step([]G.ValueGrad{w.vg, nil}), `parameter "b", found nil`)
	wantErr(t, opt.Step([]G.ValueGrad{b.vg, w.vg}), "expected shape (2, 3), found (3)")
	wantErr(t, opt.Step([]G.ValueGrad{w.vg, &testVG{v: b.vg.v, g: newDense(tensor.Float64, []int{1, 3}, nil)}}), `"b" gradient: expected shape (3), found (1, 3)`)
	wantErr(t, opt.Step([]G.ValueGrad{w.vg, &testVG{v: newDense(tensor.Float32, []int{3}, nil), g: b.vg.g}}), "expected dtype float64, found float32")
	wantErr(t, opt.Step([]G.ValueGrad{w.vg, &testVG{v: b.vg.v, gradErr: errors.New("no grad")}}), "no grad")
	wantErr(t, opt.Step([]G.ValueGrad{w.vg, &testVG{v: b.vg.v, g: nil}}), "found a nil *tensor.Dense")
	var nilNode *G.Node
	wantErr(t, opt.Step([]G.ValueGrad{w.vg, nilNode}), "nil *G.Node")
	// Nodes in the wrong order are caught by name even when shapes agree.
	g2 := G.NewGraph()
	x := newParam(g2, "x", tensor.Float64, []int{3}, nil, false)
	y := newParam(g2, "y", tensor.Float64, []int{3}, nil, false)
	o2, err := NewAdamW([]*layers.Param{x.p, y.p}, testCfg)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, o2.Step([]G.ValueGrad{y.p.Node, x.p.Node}), `expected parameter "x", found node "y"`)
	// A non-contiguous view is refused.
	view := newDense(tensor.Float64, []int{3, 2}, nil)
	if err := view.T(); err == nil {
		wantErr(t, opt.Step([]G.ValueGrad{&testVG{v: w.vg.v, g: view}, b.vg}), "contiguous")
	} else {
		t.Logf("transpose view unavailable: %v", err)
	}
	opt.SetLearnRate(math.NaN())
	wantErr(t, opt.Step([]G.ValueGrad{w.vg, b.vg}), "learning rate must be non-negative and finite, found NaN")
	opt.SetLearnRate(-1)
	wantErr(t, opt.Step([]G.ValueGrad{w.vg, b.vg}), "found -1")
	opt.SetLearnRate(testCfg.LR)

	if opt.Steps() != 0 || graphtest.MaxAbsDiff(graphtest.Float64s(w.vg.v), before) != 0 || graphtest.Float64s(w.vg.g)[0] != 1 {
		t.Fatalf("failed Steps changed state: t=%d, w=%v, grad=%v", opt.Steps(), graphtest.Float64s(w.vg.v), graphtest.Float64s(w.vg.g))
	}
	for _, m := range opt.State().M {
		if graphtest.MaxAbsDiff(m, make([]float64, len(m))) != 0 {
			t.Fatal("failed Steps changed the moments")
		}
	}
	if err := opt.Step([]G.ValueGrad{w.vg, b.vg}); err != nil {
		t.Fatalf("valid Step after errors: %v", err)
	}

	// SetState.
	good := opt.State()
	wantErr(t, opt.SetState(State{Step: 1, M: good.M[:1], V: good.V}), "expected 2 moment slices in M and V (one per parameter), found 1 and 2")
	bad := opt.State()
	bad.V[1] = bad.V[1][:2]
	wantErr(t, opt.SetState(bad), `parameter "b" (index 1) expected 3 elements in M and V, found 3 and 2`)
	bad = opt.State()
	bad.M[0] = append(bad.M[0], 0)
	wantErr(t, opt.SetState(bad), `parameter "w" (index 0) expected 6 elements in M and V, found 7 and 6`)
	bad = opt.State()
	bad.V[0][4] = -1
	wantErr(t, opt.SetState(bad), `State.V for parameter "w" element 4 expected a non-negative number, found -1`)
	bad = opt.State()
	bad.Step = -2
	wantErr(t, opt.SetState(bad), "expected ≥ 0, found -2")
	if s := opt.State(); s.Step != 1 || graphtest.MaxAbsDiff(s.M[0], good.M[0]) != 0 {
		t.Fatal("failed SetState changed the state")
	}

	// NewAdamW.
	_, err = NewAdamW(nil, testCfg)
	wantErr(t, err, "at least one parameter")
	_, err = NewAdamW([]*layers.Param{w.p, nil}, testCfg)
	wantErr(t, err, "parameter 1 expected a non-nil")
	_, err = NewAdamW([]*layers.Param{w.p, w.p}, testCfg)
	wantErr(t, err, "same node as parameter 0")
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{LR: -1}, "learning rate"},
		{Config{LR: math.Inf(1)}, "learning rate"},
		{Config{LR: 1, Beta1: 1}, "Config.Beta1 must be in (0, 1)"},
		{Config{LR: 1, Beta2: -0.5}, "Config.Beta2 must be in (0, 1)"},
		{Config{LR: 1, Eps: -1e-8}, "Config.Eps"},
		{Config{LR: 1, WeightDecay: math.NaN()}, "Config.WeightDecay"},
		{Config{LR: 1, WeightDecay: -0.1}, "Config.WeightDecay"},
	} {
		_, err := NewAdamW([]*layers.Param{w.p}, c.cfg)
		wantErr(t, err, c.want)
	}
	g3 := G.NewGraph()
	iv := G.NewTensor(g3, tensor.Int, 1, G.WithShape(2), G.WithName("i"))
	_, err = NewAdamW([]*layers.Param{{Name: "i", Node: iv}}, testCfg)
	wantErr(t, err, "expected dtype float32 or float64, found int")

	// Clipping.
	_, err = ClipGlobalNorm([]G.ValueGrad{w.vg}, 0)
	wantErr(t, err, "positive finite maxNorm, found 0")
	_, err = ClipGlobalNorm([]G.ValueGrad{w.vg}, math.NaN())
	wantErr(t, err, "found NaN")
	_, err = GlobalNorm([]G.ValueGrad{w.vg, nil})
	wantErr(t, err, "value-grad 1 expected a ValueGrad, found nil")
	_, err = GlobalNorm([]G.ValueGrad{&testVG{g: newDense(tensor.Float64, []int{2}, nil)}, &testVG{gradErr: errors.New("boom")}})
	wantErr(t, err, "boom")
	ig := tensor.New(tensor.WithShape(2), tensor.WithBacking([]int{1, 2}))
	_, err = GlobalNorm([]G.ValueGrad{&testVG{g: ig}})
	wantErr(t, err, "expected dtype float32 or float64, found int")
}

func TestDefaultsAndAccessors(t *testing.T) {
	g := G.NewGraph()
	w := newParam(g, "w", tensor.Float32, []int{2}, nil, true)
	opt, err := NewAdamW([]*layers.Param{w.p}, Config{LR: 3e-4})
	if err != nil {
		t.Fatal(err)
	}
	if opt.beta1 != 0.9 || opt.beta2 != 0.999 || opt.eps != 1e-8 || opt.wd != 0 {
		t.Errorf("defaults: β1 %v β2 %v eps %v λ %v", opt.beta1, opt.beta2, opt.eps, opt.wd)
	}
	if opt.LearnRate() != 3e-4 || opt.Steps() != 0 {
		t.Errorf("LearnRate %v Steps %d", opt.LearnRate(), opt.Steps())
	}
	opt.SetLearnRate(1e-3)
	if opt.LearnRate() != 1e-3 {
		t.Errorf("SetLearnRate: %v", opt.LearnRate())
	}
	var _ G.Solver = opt
}

// Non-finite norms are returned and leave the gradients alone; a norm just
// above maxNorm is clipped to (almost exactly) maxNorm.
func TestClipEdgeCases(t *testing.T) {
	mk := func(vals ...float64) *testVG { return &testVG{g: newDense(tensor.Float64, []int{len(vals)}, vals)} }
	a := mk(3, math.Inf(1))
	n, err := ClipGlobalNorm([]G.ValueGrad{a}, 1)
	if err != nil || !math.IsInf(n, 1) || graphtest.Float64s(a.g)[0] != 3 {
		t.Errorf("Inf: norm %v err %v grads %v", n, err, graphtest.Float64s(a.g))
	}
	a = mk(math.NaN(), 1)
	n, err = ClipGlobalNorm([]G.ValueGrad{a}, 1)
	if err != nil || !math.IsNaN(n) || graphtest.Float64s(a.g)[1] != 1 {
		t.Errorf("NaN: norm %v err %v grads %v", n, err, graphtest.Float64s(a.g))
	}
	a, b := mk(3, 0), mk(4)
	n, err = ClipGlobalNorm([]G.ValueGrad{a, b}, 1)
	if err != nil || n != 5 {
		t.Fatalf("norm %v err %v", n, err)
	}
	if after, _ := GlobalNorm([]G.ValueGrad{a, b}); math.Abs(after-5/(5+1e-6)) > 1e-15 {
		t.Errorf("after clipping: %v, want %v", after, 5/(5+1e-6))
	}
	if n, err := GlobalNorm(nil); n != 0 || err != nil {
		t.Errorf("empty: %v %v", n, err)
	}
	// Errors name the node when there is one.
	g := G.NewGraph()
	node := G.NewTensor(g, tensor.Float64, 1, G.WithShape(2), G.WithValue(newDense(tensor.Float64, []int{2}, nil)), G.WithName("lonely"))
	_, err = GlobalNorm([]G.ValueGrad{node})
	if err == nil || !strings.Contains(err.Error(), `"lonely"`) {
		t.Errorf("node without gradient: %v", err)
	}
}

// TestLRScales: a parameter whose learning rate is scaled by s moves
// exactly as it would under an optimizer of learning rate lr·s (a PyTorch
// parameter group), decay included; scale 1 changes nothing.
func TestLRScales(t *testing.T) {
	init := []float64{0.5, -1.25, 2, 3.75, -0.125, 1}
	grad := []float64{0.1, -0.2, 0.3, 0, 1, -1}
	run := func(lr float64, scales []float64) [][]float64 {
		g := G.NewGraph()
		ps := []param{newParam(g, "a", tensor.Float32, []int{6}, init, true), newParam(g, "b", tensor.Float32, []int{6}, init, false)}
		params, vgs := paramsOf(ps)
		c := testCfg
		c.LR = lr
		opt, err := NewAdamW(params, c)
		if err != nil {
			t.Fatal(err)
		}
		if scales != nil {
			if err := opt.SetLRScales(scales); err != nil {
				t.Fatal(err)
			}
		}
		for step := 0; step < 3; step++ {
			for _, p := range ps {
				setData(t, p.vg.g, grad)
			}
			if err := opt.Step(vgs); err != nil {
				t.Fatal(err)
			}
		}
		return [][]float64{graphtest.Float64s(ps[0].vg.v), graphtest.Float64s(ps[1].vg.v)}
	}
	base := run(testCfg.LR, nil)
	if got := run(testCfg.LR, []float64{1, 1}); graphtest.MaxAbsDiff(got[0], base[0]) != 0 || graphtest.MaxAbsDiff(got[1], base[1]) != 0 {
		t.Errorf("scales 1 changed the steps")
	}
	scaled := run(testCfg.LR, []float64{0.25, 1})
	quarter := run(testCfg.LR*0.25, nil)
	if graphtest.MaxAbsDiff(scaled[0], quarter[0]) != 0 || graphtest.MaxAbsDiff(scaled[1], base[1]) != 0 {
		t.Errorf("scale 0.25: %v, expected %v (lr/4) and the other parameter unchanged", scaled[0], quarter[0])
	}
	if graphtest.MaxAbsDiff(scaled[0], base[0]) == 0 {
		t.Errorf("scale 0.25 changed nothing")
	}
	g := G.NewGraph()
	p := newParam(g, "a", tensor.Float32, []int{2}, nil, true)
	opt, err := NewAdamW([]*layers.Param{p.p}, testCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := opt.SetLRScales([]float64{1, 1}); err == nil {
		t.Error("two scales for one parameter accepted")
	}
	if err := opt.SetLRScales([]float64{-1}); err == nil {
		t.Error("a negative scale accepted")
	}
}
