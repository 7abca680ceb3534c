// Package optim holds the training-time numerics that sit between the
// backward pass and the next forward pass: an AdamW solver with decoupled
// weight decay (Gorgonia's own AdamW never updates the weights, and its Adam
// cannot save its moments), global-norm gradient clipping, and a
// warmup-then-cosine learning-rate schedule.
//
// Typical loop with a TapeMachine bound through G.BindDualValues:
//
//	vgs := G.NodesToValueGrads(nodes) // same order as params
//	opt, err := optim.NewAdamW(params, optim.Config{LR: 1e-3, WeightDecay: 0.05})
//	for step := 0; ; step++ {
//		vm.RunAll()                            // gradients accumulate in place
//		norm, err := optim.ClipGlobalNorm(vgs, 1.0)
//		opt.SetLearnRate(sched.At(step))
//		err = opt.Step(vgs)                    // updates weights, zeroes gradients
//		vm.Reset()
//	}
//
// Nothing here is safe for concurrent use by several goroutines.
package optim

import (
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers"
)

// Config holds AdamW's hyper-parameters. Zero Beta1, Beta2 and Eps mean
// PyTorch's defaults 0.9, 0.999 and 1e-8 (so β1 = 0 cannot be expressed).
// WeightDecay is the decoupled decay coefficient λ (PyTorch's weight_decay);
// it applies only to parameters whose Decay flag is set.
type Config struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
}

// Defaults used for zero Config fields.
const (
	DefaultBeta1 = 0.9
	DefaultBeta2 = 0.999
	DefaultEps   = 1e-8
)

// parallelMinChunk is the smallest number of elements worth handing to a
// separate goroutine in Step.
const parallelMinChunk = 1 << 16

// AdamW is torch.optim.AdamW (amsgrad=False, maximize=False) as a Gorgonia
// G.Solver. For every parameter p with gradient g, at step t (from 1):
//
//	p ← p·(1 − lr·λ)                      (only if the param's Decay is true)
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g·g
//	p ← p − (lr/(1−β1^t)) · m / (sqrt(v)/sqrt(1−β2^t) + eps)
//
// evaluated in the parameter's dtype with PyTorch's operation order (the
// scalars are computed in float64 and rounded once to the dtype). The
// moments are stored in the parameter's dtype, so State/SetState round-trips
// are bit-exact, and the result does not depend on how Step splits the work
// across goroutines.
type AdamW struct {
	lr, beta1, beta2, eps, wd float64
	t                         int
	slots                     []slot
	total                     int // elements over all params

	// workers caps the goroutines Step uses (0: runtime.GOMAXPROCS);
	// minChunk is the least work per goroutine (0: parallelMinChunk).
	workers, minChunk int

	wg sync.WaitGroup
}

// slot is one parameter's optimizer state plus the slices bound for the
// step in progress.
type slot struct {
	name   string // graph name of the node
	node   *G.Node
	shape  tensor.Shape
	dtype  tensor.Dtype
	decay  bool
	scale  float64 // of the learning rate (SetLRScales); 1 by default
	size   int
	offset int // start in the concatenation of all params

	c32 coef[float32] // the step's scalars, for this slot's learning rate
	c64 coef[float64]

	m32, v32 []float32
	m64, v64 []float64

	p32, g32 []float32 // bound during Step only
	p64, g64 []float64
}

type coef[T float32 | float64] struct {
	decay, noDecay, b1, c1, b2, c2, bc2sqrt, eps, negStep T
}

// NewAdamW returns an AdamW over params, in that order. Every param needs a
// non-nil float32 or float64 tensor node with a known shape; the same node
// or name may not appear twice. The moments are allocated here (zero).
func NewAdamW(params []*layers.Param, c Config) (*AdamW, error) {
	if len(params) == 0 {
		return nil, errors.New("optim: NewAdamW expected at least one parameter, found none")
	}
	if c.Beta1 == 0 {
		c.Beta1 = DefaultBeta1
	}
	if c.Beta2 == 0 {
		c.Beta2 = DefaultBeta2
	}
	if c.Eps == 0 {
		c.Eps = DefaultEps
	}
	if err := checkLR(c.LR); err != nil {
		return nil, err
	}
	for _, b := range []struct {
		name string
		v    float64
	}{{"Beta1", c.Beta1}, {"Beta2", c.Beta2}} {
		if !(b.v > 0 && b.v < 1) {
			return nil, errors.Errorf("optim: Config.%s must be in (0, 1) (0 means the default), found %v", b.name, b.v)
		}
	}
	if !(c.Eps > 0) || math.IsInf(c.Eps, 0) {
		return nil, errors.Errorf("optim: Config.Eps must be positive and finite (0 means %v), found %v", DefaultEps, c.Eps)
	}
	if !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0) {
		return nil, errors.Errorf("optim: Config.WeightDecay must be non-negative and finite, found %v", c.WeightDecay)
	}

	o := &AdamW{lr: c.LR, beta1: c.Beta1, beta2: c.Beta2, eps: c.Eps, wd: c.WeightDecay}
	o.slots = make([]slot, len(params))
	seenNode := make(map[*G.Node]int, len(params))
	seenName := make(map[string]int, len(params))
	for i, p := range params {
		if p == nil || p.Node == nil {
			return nil, errors.Errorf("optim: parameter %d expected a non-nil *layers.Param with a node, found nil", i)
		}
		n := p.Node
		if j, dup := seenNode[n]; dup {
			return nil, errors.Errorf("optim: parameter %d (%q) expected a distinct node, found the same node as parameter %d", i, p.Name, j)
		}
		seenNode[n] = i
		name := n.Name()
		if j, dup := seenName[name]; dup {
			return nil, errors.Errorf("optim: parameter %d expected a distinct node name, found %q again (parameter %d)", i, name, j)
		}
		seenName[name] = i
		dt := n.Dtype()
		if dt != tensor.Float32 && dt != tensor.Float64 {
			return nil, errors.Errorf("optim: parameter %q expected dtype float32 or float64, found %v", name, dt)
		}
		shape := n.Shape().Clone()
		size := 1
		for _, d := range shape {
			if d <= 0 {
				return nil, errors.Errorf("optim: parameter %q expected a shape with positive dims, found %v", name, shape)
			}
			size *= d
		}
		if len(shape) == 0 {
			return nil, errors.Errorf("optim: parameter %q expected a tensor shape, found a scalar", name)
		}
		s := slot{name: name, node: n, shape: shape, dtype: dt, decay: p.Decay, scale: 1, size: size, offset: o.total}
		if dt == tensor.Float32 {
			s.m32, s.v32 = make([]float32, size), make([]float32, size)
		} else {
			s.m64, s.v64 = make([]float64, size), make([]float64, size)
		}
		o.slots[i] = s
		o.total += size
	}
	return o, nil
}

func checkLR(lr float64) error {
	if !(lr >= 0) || math.IsInf(lr, 0) {
		return errors.Errorf("optim: learning rate must be non-negative and finite, found %v", lr)
	}
	return nil
}

// SetLearnRate sets the learning rate used by the following steps (for a
// schedule); the moments are kept. An invalid value (negative, NaN, Inf) is
// reported by the next Step, which then changes nothing.
func (o *AdamW) SetLearnRate(lr float64) { o.lr = lr }

// SetLRScales scales each parameter's learning rate (one factor per
// parameter, in the order given to NewAdamW), as PyTorch's parameter groups
// with lr = base·scale do: layer-wise learning-rate decay. A scale of 1
// changes nothing, bit for bit.
func (o *AdamW) SetLRScales(scales []float64) error {
	if len(scales) != len(o.slots) {
		return errors.Errorf("optim: SetLRScales expected %d scales (one per parameter), found %d", len(o.slots), len(scales))
	}
	for i, sc := range scales {
		if !(sc >= 0) || math.IsInf(sc, 0) {
			return errors.Errorf("optim: learning-rate scale %v for %q, expected a non-negative finite number", sc, o.slots[i].name)
		}
	}
	for i, sc := range scales {
		o.slots[i].scale = sc
	}
	return nil
}

// LRScales returns each parameter's learning-rate scale.
func (o *AdamW) LRScales() []float64 {
	s := make([]float64, len(o.slots))
	for i := range o.slots {
		s[i] = o.slots[i].scale
	}
	return s
}

// LearnRate returns the current learning rate.
func (o *AdamW) LearnRate() float64 { return o.lr }

// Steps returns the number of steps taken (t; the next Step uses t+1).
func (o *AdamW) Steps() int { return o.t }

// Step applies one AdamW update. vgs must hold one entry per parameter, in
// the order given to NewAdamW (G.NodesToValueGrads of the param nodes does).
// Each value and gradient must be a contiguous *tensor.Dense of the
// parameter's dtype and shape; a *G.Node entry must also carry the
// parameter's node name. Everything is checked before anything changes, so
// on error neither the weights, the moments nor t are touched. On success
// the values are updated in place and every gradient is set to zero in
// place (so gradients accumulated under G.BindDualValues start afresh).
func (o *AdamW) Step(vgs []G.ValueGrad) error {
	if err := checkLR(o.lr); err != nil {
		return err
	}
	if err := o.bind(vgs); err != nil {
		o.unbind()
		return err
	}
	o.t++
	o.setCoefs()
	o.run()
	o.unbind()
	return nil
}

// setCoefs computes each slot's scalars in float64 exactly as PyTorch's
// _single_tensor_adamw does in Python for the slot's group learning rate,
// then rounds them to float32.
func (o *AdamW) setCoefs() {
	for i := range o.slots {
		s := &o.slots[i]
		lr := o.lr
		if s.scale != 1 {
			lr *= s.scale
		}
		s.c64, s.c32 = o.coefs(lr)
	}
}

// coefs returns the step's scalars for learning rate lr.
func (o *AdamW) coefs(lr float64) (coef[float64], coef[float32]) {
	bc1 := 1 - powInt(o.beta1, o.t)
	bc2 := 1 - powInt(o.beta2, o.t)
	stepSize := lr / bc1
	c := coef[float64]{
		decay:   1 - lr*o.wd,
		noDecay: 1,
		b1:      o.beta1,
		c1:      1 - o.beta1,
		b2:      o.beta2,
		c2:      1 - o.beta2,
		bc2sqrt: math.Sqrt(bc2),
		eps:     o.eps,
		negStep: -stepSize,
	}
	return c, coef[float32]{
		decay: float32(c.decay), noDecay: 1, b1: float32(c.b1), c1: float32(c.c1),
		b2: float32(c.b2), c2: float32(c.c2), bc2sqrt: float32(c.bc2sqrt),
		eps: float32(c.eps), negStep: float32(c.negStep),
	}
}

// run updates the elements of all params, split into contiguous ranges of
// the concatenated parameters, one per goroutine. Every element's update is
// independent, so the split does not change the result.
func (o *AdamW) run() {
	w := o.workers
	if w <= 0 {
		w = runtime.GOMAXPROCS(0)
	}
	minChunk := o.minChunk
	if minChunk <= 0 {
		minChunk = parallelMinChunk
	}
	if most := o.total / minChunk; w > most {
		w = most
	}
	if w <= 1 {
		o.runRange(0, o.total)
		return
	}
	chunk := (o.total + w - 1) / w
	o.wg.Add(w - 1)
	for k := 1; k < w; k++ {
		lo, hi := k*chunk, min((k+1)*chunk, o.total)
		go func() {
			defer o.wg.Done()
			o.runRange(lo, hi)
		}()
	}
	o.runRange(0, min(chunk, o.total))
	o.wg.Wait()
}

// runRange updates elements [lo, hi) of the concatenated parameters.
func (o *AdamW) runRange(lo, hi int) {
	for i := range o.slots {
		s := &o.slots[i]
		a, b := max(lo, s.offset), min(hi, s.offset+s.size)
		if a >= b {
			continue
		}
		a, b = a-s.offset, b-s.offset
		if s.dtype == tensor.Float32 {
			update(s.p32[a:b], s.g32[a:b], s.m32[a:b], s.v32[a:b], &s.c32, s.decay)
		} else {
			update(s.p64[a:b], s.g64[a:b], s.m64[a:b], s.v64[a:b], &s.c64, s.decay)
		}
	}
}

// update is the fused single-pass kernel, in PyTorch's operation order:
//
//	param.mul_(1-lr·λ)
//	m.mul_(β1).add_(g, alpha=1-β1)          → m = fma(1-β1, g, m·β1)
//	v.mul_(β2).addcmul_(g, g, value=1-β2)   → v = fma((1-β2)·g, g, v·β2)
//	param.addcdiv_(m, v.sqrt()/sqrt(bc2) + eps, value=-lr/bc1)
//
// PyTorch's vectorised CPU kernels (AVX2/AVX-512) fuse the two marked
// multiply-adds; so does this kernel, through math.FMA, which is exact on
// every platform. Every other product is rounded by an explicit conversion,
// which keeps the Go compiler from fusing anything else, so the result does
// not depend on the platform.
func update[T float32 | float64](p, g, m, v []T, c *coef[T], decay bool) {
	n := len(p)
	g, m, v = g[:n], m[:n], v[:n]
	d := c.noDecay // multiplying by 1 is exact: no branch in the loop
	if decay {
		d = c.decay
	}
	b1, c1, b2, c2, bc2sqrt, eps, negStep := c.b1, c.c1, c.b2, c.c2, c.bc2sqrt, c.eps, c.negStep
	for i := range p {
		gi := g[i]
		pi := T(p[i] * d)
		mi := fma(c1, gi, T(m[i]*b1))
		vi := fma(T(c2*gi), gi, T(v[i]*b2))
		denom := T(T(math.Sqrt(float64(vi)))/bc2sqrt) + eps
		p[i] = pi + T(T(negStep*mi)/denom)
		m[i], v[i], g[i] = mi, vi, 0
	}
}

// powInt returns b^n for n ≥ 0, correctly rounded in all but pathological
// cases, like C's pow (which Python's b ** n calls). math.Pow is not: it
// gives 0.9^4 = 0.6561000000000001, one ulp off. The power is computed by
// binary exponentiation in double-double arithmetic (about 104 bits), so
// the accumulated error stays far below half an ulp of the result.
func powInt(b float64, n int) float64 {
	rh, rl := 1.0, 0.0 // result
	bh, bl := b, 0.0   // b^(2^k)
	for n > 0 {
		if n&1 == 1 {
			rh, rl = mulDD(rh, rl, bh, bl)
		}
		n >>= 1
		if n > 0 {
			bh, bl = mulDD(bh, bl, bh, bl)
		}
	}
	return rh + rl
}

// mulDD multiplies two double-double numbers (hi+lo) and renormalises.
func mulDD(ah, al, bh, bl float64) (float64, float64) {
	p := ah * bh
	e := math.FMA(ah, bh, -p) // exact error of the product
	e += ah*bl + al*bh
	s := p + e
	return s, e - (s - p)
}

// fma returns x·y+z rounded once to float64 (for float32: rounded to
// float64, then to float32; the double rounding can differ from a true
// float32 fma only when the float64 result falls exactly halfway between
// two float32 values, which is rare and still deterministic).
func fma[T float32 | float64](x, y, z T) T {
	return T(math.FMA(float64(x), float64(y), float64(z)))
}

// bind checks vgs against the parameters and stores their data slices.
func (o *AdamW) bind(vgs []G.ValueGrad) error {
	if len(vgs) != len(o.slots) {
		return errors.Errorf("optim: Step expected %d value-grads (one per parameter, in order), found %d", len(o.slots), len(vgs))
	}
	for i := range o.slots {
		s := &o.slots[i]
		vg := vgs[i]
		if n, ok := vg.(*G.Node); ok {
			if n == nil {
				return errors.Errorf("optim: value-grad %d expected parameter %q, found a nil *G.Node", i, s.name)
			}
			if n != s.node && n.Name() != s.name {
				return errors.Errorf("optim: value-grad %d expected parameter %q, found node %q (vgs must follow the parameter order)", i, s.name, n.Name())
			}
		} else if vg == nil {
			return errors.Errorf("optim: value-grad %d expected parameter %q, found nil", i, s.name)
		}
		val, err := denseOf(vg.Value(), s.dtype, s.shape)
		if err != nil {
			return errors.Wrapf(err, "optim: parameter %q value", s.name)
		}
		gv, err := vg.Grad()
		if err != nil {
			return errors.Wrapf(err, "optim: parameter %q expected a gradient, found an error", s.name)
		}
		grad, err := denseOf(gv, s.dtype, s.shape)
		if err != nil {
			return errors.Wrapf(err, "optim: parameter %q gradient", s.name)
		}
		if s.dtype == tensor.Float32 {
			s.p32, s.g32 = val.Float32s(), grad.Float32s()
			if err := checkLen(len(s.p32), len(s.g32), s.size, s.name); err != nil {
				return err
			}
		} else {
			s.p64, s.g64 = val.Float64s(), grad.Float64s()
			if err := checkLen(len(s.p64), len(s.g64), s.size, s.name); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkLen(nv, ng, want int, name string) error {
	if nv != want || ng != want {
		return errors.Errorf("optim: parameter %q expected %d elements in value and gradient, found %d and %d", name, want, nv, ng)
	}
	return nil
}

// denseOf returns v as a contiguous *tensor.Dense of the given dtype and
// shape (shape nil: any).
func denseOf(v G.Value, dt tensor.Dtype, shape tensor.Shape) (*tensor.Dense, error) {
	if v == nil {
		return nil, errors.New("expected a *tensor.Dense, found nil")
	}
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, errors.Errorf("expected a *tensor.Dense, found %T", v)
	}
	if d == nil {
		return nil, errors.New("expected a *tensor.Dense, found a nil *tensor.Dense")
	}
	if d.Dtype() != dt {
		return nil, errors.Errorf("expected dtype %v, found %v", dt, d.Dtype())
	}
	if shape != nil && !sameShape(d.Shape(), shape) {
		return nil, errors.Errorf("expected shape %v, found %v", shape, d.Shape())
	}
	if d.RequiresIterator() {
		return nil, errors.New("expected a contiguous tensor, found a strided view or masked tensor")
	}
	return d, nil
}

// sameShape compares dims exactly (tensor.Shape.Eq treats (3), (1, 3) and
// (3, 1) as equal).
func sameShape(a, b tensor.Shape) bool { return slices.Equal(a, b) }

func (o *AdamW) unbind() {
	for i := range o.slots {
		s := &o.slots[i]
		s.p32, s.g32, s.p64, s.g64 = nil, nil, nil, nil
	}
}

// State is AdamW's resumable state: the step count t and the first and
// second moments, one slice per parameter in the NewAdamW order, each of
// the parameter's element count (row-major). float32 moments convert to
// float64 and back exactly. The hyper-parameters are not part of it.
type State struct {
	Step int
	M, V [][]float64
}

// State returns a deep copy of the optimizer state.
func (o *AdamW) State() State {
	st := State{Step: o.t, M: make([][]float64, len(o.slots)), V: make([][]float64, len(o.slots))}
	for i := range o.slots {
		s := &o.slots[i]
		m, v := make([]float64, s.size), make([]float64, s.size)
		if s.dtype == tensor.Float32 {
			for j := range m {
				m[j], v[j] = float64(s.m32[j]), float64(s.v32[j])
			}
		} else {
			copy(m, s.m64)
			copy(v, s.v64)
		}
		st.M[i], st.V[i] = m, v
	}
	return st
}

// SetState replaces t and the moments with a copy of s. It checks the
// counts and lengths against the parameters, a non-negative Step, and that
// every V entry is a non-negative number; on error nothing changes.
// Values for float32 parameters are rounded to float32 (exact for a State
// taken from a float32 optimizer).
func (o *AdamW) SetState(s State) error {
	if s.Step < 0 {
		return errors.Errorf("optim: State.Step expected ≥ 0, found %d", s.Step)
	}
	if len(s.M) != len(o.slots) || len(s.V) != len(o.slots) {
		return errors.Errorf("optim: State expected %d moment slices in M and V (one per parameter), found %d and %d", len(o.slots), len(s.M), len(s.V))
	}
	for i := range o.slots {
		sl := &o.slots[i]
		if len(s.M[i]) != sl.size || len(s.V[i]) != sl.size {
			return errors.Errorf("optim: State for parameter %q (index %d) expected %d elements in M and V, found %d and %d", sl.name, i, sl.size, len(s.M[i]), len(s.V[i]))
		}
		for j, x := range s.V[i] {
			if !(x >= 0) {
				return errors.Errorf("optim: State.V for parameter %q element %d expected a non-negative number, found %v", sl.name, j, x)
			}
		}
	}
	for i := range o.slots {
		sl := &o.slots[i]
		if sl.dtype == tensor.Float32 {
			for j := range sl.m32 {
				sl.m32[j], sl.v32[j] = float32(s.M[i][j]), float32(s.V[i][j])
			}
		} else {
			copy(sl.m64, s.M[i])
			copy(sl.v64, s.V[i])
		}
	}
	o.t = s.Step
	return nil
}
