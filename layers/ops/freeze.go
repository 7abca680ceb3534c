package ops

import (
	"sync"
	"sync/atomic"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/ops/sgemm"
)

// frozenWeight is set on a Linear op by FreezeWeights: its weight is then
// packed for the SGEMM kernel once, in the registry shared by the frozen
// graphs, instead of at every forward pass.
type frozenWeight struct {
	reg atomic.Pointer[packRegistry]
}

// packRegistry holds the packed weights of a set of frozen graphs, by the
// address of the weight's first element.
type packRegistry struct {
	mu sync.Mutex
	m  map[*float32]*sgemm.PackedB
}

// get returns w (out×in) packed, packing it on first use.
func (r *packRegistry) get(w []float32, out, in int) *sgemm.PackedB {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pb := r.m[&w[0]]; pb != nil {
		if k, n := pb.Dims(); k == in && n == out {
			return pb
		}
	}
	pb := sgemm.PackB(true, in, out, w, in)
	r.m[&w[0]] = pb
	return pb
}

// FreezeWeights declares that the weights of the Linear ops of these
// graphs will not change any more (inference graphs whose weights are
// loaded), so that each weight is packed for the SGEMM kernel once, at the
// first forward pass, not at every one: at batch 1 packing a layer's
// weights is about a tenth of the work. Graphs whose Linear ops read the
// same weight tensor (a pool of graphs sharing weights) share one packed
// copy: the extra memory is about one copy of the Linear weights. Results
// are bit for bit those of unfrozen graphs. A weight changed in place
// after its first frozen pass is not seen: never freeze a graph that
// trains. Only the default build's float32 SGEMM uses packed weights. It
// returns the number of Linear ops frozen.
func FreezeWeights(graphs ...*G.ExprGraph) int {
	reg := &packRegistry{m: map[*float32]*sgemm.PackedB{}}
	frozen := 0
	for _, g := range graphs {
		for _, n := range g.AllNodes() {
			if op, ok := n.Op().(linearOp); ok && op.frozen != nil {
				op.frozen.reg.Store(reg)
				frozen++
			}
		}
	}
	return frozen
}

// linearFrozen is linearFwd for a frozen op in the default build, with
// the weight packed once: the rows of x are shared out across the cores,
// or the columns of y (panels of the packed weight) when there are few
// rows. It reports false, doing nothing, when it does not apply (not
// frozen, float64, another BLAS).
func linearFrozen[T float](op linearOp, x, w, b, y *tensor.Dense) bool {
	reg := op.frozen.reg.Load()
	if reg == nil || !ownSgemm {
		return false
	}
	w32, ok := any(sl[T](w)).([]float32)
	if !ok || len(w32) == 0 {
		return false
	}
	out, in := w.Shape()[0], w.Shape()[1]
	pb := reg.get(w32, out, in)
	x32, y32 := any(sl[T](x)).([]float32), any(sl[T](y)).([]float32)
	var b32 []float32
	if b != nil {
		b32 = any(sl[T](b)).([]float32)
	}
	m := len(x32) / in
	if splitByColumns(false, m, out) {
		parallelCols(out, m*in/8, func(lo, hi int) {
			var bs []float32
			if b32 != nil {
				bs = b32[lo:hi]
			}
			sgemm.SgemmPacked(false, m, hi-lo, 1, x32, in, pb, lo, 0, y32[lo:], out, bs)
		})
		return true
	}
	parallelFor(m, out*in/8, func(lo, hi int) {
		sgemm.SgemmPacked(false, hi-lo, out, 1, x32[lo*in:], in, pb, 0, 0, y32[lo*out:], out, b32)
	})
	return true
}
