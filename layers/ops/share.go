package ops

import (
	"sort"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Buffer sharing: what it may share and what callers must keep is
// "Buffer sharing" in the package documentation (doc.go). Liveness follows
// the order Gorgonia's tape machine runs a graph in: its stable topological
// sort, reversed.

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
// BytesLive, the most bytes of outputs alive at one instruction, is the
// lower bound on BytesAfter.
type ShareStats struct {
	Outputs, Buffers                   int
	BytesBefore, BytesAfter, BytesLive int64
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
	// Greedy by size: the largest outputs first, each into the first
	// buffer of its dtype none of whose outputs is alive at the same time
	// (every buffer is already at least as large), or into a new buffer of
	// exactly its size.
	type output struct{ at, dies, size int }
	var outs []output
	for i := range order {
		if planned[i] == nil {
			continue
		}
		outs = append(outs, output{i, death[i], order[i].Shape().TotalSize()})
	}
	sort.SliceStable(outs, func(x, y int) bool { return outs[x].size > outs[y].size })
	type buffer struct {
		buf  *shareBuf
		used []output
	}
	var bufs []*buffer
	for _, o := range outs {
		dt := order[o.at].Dtype()
		var home *buffer
	search:
		for _, b := range bufs {
			if b.buf.dt != dt {
				continue
			}
			for _, u := range b.used {
				if o.at <= u.dies && u.at <= o.dies {
					continue search
				}
			}
			home = b
			break
		}
		if home == nil {
			home = &buffer{buf: &shareBuf{dt: dt, n: o.size}}
			bufs = append(bufs, home)
		}
		home.used = append(home.used, o)
		slot := planned[o.at]
		slot.share, slot.t = home.buf, nil
		st.Outputs++
		st.BytesBefore += int64(o.size) * int64(dt.Size())
	}
	st.Buffers = len(bufs)
	for _, b := range bufs {
		st.BytesAfter += int64(b.buf.n) * int64(b.buf.dt.Size())
	}
	// The lower bound: the most bytes alive at any one instruction.
	live := make([]int64, len(order)+1)
	for _, o := range outs {
		sz := int64(o.size) * int64(order[o.at].Dtype().Size())
		for i := o.at; i <= o.dies && i < len(live); i++ {
			live[i] += sz
		}
	}
	for _, v := range live {
		st.BytesLive = max(st.BytesLive, v)
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
