package ops

import (
	"fmt"
	"sync"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Noise is the random state shared by the dropout and drop-path ops of one
// model. Masks are a pure function of (Seed, op, step), so a run is
// reproducible and a resumed run can continue the same sequence with
// SetStep. Every forward pass of an op in training mode advances its step.
type Noise struct {
	mu       sync.Mutex
	seed     uint64
	training bool
	frozen   bool
	ops      []*dropState
}

// NewNoise returns the random state for a model; it starts in training mode.
func NewNoise(seed uint64) *Noise { return &Noise{seed: seed, training: true} }

// SetTraining switches every dropout op of this Noise on (true) or off.
func (n *Noise) SetTraining(on bool) { n.mu.Lock(); n.training = on; n.mu.Unlock() }

// Freeze keeps every op's current mask (for gradient checks).
func (n *Noise) Freeze(on bool) { n.mu.Lock(); n.frozen = on; n.mu.Unlock() }

// SetStep sets the number of forward passes every op has made, so that the
// next masks are those an uninterrupted run would draw at that step.
func (n *Noise) SetStep(step uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.ops {
		s.step = step
	}
}

// dropState is the per-application state: its identity in the mask stream,
// how many masks it has drawn, and the mask of the last forward pass, which
// its backward pass uses.
type dropState struct {
	noise *Noise
	id    uint64
	step  uint64
	mask  []float64 // per element or per sample; nil = identity
}

// DropUnit selects what Dropout drops.
type DropUnit uint8

const (
	// DropElements drops each element on its own: dropout.
	DropElements DropUnit = iota
	// DropSamples drops whole samples (the leading axis) at once:
	// stochastic depth (DropPath) of a residual branch.
	DropSamples
)

// Dropout zeroes each element of x (or each sample, with DropSamples) with
// probability p while training and scales the rest by 1/(1−p) (inverted
// dropout). When the Noise is not training it is the identity. The backward
// pass multiplies the gradient by the forward pass's mask.
func Dropout(x *G.Node, p float64, unit DropUnit, noise *Noise) (*G.Node, error) {
	if !(p >= 0 && p < 1) {
		return nil, errors.Errorf("ops.Dropout: probability must be in [0, 1), got %v", p)
	}
	if unit != DropElements && unit != DropSamples {
		return nil, errors.Errorf("ops.Dropout: invalid DropUnit %d", unit)
	}
	perSample := unit == DropSamples
	if noise == nil {
		return nil, errors.New("ops.Dropout: nil Noise")
	}
	noise.mu.Lock()
	st := &dropState{noise: noise, id: uint64(len(noise.ops)) + 1}
	noise.ops = append(noise.ops, st)
	noise.mu.Unlock()
	r := x.Dims()
	name := fmt.Sprintf("Dropout(p=%g,perSample=%t,id=%d,noise=%p)", p, perSample, st.id, noise)
	return G.ApplyOp(dropOp{newBase(name, r, r), p, perSample, st}, x)
}

type dropOp struct {
	base
	p         float64
	perSample bool
	st        *dropState
}

func (op dropOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, likeFirst) }

// splitmix64 is the finaliser of SplitMix64: a good 64-bit mixing function.
func splitmix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// drawMask fills the state's mask for the next step.
func (op dropOp) drawMask(n, units int) {
	st := op.st
	nz := st.noise
	nz.mu.Lock()
	training, frozen := nz.training, nz.frozen
	nz.mu.Unlock()
	if !training || op.p == 0 {
		st.mask = nil
		return
	}
	if frozen && len(st.mask) == units {
		return
	}
	key := splitmix64(splitmix64(nz.seed^0x5851f42d4c957f2d) ^ splitmix64(st.id<<32^st.step))
	st.step++
	if cap(st.mask) < units {
		st.mask = make([]float64, units)
	}
	st.mask = st.mask[:units]
	scale := 1 / (1 - op.p)
	for i := range st.mask {
		u := float64(splitmix64(key+uint64(i))>>11) / (1 << 53)
		if u < op.p {
			st.mask[i] = 0
		} else {
			st.mask[i] = scale
		}
	}
}

func (op dropOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, dropDo[float32], dropDo[float64])
}

func dropDo[T float](op dropOp, in []*tensor.Dense) (G.Value, error) {
	x := in[0]
	n := x.Shape().TotalSize()
	units := n
	if op.perSample {
		units = x.Shape()[0]
	}
	op.drawMask(n, units)
	return maskDo[T](op.base, op.st, in)
}

// maskDo multiplies in[0] by st's current mask into the op's output: the
// forward pass of dropout once the mask is drawn, and its backward pass.
func maskDo[T float](b base, st *dropState, in []*tensor.Dense) (G.Value, error) {
	y := output[T](b, in[0].Shape())
	applyMask(sl[T](in[0]), sl[T](y), st.mask)
	return y, nil
}

// applyMask multiplies x by mask (one value per element, or per equal-sized
// block of x when the mask is shorter) into y; a nil mask copies.
func applyMask[T float](x, y []T, mask []float64) {
	if mask == nil {
		copy(y, x)
		return
	}
	per := len(x) / len(mask)
	for u, m := range mask {
		s := T(m)
		for i := u * per; i < (u+1)*per; i++ {
			y[i] = x[i] * s
		}
	}
}

func (op dropOp) DiffWRT(n int) []bool { return allDiff(n) }

func (op dropOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	r := grad.Dims()
	return oneGrad("ops.Dropout backward", dropGrad{newBase("Grad"+op.name, r, r), op.st}, grad)
}

// dropGrad multiplies the incoming gradient by the forward pass's mask.
type dropGrad struct {
	base
	st *dropState
}

func (op dropGrad) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, likeFirst) }

func (op dropGrad) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, dropGradDo[float32], dropGradDo[float64])
}

func dropGradDo[T float](op dropGrad, in []*tensor.Dense) (G.Value, error) {
	return maskDo[T](op.base, op.st, in)
}
