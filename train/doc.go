// Package train trains a ViT on an in-memory dataset with Gorgonia's tape
// machine: one training graph built once and run every step, a separate
// inference graph over the same weight tensors for evaluation, AdamW with
// decoupled weight decay (package train/optim), linear warmup then cosine
// decay, global-norm clipping and label smoothing. A run is a pure function
// of its config, seed and data: the same inputs give the same weights bit
// for bit, and a run resumed from a checkpoint ends where an uninterrupted
// one does.
//
// # Where to start
//
//	trainSet, testSet, _, err := data.Load(dir, data.Options{})      // train/data: CIFAR, IDX, image folders
//	r, err := train.New(cfg, trainSet, testSet, data.ComputeNormalization(trainSet))
//	defer r.Close()
//	err = r.Fit(ctx, train.Hooks{Save: func(r *train.Run, best bool) error { return r.Save(path) }})
//
// Config is the recipe (its Model field the model.Config); Run.TrainStep
// takes one step, Run.EndEpoch evaluates and returns the epoch's Metrics,
// Fit loops, saving through Hooks and stopping cleanly when its context is
// cancelled. Run.Save writes one safetensors file with the weights, the
// optimizer state and where the run is; Resume continues it. The file also
// opens as plain weights (model.Open, model.LoadClassifier). EvaluateOn
// gives a model.Evaluation (accuracy, loss, per-class, confusion matrix) on
// any dataset; OpenMetricsLog writes the metrics file cmd/train keeps.
//
// Fine-tuning: FineTune starts a run from weights read by model.ReadFile
// (a new head for other classes, positions resized); Config.Freeze chooses
// what trains (FreezeBackbone: a linear probe) and Config.LayerDecay scales
// each block's learning rate (LayerScales). A run reads its batches from a
// data.Source: a data.Dataset in memory, or a data.Folder read lazily.
//
// A loss or gradient that is not finite stops the run with a
// *NonFiniteError naming the step, unless Config.SkipNaN is set.
package train
