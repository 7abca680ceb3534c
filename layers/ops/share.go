package ops

import (
	"sort"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Buffer sharing.
//
// Every op of this package keeps its output tensor from one run to the
// next, which makes a training step allocation-free but keeps all of a
// step's intermediate results allocated at once: the backward pass's
// gradients, as large as the activations, would all coexist although each
// is dead a few instructions after it was written. ShareBuffers lets ops
// whose results are never alive at the same time write into one buffer, as
// a compiler's register allocator does for values.
//
// Liveness follows the order Gorgonia's tape machine runs a graph in (its
// stable topological sort, reversed), so a shared graph must be run by a
// tape machine (G.NewTapeMachine) and must not be changed afterwards.

// shareBuf is one buffer that the outputs of several ops use in turn.
type shareBuf struct {
	dt   tensor.Dtype
	n    int // elements: the largest output assigned to it
	data any // []float32 or []float64 of length n, allocated on first use
}

// backing returns the buffer's first size elements, allocating the buffer
// on first use.
func (s *shareBuf) backing(size int) any {
	if s.data == nil {
		switch s.dt {
		case tensor.Float32:
			s.data = make([]float32, s.n)
		default:
			s.data = make([]float64, s.n)
		}
	}
	switch d := s.data.(type) {
	case []float32:
		return d[:size]
	default:
		return d.([]float64)[:size]
	}
}

// slotted is implemented by the ops of this package (through base).
type slotted interface{ slot() *outSlot }

func (b base) slot() *outSlot { return b.out }

// ShareStats describes what ShareBuffers did: how many op outputs it
// planned, and their total size in bytes before and after sharing.
type ShareStats struct {
	Outputs, Buffers        int
	BytesBefore, BytesAfter int64
}

// ShareBuffers assigns the outputs of this package's ops in g to shared
// buffers such that no two outputs that are alive at the same time share
// one. An output is alive from the instruction that writes it to the last
// instruction that reads it, or reads a value that may alias it (Gorgonia
// ops that return a view of an input or overwrite one); the outputs in keep
// and outputs that nothing reads are alive to the end of the run, so their
// values can be read after it. Call it once the graph, including its
// gradient, is complete, before the first run.
func ShareBuffers(g *G.ExprGraph, keep ...*G.Node) (ShareStats, error) {
	var st ShareStats
	order, err := G.Sort(g)
	if err != nil {
		return st, errors.Wrap(err, "ops.ShareBuffers")
	}
	for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	end := len(order)
	pos := make(map[*G.Node]int, len(order))
	for i, n := range order {
		pos[n] = i
	}
	// lastRead[n]: the last instruction reading n (end if kept or unread).
	lastRead := make([]int, len(order))
	read := make([]bool, len(order))
	for i, n := range order {
		lastRead[i] = i
		for _, c := range children(g, n) {
			j, ok := pos[c]
			if !ok {
				return st, errors.Errorf("ops.ShareBuffers: node %v reads %v, which is not in the graph", n, c)
			}
			read[j] = true
			lastRead[j] = max(lastRead[j], i)
		}
	}
	for i := range order {
		if !read[i] {
			lastRead[i] = end
		}
	}
	for _, k := range keep {
		if i, ok := pos[k]; ok {
			lastRead[i] = end
		}
	}
	// roots[i]: the planned outputs whose buffer node i's value may be.
	// A planned op's value is its own buffer; any other op's value may be
	// a view of, or written over, any of its inputs' values.
	roots := make([][]int, len(order))
	planned := make([]*outSlot, len(order))
	for i, n := range order {
		if n.Op() == nil {
			continue // an input or a constant: never planned
		}
		if s, ok := n.Op().(slotted); ok && s.slot() != nil {
			dt := n.Dtype()
			if dt == tensor.Float32 || dt == tensor.Float64 {
				planned[i] = s.slot()
				roots[i] = []int{i}
				continue
			}
		}
		for _, c := range children(g, n) {
			roots[i] = appendUnique(roots[i], roots[pos[c]]...)
		}
	}
	// death[r]: the last instruction at which planned output r may be read.
	death := make([]int, len(order))
	for i := range order {
		for _, r := range roots[i] {
			death[r] = max(death[r], lastRead[i])
		}
	}
	// Greedy assignment in run order: an output takes the free buffer of
	// its dtype closest in size (the smallest that fits, else the largest,
	// which then grows), or a new one.
	var bufs []*shareBuf
	var free []int // indices into bufs
	type ending struct{ at, buf int }
	var busy []ending
	for i := range order {
		slot := planned[i]
		if slot == nil {
			continue
		}
		// Release buffers whose output died before this instruction.
		kept := busy[:0]
		for _, e := range busy {
			if e.at < i {
				free = append(free, e.buf)
			} else {
				kept = append(kept, e)
			}
		}
		busy = kept
		n := order[i]
		size := n.Shape().TotalSize()
		dt := n.Dtype()
		best := -1
		for k, b := range free {
			bb := bufs[b]
			if bb.dt != dt {
				continue
			}
			if best < 0 {
				best = k
				continue
			}
			cur := bufs[free[best]]
			switch {
			case cur.n >= size && bb.n >= size && bb.n < cur.n, // both fit: the smaller
				cur.n < size && bb.n > cur.n: // the current does not fit: the larger
				best = k
			}
		}
		var b int
		if best >= 0 {
			b = free[best]
			free = append(free[:best], free[best+1:]...)
		} else {
			b = len(bufs)
			bufs = append(bufs, &shareBuf{dt: dt})
		}
		bufs[b].n = max(bufs[b].n, size)
		slot.share, slot.t = bufs[b], nil
		busy = append(busy, ending{death[i], b})
		st.Outputs++
		st.BytesBefore += int64(size) * int64(dt.Size())
	}
	st.Buffers = len(bufs)
	for _, b := range bufs {
		st.BytesAfter += int64(b.n) * int64(b.dt.Size())
	}
	return st, nil
}

// appendUnique appends the values of add not yet in s, keeping s sorted.
func appendUnique(s []int, add ...int) []int {
	for _, v := range add {
		k := sort.SearchInts(s, v)
		if k < len(s) && s[k] == v {
			continue
		}
		s = append(s, 0)
		copy(s[k+1:], s[k:])
		s[k] = v
	}
	return s
}

// children returns the nodes n reads.
func children(g *G.ExprGraph, n *G.Node) []*G.Node {
	var out []*G.Node
	for it := g.From(n.ID()); it.Next(); {
		out = append(out, it.Node().(*G.Node))
	}
	return out
}
