package ops

import (
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// CrossEntropy returns the mean over the batch of −Σ_k t_k·log softmax(z)_k
// for logits z (B, K) and target distributions t (B, K): one-hot labels, or
// smoothed ones. The log-softmax is computed stably per row. The gradient
// flows to the logits only.
func CrossEntropy(logits, target *G.Node) (*G.Node, error) {
	if logits.Dims() != 2 || !logits.Shape().Eq(target.Shape()) {
		return nil, errors.Errorf("ops.CrossEntropy: want logits and targets of one shape (B, K), got %v and %v", logits.Shape(), target.Shape())
	}
	return G.ApplyOp(xentOp{base{out: new(outSlot), name: "CrossEntropy", ranks: []int{2, 2, 0}}}, logits, target)
}

type xentOp struct{ base }

func (op xentOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }

func (op xentOp) Do(vs ...G.Value) (G.Value, error) {
	in, dt, err := values(op.name, vs)
	if err != nil {
		return nil, err
	}
	var loss float64
	if dt == tensor.Float32 {
		loss = xentFwd(sl[float32](in[0]), sl[float32](in[1]), in[0].Shape()[1], nil)
	} else {
		loss = xentFwd(sl[float64](in[0]), sl[float64](in[1]), in[0].Shape()[1], nil)
	}
	return newScalar(dt, loss)
}

// xentFwd returns the mean loss; if grad is non-nil it also receives
// scale·(softmax·Σt − t) per element, the gradient of the mean loss times scale.
func xentFwd[T Float](z, t []T, k int, grad []T, scale ...float64) float64 {
	b := len(z) / k
	var loss float64
	for r := 0; r < b; r++ {
		row, tr := z[r*k:(r+1)*k], t[r*k:(r+1)*k]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, float64(v))
		}
		var s, st float64
		for _, v := range row {
			s += math.Exp(float64(v) - m)
		}
		lse := m + math.Log(s)
		for j, v := range row {
			loss -= float64(tr[j]) * (float64(v) - lse)
			st += float64(tr[j])
		}
		if grad != nil {
			g := grad[r*k : (r+1)*k]
			for j, v := range row {
				g[j] = T(scale[0] * (math.Exp(float64(v)-lse)*st - float64(tr[j])) / float64(b))
			}
		}
	}
	return loss / float64(b)
}

func (op xentOp) DiffWRT(n int) []bool { return []bool{true, false} }

func (op xentOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	d, err := G.ApplyOp(xentGrad{base{out: new(outSlot), name: "CrossEntropyGrad", ranks: []int{2, 2, 0, 2}}}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, errors.Wrap(err, "ops.CrossEntropy backward")
	}
	return G.Nodes{d, nil}, nil
}

// xentGrad: (z, t, dL) → dL·(softmax(z)·Σt − t)/B.
type xentGrad struct{ base }

func (op xentGrad) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(ds[:1])
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op xentGrad) Do(vs ...G.Value) (G.Value, error) {
	g, err := scalarOf(vs[2])
	if err != nil {
		return nil, errors.Wrap(err, op.name)
	}
	in, dt, err := values(op.name, vs[:2])
	if err != nil {
		return nil, err
	}
	d := op.alloc(dt, in[0].Shape())
	k := in[0].Shape()[1]
	if dt == tensor.Float32 {
		xentFwd(sl[float32](in[0]), sl[float32](in[1]), k, sl[float32](d), g)
	} else {
		xentFwd(sl[float64](in[0]), sl[float64](in[1]), k, sl[float64](d), g)
	}
	return d, nil
}
