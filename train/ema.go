package train

import (
	"github.com/pkg/errors"

	"github.com/vitgo/vit/model"
)

// With Config.EMA the evaluation graph has weights of its own: the
// exponential moving average of the training weights, updated after every
// optimizer step as
//
//	ema ← d·ema + (1 − d)·w,  d = min(EMA, (1 + t) / (10 + t))
//
// at step t (1 after the first step): the warm-up of the decay lets the
// average forget the random initial weights quickly (as TensorFlow's
// ExponentialMovingAverage with num_updates does). The average starts at
// the initial (or pretrained) weights. Evaluation, the best checkpoint and
// the main tensors of every checkpoint are the average's; a checkpoint
// carries the training weights too (tensors train.raw.NAME), from which a
// resumed run goes on exactly. A checkpoint's MetaWeights says which
// weights its main tensors are.

// tensorRaw prefixes the training weights in a checkpoint of an EMA run.
const tensorRaw = model.ExtraPrefix + "raw."

// MetaWeights is the metadata key that says which weights a checkpoint's
// main tensors hold: "ema" (the moving average, with the decay in
// metaEMADecay) or "trained" (the optimizer's weights).
const MetaWeights = "weights"

const metaEMADecay = "train.ema_decay"

// emaDecay is the decay after t steps.
func emaDecay(max float64, t int) float64 {
	return min(max, (1+float64(t))/(10+float64(t)))
}

// emaUpdate folds the training weights into the average after step t.
func (r *Run) emaUpdate(t int) {
	d := emaDecay(r.Config.EMA, t)
	keep, take := float32(d), float32(1-d)
	src, dst := r.Model.Params(), r.eModel.Params()
	for i, p := range src {
		w := p.Node.Value().Data().([]float32)
		e := dst[i].Node.Value().Data().([]float32)
		for j, v := range w {
			e[j] = keep*e[j] + take*v
		}
	}
}

// emaReset sets the average to the training weights (at the start of a run,
// after pretrained weights are loaded).
func (r *Run) emaReset() {
	if r.Config.EMA == 0 {
		return
	}
	src, dst := r.Model.Params(), r.eModel.Params()
	for i, p := range src {
		copy(dst[i].Node.Value().Data().([]float32), p.Node.Value().Data().([]float32))
	}
}

// restoreRaw loads the training weights of an EMA checkpoint (its main
// tensors, loaded by newRun, are the average: they go to the evaluation
// model).
func (r *Run) restoreRaw(f *model.File) error {
	src, dst := r.Model.Params(), r.eModel.Params()
	for i, p := range src {
		copy(dst[i].Node.Value().Data().([]float32), p.Node.Value().Data().([]float32))
	}
	for _, p := range src {
		t, ok := f.Tensors[tensorRaw+p.Name]
		if !ok {
			return errors.Errorf("train: %s has no training weights for %s (an EMA run's checkpoint keeps them as %s…)", f.Path, p.Name, tensorRaw)
		}
		w := p.Node.Value().Data().([]float32)
		if len(t.Data) != len(w) {
			return errors.Errorf("train: %s: training weights %s have %d values, expected %d", f.Path, p.Name, len(t.Data), len(w))
		}
		for j, v := range t.Data {
			w[j] = float32(v)
		}
	}
	return nil
}
