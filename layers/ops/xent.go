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
	return G.ApplyOp(xentOp{newBase("CrossEntropy", 2, 2, 0)}, logits, target)
}

type xentOp struct{ base }

func (op xentOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }

func (op xentOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, xentDo[float32], xentDo[float64])
}

func xentDo[T float](op xentOp, in []*tensor.Dense) (G.Value, error) {
	return newScalar(dtypeOf[T](), xentFwd(sl[T](in[0]), sl[T](in[1]), in[0].Shape()[1], nil))
}

// xentFwd returns the mean loss; if grad is non-nil it also receives
// scale·(softmax·Σt − t) per element, the gradient of the mean loss times scale.
func xentFwd[T float](z, t []T, k int, grad []T, scale ...float64) float64 {
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
	d, err := gradNode("ops.CrossEntropy backward", xentGrad{newBase("CrossEntropyGrad", 2, 2, 0, 2)}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d, nil}, nil
}

// xentGrad: (z, t, dL) → dL·(softmax(z)·Σt − t)/B.
type xentGrad struct{ base }

func (op xentGrad) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return infer(ds[:1], likeFirst)
}

func (op xentGrad) Do(vs ...G.Value) (G.Value, error) {
	g, err := scalarOf(vs[2])
	if err != nil {
		return nil, errors.Wrap(err, op.name)
	}
	return run(xentGradRun{op, g}, vs[:2], xentGradDo[float32], xentGradDo[float64])
}

// xentGradRun is xentGrad with the value of dL in one run.
type xentGradRun struct {
	xentGrad
	dL float64
}

func xentGradDo[T float](op xentGradRun, in []*tensor.Dense) (G.Value, error) {
	d := zeroed[T](op.base, in[0].Shape())
	xentFwd(sl[T](in[0]), sl[T](in[1]), in[0].Shape()[1], sl[T](d), op.dL)
	return d, nil
}
