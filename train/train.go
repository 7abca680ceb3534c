package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers"
	"github.com/vitgo/vit/layers/ops"
	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/preprocess"
	"github.com/vitgo/vit/train/data"
	"github.com/vitgo/vit/train/optim"
)

// Config is a training recipe.
type Config struct {
	Model        model.Config `json:"model"`
	Epochs       int          `json:"epochs"`
	Batch        int          `json:"batch"`
	EvalBatch    int          `json:"eval_batch,omitempty"` // 0 = min(Batch, 32): the evaluation graph's buffers add to the training graph's, so a small batch keeps the peak memory down
	LR           float64      `json:"lr"`                   // peak learning rate
	MinLR        float64      `json:"min_lr"`               // at the end of the cosine
	WeightDecay  float64      `json:"weight_decay"`         // decoupled, on weight matrices only
	WarmupEpochs float64      `json:"warmup_epochs"`        // linear warmup from ~0 to LR
	Smoothing    float64      `json:"label_smoothing"`      // 0.1 = 90% on the label, the rest spread evenly
	ClipNorm     float64      `json:"clip_norm"`            // global gradient-norm limit; 0 = none
	Seed         int64        `json:"seed"`
	Pad          int          `json:"pad"`                   // random crop after padding by this many pixels; 0 = none
	Flip         bool         `json:"flip"`                  // random horizontal flips
	SkipNaN      bool         `json:"skip_nan"`              // skip a step whose loss or gradient is not finite, instead of stopping
	Freeze       string       `json:"freeze,omitempty"`      // "" trains every parameter; FreezeBackbone the head only (a linear probe); else comma-separated parameter-name prefixes to freeze ("patch_embed.,blocks.0.")
	LayerDecay   float64      `json:"layer_decay,omitempty"` // 0 (none) or R in (0, 1]: each block's learning rate is R times the next one's (BEiT)
	// Val holds out this many training images (stratified, chosen from
	// the seed: data.SplitValidation) to evaluate after every epoch and to
	// choose the best checkpoint by; 0 holds out none, and then no
	// checkpoint is chosen. The test split is only ever reported.
	Val int `json:"val,omitempty"`
	// EMA, if not 0, is the decay of an exponential moving average of the
	// weights (e.g. 0.999) that is evaluated and saved instead of the
	// trained weights (see ema.go).
	EMA float64 `json:"ema,omitempty"`
	// AutoAugment is an augmentation policy (data.ParsePolicy:
	// "randaugment", "randaugment-nN-mM", "trivialaugment"; "" = none),
	// Erase the probability of random erasing, Mixup and CutMix the Beta
	// alphas of the batch mixing (data.Mix; 0 = off).
	AutoAugment string  `json:"auto_augment,omitempty"`
	Erase       float64 `json:"erase,omitempty"`
	Mixup       float64 `json:"mixup,omitempty"`
	CutMix      float64 `json:"cutmix,omitempty"`
}

// FreezeBackbone is Config.Freeze for training the classifier head only.
const FreezeBackbone = "backbone"

// Validate reports the first impossible setting.
func (c Config) Validate() error {
	if err := c.Model.Validate(); err != nil {
		return err
	}
	switch {
	case c.Epochs <= 0:
		return errors.Errorf("train: epochs must be positive, got %d", c.Epochs)
	case c.Batch <= 0:
		return errors.Errorf("train: batch size must be positive, got %d", c.Batch)
	case c.EvalBatch < 0:
		return errors.Errorf("train: eval batch size must not be negative, got %d", c.EvalBatch)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return errors.Errorf("train: learning rate must be positive, got %v", c.LR)
	case !(c.MinLR >= 0) || c.MinLR > c.LR:
		return errors.Errorf("train: minimum learning rate must be in [0, lr=%v], got %v", c.LR, c.MinLR)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return errors.Errorf("train: weight decay must be ≥ 0, got %v", c.WeightDecay)
	case !(c.WarmupEpochs >= 0) || c.WarmupEpochs > float64(c.Epochs):
		return errors.Errorf("train: warmup must be in [0, epochs=%d], got %v", c.Epochs, c.WarmupEpochs)
	case !(c.Smoothing >= 0 && c.Smoothing < 1):
		return errors.Errorf("train: label smoothing must be in [0, 1), got %v", c.Smoothing)
	case !(c.ClipNorm >= 0) || math.IsInf(c.ClipNorm, 0):
		return errors.Errorf("train: clip norm must be ≥ 0, got %v", c.ClipNorm)
	case c.Pad < 0 || c.Pad >= c.Model.ImageSize:
		return errors.Errorf("train: crop padding must be in [0, %d), got %d", c.Model.ImageSize, c.Pad)
	case !(c.EMA >= 0 && c.EMA < 1):
		return errors.Errorf("train: EMA decay must be in [0, 1) (0 = off), got %v", c.EMA)
	case !(c.Erase >= 0 && c.Erase <= 1):
		return errors.Errorf("train: erasing probability must be in [0, 1], got %v", c.Erase)
	case c.Val < 0:
		return errors.Errorf("train: validation images must not be negative, got %d", c.Val)
	case !(c.LayerDecay >= 0 && c.LayerDecay <= 1):
		return errors.Errorf("train: layer decay must be in [0, 1] (0 = none), got %v", c.LayerDecay)
	}
	if _, _, _, err := data.ParsePolicy(c.AutoAugment); err != nil {
		return errors.Wrap(err, "train")
	}
	return errors.Wrap(data.Mix{Mixup: c.Mixup, CutMix: c.CutMix}.Check(), "train")
}

// Metrics are one epoch's figures (one line of the metrics file). The
// validation figures are there (and in the JSON) only with held-out
// validation images (HasVal).
type Metrics struct {
	Epoch      int     `json:"epoch"` // 1-based
	Step       int     `json:"step"`  // optimizer steps so far
	TrainLoss  float64 `json:"train_loss"`
	TrainAcc   float64 `json:"train_acc"`
	ValLoss    float64 `json:"val_loss"`
	ValAcc     float64 `json:"val_acc"`
	TestLoss   float64 `json:"test_loss"`
	TestAcc    float64 `json:"test_acc"`
	LR         float64 `json:"lr"`           // at the epoch's last step
	ImagesPerS float64 `json:"images_per_s"` // training throughput over the epoch
	Seconds    float64 `json:"seconds"`      // wall time of the epoch, evaluation included
	Skipped    int     `json:"skipped,omitempty"`
	HasVal     bool    `json:"-"`
}

// MarshalJSON leaves out val_loss and val_acc without validation data.
func (m Metrics) MarshalJSON() ([]byte, error) {
	type plain Metrics
	if m.HasVal {
		return json.Marshal(plain(m))
	}
	return json.Marshal(struct {
		plain
		ValLoss *float64 `json:"val_loss,omitempty"` // shadow the embedded fields
		ValAcc  *float64 `json:"val_acc,omitempty"`
	}{plain: plain(m)})
}

// UnmarshalJSON sets HasVal when the line has validation figures.
func (m *Metrics) UnmarshalJSON(b []byte) error {
	type plain Metrics
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(b, (*plain)(m)); err != nil {
		return err
	}
	_, m.HasVal = raw["val_acc"]
	return nil
}

// Run is one training run: the model, its graphs, the optimizer and where
// the run is.
type Run struct {
	Config  Config
	Norm    preprocess.Normalization
	Classes []string
	Model   *model.ViT // the training graph's model
	// Trainable are the parameters the optimizer updates (all, or the head
	// only with Config.Freeze), in the model's order.
	Trainable []*layers.Param
	// Buffers describes the buffer sharing of the training and the
	// evaluation graph (ops.ShareBuffers).
	Buffers    struct{ Train, Eval ops.ShareStats }
	train      data.Source
	val        data.Source // nil without Config.Val
	test       data.Source
	opt        *optim.AdamW
	sched      optim.WarmupCosine
	stepsEpoch int

	g            *G.ExprGraph
	x, y         *G.Node
	logits, loss *G.Node
	vm           G.VM
	xbuf, ybuf   []float32
	labels       []int
	perm         []int // the training order of epoch permEpoch
	permEpoch    int

	eg      *G.ExprGraph
	eModel  *model.ViT
	ex      *G.Node
	elogits *G.Node
	evm     G.VM
	exbuf   []float32

	// Progress. Step counts optimizer steps over the whole run; the epoch
	// in progress is Step / stepsEpoch.
	Step int
	// BestAcc is the best validation accuracy so far, reached at the end
	// of epoch BestEpoch (1-based; 0: none yet), where the test accuracy
	// was BestTestAcc (reported, never used to choose).
	BestAcc     float64
	BestEpoch   int
	BestTestAcc float64
	partial     partialEpoch
	lastLoss    float64
	// The next step's batch being prepared, and a set of buffers for it.
	ahead, spare *aheadBatch
}

// partialEpoch accumulates the running epoch's training figures, and is
// saved with a checkpoint so that a resumed epoch reports the same.
type partialEpoch struct {
	SumLoss float64 `json:"sum_loss"`
	Correct int     `json:"correct"`
	Seen    int     `json:"seen"`
	Seconds float64 `json:"seconds"` // training time so far in this epoch
	Skipped int     `json:"skipped"`
}

// New prepares a run from scratch. The model's image size, channels and
// classes must agree with the data; norm normalises the images.
func New(cfg Config, trainSet, testSet data.Source, norm preprocess.Normalization) (*Run, error) {
	return newRun(cfg, trainSet, testSet, norm, nil)
}

// newRun is New with the model's weights loaded from a file (when from is
// not nil) instead of drawn from the seed.
func newRun(cfg Config, trainSet, testSet data.Source, norm preprocess.Normalization, from *model.File) (*Run, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkData(cfg.Model, trainSet, "training"); err != nil {
		return nil, err
	}
	if err := checkData(cfg.Model, testSet, "test"); err != nil {
		return nil, err
	}
	if err := norm.Check(cfg.Model.Channels); err != nil {
		return nil, errors.Wrap(err, "train")
	}
	if trainSet.Len() < cfg.Batch {
		return nil, errors.Errorf("train: %d training images are fewer than one batch of %d", trainSet.Len(), cfg.Batch)
	}
	r := &Run{Config: cfg, Norm: norm, Classes: trainSet.ClassNames(), train: trainSet, test: testSet}
	if cfg.Val > 0 {
		var err error
		if r.train, r.val, err = ValidationSplit(trainSet, cfg); err != nil {
			return nil, err
		}
		if r.train.Len() < cfg.Batch {
			return nil, errors.Errorf("train: %d training images left after holding out %d for validation are fewer than one batch of %d", r.train.Len(), cfg.Val, cfg.Batch)
		}
	}
	r.stepsEpoch = r.train.Len() / cfg.Batch // the last partial batch is dropped; every epoch sees a new order
	total := r.stepsEpoch * cfg.Epochs
	r.sched = optim.WarmupCosine{Base: cfg.LR, Min: cfg.MinLR, Warmup: int(math.Round(cfg.WarmupEpochs * float64(r.stepsEpoch))), Total: total}
	if err := r.buildTrainGraph(from); err != nil {
		return nil, err
	}
	if err := r.buildEvalGraph(); err != nil {
		return nil, err
	}
	var err error
	r.opt, err = optim.NewAdamW(r.Trainable, optim.Config{LR: r.sched.At(0), WeightDecay: cfg.WeightDecay})
	if err != nil {
		return nil, err
	}
	if cfg.LayerDecay > 0 {
		if err := r.opt.SetLRScales(LayerScales(r.Trainable, cfg.Model.Depth, cfg.LayerDecay)); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// ValidationSplit returns the training images a run with cfg trains on and
// the ones it holds out for validation (cfg.Val of them, stratified, chosen
// from cfg.Seed): data.SplitValidation, which needs a source whose labels
// can be read (data.Labeled: in-memory datasets, folders and views).
func ValidationSplit(trainSet data.Source, cfg Config) (train, val *data.View, err error) {
	l, ok := trainSet.(data.Labeled)
	if !ok {
		return nil, nil, errors.Errorf("train: cannot hold out validation images from a %T (its labels cannot be read)", trainSet)
	}
	train, val, err = data.SplitValidation(l, cfg.Val, cfg.Seed)
	return train, val, errors.Wrap(err, "train")
}

// FineTune prepares a run that starts from pretrained weights: the
// tensors of pre (read by model.ReadFile: this package's checkpoints, or
// timm's, torchvision's and Hugging Face's weights) are loaded into cfg's
// model, except the head when it is for other classes (another count, or
// class names in the weights' metadata other than the data's), which is
// initialised anew as cfg.Model.Init says; a positional embedding for
// another image size is resized. The optimizer starts afresh. cfg.Model
// must have the weights' architecture. notes say what was not loaded.
func FineTune(cfg Config, trainSet, testSet data.Source, norm preprocess.Normalization, pre *model.File) (r *Run, notes []string, err error) {
	if r, err = New(cfg, trainSet, testSet, norm); err != nil {
		return nil, nil, err
	}
	newHead := false
	if names, note, err := pre.Classes(cfg.Model.NumClasses); err == nil && note == "" {
		newHead = !slices.Equal(names, trainSet.ClassNames())
	}
	if notes, err = r.Model.LoadPretrained(pre.Tensors, newHead); err != nil {
		r.Close()
		return nil, nil, errors.Wrapf(err, "train: pretrained weights %s", pre.Path)
	}
	r.emaReset()
	return r, notes, nil
}

// trainable returns the parameters of m that cfg trains: all but those
// Config.Freeze names (FreezeBackbone: all but the head's; else the
// parameters whose names start with one of its comma-separated prefixes).
// A prefix that names no parameter, or freezing everything, is an error.
func trainable(m *model.ViT, cfg Config) ([]*layers.Param, error) {
	fixed := func(name string) bool { return name == "pos_embed" && cfg.Model.FixedPositions() }
	if cfg.Freeze == "" {
		var ps []*layers.Param
		for _, p := range m.Params() {
			if !fixed(p.Name) {
				ps = append(ps, p)
			}
		}
		return ps, nil
	}
	frozen := func(name string) bool { return !strings.HasPrefix(name, "head.") }
	if cfg.Freeze != FreezeBackbone {
		prefixes := strings.Split(cfg.Freeze, ",")
		for _, pre := range prefixes {
			if !slices.ContainsFunc(m.Params(), func(p *layers.Param) bool { return strings.HasPrefix(p.Name, pre) }) {
				return nil, errors.Errorf("train: freeze %q: no parameter's name starts with %q (names are timm's: patch_embed.proj.weight, blocks.0.attn.qkv.weight, …)", cfg.Freeze, pre)
			}
		}
		frozen = func(name string) bool {
			return slices.ContainsFunc(prefixes, func(pre string) bool { return strings.HasPrefix(name, pre) })
		}
	}
	var ps []*layers.Param
	for _, p := range m.Params() {
		if !frozen(p.Name) && !fixed(p.Name) {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil, errors.Errorf("train: freeze %q leaves nothing to train", cfg.Freeze)
	}
	return ps, nil
}

// LayerScales gives each parameter's learning-rate scale under layer-wise
// decay r, as BEiT and MAE fine-tune: the embeddings (class token,
// positions, patch projection) are layer 0, block i is layer i+1, the final
// norm and the head are layer depth+1, and layer l's scale is
// r^(depth+1−l) — 1 for the head, r for the last block, r^(depth+1) for the
// embeddings.
func LayerScales(params []*layers.Param, depth int, r float64) []float64 {
	scales := make([]float64, len(params))
	for i, p := range params {
		layer := depth + 1
		switch {
		case p.Name == "cls_token" || p.Name == "pos_embed" || strings.HasPrefix(p.Name, "patch_embed."):
			layer = 0
		case strings.HasPrefix(p.Name, "blocks."):
			b, _, _ := strings.Cut(strings.TrimPrefix(p.Name, "blocks."), ".")
			n, _ := strconv.Atoi(b)
			layer = n + 1
		}
		scales[i] = math.Pow(r, float64(depth+1-layer))
	}
	return scales
}

func checkData(c model.Config, d data.Source, split string) error {
	if d == nil || d.Len() == 0 {
		return errors.Errorf("train: the %s split is empty", split)
	}
	if ch, h, w := d.Shape(); ch != c.Channels || h != c.ImageSize || w != c.ImageSize {
		return errors.Errorf("train: %s images are %d×%d×%d (C×H×W), the model takes %d×%d×%d", split, ch, h, w, c.Channels, c.ImageSize, c.ImageSize)
	}
	if n := len(d.ClassNames()); n != c.NumClasses {
		return errors.Errorf("train: the %s split has %d classes, the model has %d outputs", split, n, c.NumClasses)
	}
	return nil
}

// shareBuffers lets ops with disjoint lifetimes share output buffers
// (ops.ShareBuffers) in the training and evaluation graphs; tests turn it
// off to compare.
var shareBuffers = true

// buildTrainGraph builds images → logits → smoothed cross-entropy, its
// gradient (one Grad for the graph's life) and the tape machine; the
// model's weights come from the file from, if not nil.
func (r *Run) buildTrainGraph(from *model.File) error {
	c := r.Config
	mc := c.Model
	r.g = G.NewGraph()
	var m *model.ViT
	var err error
	if from != nil {
		m, err = from.NewModel(r.g, model.WithSeed(c.Seed))
	} else {
		m, err = model.New(r.g, mc, model.WithSeed(c.Seed))
	}
	if err != nil {
		return err
	}
	r.Model = m
	if r.Trainable, err = trainable(m, c); err != nil {
		return err
	}
	r.ybuf = make([]float32, c.Batch*mc.NumClasses)
	r.labels = make([]int, c.Batch)
	if r.x, err = m.NewInput(c.Batch, "images"); err != nil {
		return err
	}
	r.xbuf = r.x.Value().Data().([]float32)
	r.y = G.NewTensor(r.g, tensor.Float32, 2, G.WithShape(c.Batch, mc.NumClasses), G.WithName("targets"),
		G.WithValue(tensor.New(tensor.WithShape(c.Batch, mc.NumClasses), tensor.WithBacking(r.ybuf))))
	if r.logits, err = m.Forward(r.x); err != nil {
		return err
	}
	if r.loss, err = ops.CrossEntropy(r.logits, r.y); err != nil {
		return err
	}
	if _, err := G.Grad(r.loss, r.trainableNodes()...); err != nil {
		return errors.Wrap(err, "train: gradient")
	}
	if shareBuffers {
		if r.Buffers.Train, err = ops.ShareBuffers(r.g, r.logits, r.loss); err != nil {
			return errors.Wrap(err, "train: training graph")
		}
	}
	r.vm = G.NewTapeMachine(r.g, G.BindDualValues(r.trainableNodes()...))
	return nil
}

// buildEvalGraph builds a forward-only graph over the same weights, with
// dropout off.
func (r *Run) buildEvalGraph() error {
	mc := r.Config.Model
	b := r.evalBatch()
	r.eg = G.NewGraph()
	opts := []model.Option{model.WithSeed(r.Config.Seed), model.SharingWeights(r.Model)}
	if r.Config.EMA > 0 {
		opts = opts[:1] // weights of its own: the moving average
	}
	m, err := model.New(r.eg, mc, opts...)
	if err != nil {
		return err
	}
	m.SetTraining(false)
	r.eModel = m
	if r.ex, err = m.NewInput(b, "images"); err != nil {
		return err
	}
	r.exbuf = r.ex.Value().Data().([]float32)
	if r.elogits, err = m.Forward(r.ex); err != nil {
		return err
	}
	if shareBuffers {
		if r.Buffers.Eval, err = ops.ShareBuffers(r.eg, r.elogits); err != nil {
			return errors.Wrap(err, "train: evaluation graph")
		}
	}
	r.evm = G.NewTapeMachine(r.eg)
	r.emaReset()
	return nil
}

func (r *Run) evalBatch() int {
	if r.Config.EvalBatch > 0 {
		return r.Config.EvalBatch
	}
	return min(r.Config.Batch, 32)
}

// Close releases the machines.
func (r *Run) Close() {
	r.waitAhead()
	r.vm.Close()
	r.evm.Close()
}

// StepsPerEpoch is the number of optimizer steps in one epoch.
func (r *Run) StepsPerEpoch() int { return r.stepsEpoch }

// TotalSteps is the number of optimizer steps of the whole run.
func (r *Run) TotalSteps() int { return r.stepsEpoch * r.Config.Epochs }

// Epoch is the 0-based epoch the next step belongs to.
func (r *Run) Epoch() int { return r.Step / r.stepsEpoch }

// Done reports whether every step has been taken.
func (r *Run) Done() bool { return r.Step >= r.TotalSteps() }

// LR is the learning rate of the next step.
func (r *Run) LR() float64 { return r.sched.At(r.Step) }

// order returns the training order of an epoch: a permutation that
// depends only on the seed and the epoch, drawn once per epoch.
func (r *Run) order(epoch int) []int {
	if r.perm == nil || r.permEpoch != epoch {
		r.perm = rand.New(rand.NewSource(r.Config.Seed*1_000_003 + int64(epoch) + 1)).Perm(r.train.Len())
		r.permEpoch = epoch
	}
	return r.perm
}

// aheadBatch is a step's batch prepared by a goroutine during the step
// before it.
type aheadBatch struct {
	step   int
	x      []float32
	labels []int
	y      []float32
	err    error
	done   chan struct{} // closed when x, labels, y and err are set
}

// waitAhead waits for a batch being read ahead (before an evaluation reads
// a source that may share the training data's, or when the run is closed);
// the batch stays for its step.
func (r *Run) waitAhead() {
	if b := r.ahead; b != nil {
		<-b.done
	}
}

// batchIndices are the training images of a step.
func (r *Run) batchIndices(step int) []int {
	b := r.Config.Batch
	in := step % r.stepsEpoch
	return r.order(step / r.stepsEpoch)[in*b : (in+1)*b]
}

// prepare reads the images idx of a step into x (normalised, augmented),
// their labels into labels and the soft targets into y (label smoothing,
// then Mixup or CutMix), all drawn from the step's own random source: the
// batch depends on the step alone, whenever and on whichever goroutine it
// is prepared. It touches nothing else of the run.
func (r *Run) prepare(step int, idx []int, x []float32, labels []int, y []float32) error {
	c := r.Config
	k := c.Model.NumClasses
	policy, ops, mag, _ := data.ParsePolicy(c.AutoAugment) // checked by Validate
	aug := &data.Augment{Pad: c.Pad, Flip: c.Flip, Policy: policy, Ops: ops, Magnitude: mag, Erase: c.Erase}
	rng := rand.New(rand.NewSource(c.Seed*7_919 + int64(step) + 1))
	if err := r.train.ReadBatch(x, labels, idx, r.Norm, aug, rng); err != nil {
		return errors.Wrapf(err, "train: step %d", step+1)
	}
	off, on := float32(c.Smoothing/float64(k)), float32(1-c.Smoothing+c.Smoothing/float64(k))
	for i, l := range labels {
		row := y[i*k : (i+1)*k]
		for j := range row {
			row[j] = off
		}
		row[l] = on
	}
	if mix := (data.Mix{Mixup: c.Mixup, CutMix: c.CutMix}); mix.On() {
		// Train accuracy is then counted against each image's own label.
		mix.Apply(x, y, c.Batch, c.Model.Channels, c.Model.ImageSize, c.Model.ImageSize, k, rng)
	}
	return nil
}

// TrainStep takes one optimizer step on the next batch and returns its
// loss. A non-finite loss or gradient is an error naming the step, unless
// the config says to skip such steps.
func (r *Run) TrainStep() (float64, error) {
	if r.Done() {
		return 0, errors.New("train: the run is already complete")
	}
	start := time.Now()
	c := r.Config
	k := c.Model.NumClasses
	epoch := r.Epoch()
	// This step's batch: read ahead during the previous step, or now.
	if b := r.ahead; b != nil && b.step == r.Step {
		<-b.done
		r.ahead = nil
		if b.err != nil {
			return 0, b.err
		}
		copy(r.xbuf, b.x)
		copy(r.labels, b.labels)
		copy(r.ybuf, b.y)
		r.spare = b
	} else {
		if b != nil { // read ahead for another step: not used
			<-b.done
			r.ahead, r.spare = nil, b
		}
		if err := r.prepare(r.Step, r.batchIndices(r.Step), r.xbuf, r.labels, r.ybuf); err != nil {
			return 0, err
		}
	}
	// The next step's batch is read, augmented and mixed while this one runs.
	if next := r.Step + 1; next < r.TotalSteps() {
		b := r.spare
		if b == nil {
			b = &aheadBatch{x: make([]float32, len(r.xbuf)), labels: make([]int, len(r.labels)), y: make([]float32, len(r.ybuf))}
		}
		r.spare = nil
		b.step, b.err, b.done = next, nil, make(chan struct{})
		idx := r.batchIndices(next)
		r.ahead = b
		go func() {
			defer close(b.done)
			b.err = r.prepare(next, idx, b.x, b.labels, b.y)
		}()
	}
	r.Model.SetNoiseStep(uint64(r.Step))
	r.vm.Reset()
	if err := r.vm.RunAll(); err != nil {
		return 0, errors.Wrapf(err, "train: step %d", r.Step+1)
	}
	loss := float64(r.loss.Value().Data().(float32))
	vgs := G.NodesToValueGrads(r.trainableNodes())
	norm, err := optim.GlobalNorm(vgs)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) || math.IsNaN(norm) || math.IsInf(norm, 0) {
		if !c.SkipNaN {
			return loss, &NonFiniteError{Step: r.Step + 1, Epoch: epoch + 1, Loss: loss, GradNorm: norm}
		}
		if err := zeroGrads(r.trainableNodes()); err != nil {
			return 0, err
		}
		r.partial.Skipped++
		r.Step++
		return loss, nil
	}
	if c.ClipNorm > 0 {
		if _, err := optim.ClipGlobalNorm(vgs, c.ClipNorm); err != nil {
			return 0, err
		}
	}
	r.opt.SetLearnRate(r.sched.At(r.Step))
	if err := r.opt.Step(vgs); err != nil {
		return 0, err
	}
	r.partial.SumLoss += loss * float64(c.Batch)
	r.partial.Correct += countCorrect(r.logits.Value().Data().([]float32), r.labels, k)
	r.partial.Seen += c.Batch
	r.partial.Seconds += time.Since(start).Seconds()
	r.Step++
	if c.EMA > 0 {
		r.emaUpdate(r.Step)
	}
	r.lastLoss = loss
	return loss, nil
}

// trainableNodes are the nodes of Trainable.
func (r *Run) trainableNodes() G.Nodes {
	ns := make(G.Nodes, len(r.Trainable))
	for i, p := range r.Trainable {
		ns[i] = p.Node
	}
	return ns
}

// NonFiniteError reports a loss or gradient that became NaN or infinite.
type NonFiniteError struct {
	Step, Epoch    int
	Loss, GradNorm float64
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("train: loss %v, gradient norm %v at step %d (epoch %d): the run diverged; lower the learning rate, or skip such steps", e.Loss, e.GradNorm, e.Step, e.Epoch)
}

func zeroGrads(ns G.Nodes) error {
	for _, n := range ns {
		gv, err := n.Grad()
		if err != nil {
			return errors.Wrapf(err, "train: gradient of %s", n.Name())
		}
		if d, ok := gv.(*tensor.Dense); ok {
			d.Zero()
		}
	}
	return nil
}

// countCorrect counts rows whose arg-max is the label.
func countCorrect(logits []float32, labels []int, k int) int {
	n := 0
	for i, l := range labels {
		if model.Argmax(logits[i*k:(i+1)*k]) == l {
			n++
		}
	}
	return n
}

// Evaluate returns the mean cross-entropy (without smoothing) and the
// accuracy on the test split, with dropout off.
func (r *Run) Evaluate() (loss, acc float64, err error) {
	ev, err := r.EvaluateOn(r.test)
	if err != nil {
		return 0, 0, err
	}
	return ev.Loss, ev.Accuracy, nil
}

// EvaluateOn evaluates on any dataset of the model's shape: loss,
// accuracy, per-class accuracy and confusion matrix.
func (r *Run) EvaluateOn(d data.Source) (*model.Evaluation, error) {
	b := r.evalBatch()
	k := r.Config.Model.NumClasses
	labels := make([]int, b)
	idx := make([]int, b)
	ev := model.NewEvaluation(r.Classes)
	for start := 0; start < d.Len(); start += b {
		n := min(b, d.Len()-start)
		for i := range idx {
			idx[i] = start + i%n // a short last batch repeats its images; only the first n count
		}
		if err := d.ReadBatch(r.exbuf, labels, idx, r.Norm, nil, nil); err != nil {
			return nil, errors.Wrap(err, "train: evaluation")
		}
		r.evm.Reset()
		if err := r.evm.RunAll(); err != nil {
			return nil, errors.Wrap(err, "train: evaluation")
		}
		z := r.elogits.Value().Data().([]float32)
		for i := 0; i < n; i++ {
			if err := ev.Add(z[i*k:(i+1)*k], labels[i]); err != nil {
				return nil, errors.Wrap(err, "train")
			}
		}
	}
	ev.Finish()
	return ev, nil
}

// EndEpoch evaluates and returns the figures of the epoch that the last
// step completed, and resets the running figures.
func (r *Run) EndEpoch() (Metrics, error) {
	start := time.Now()
	r.waitAhead() // the next batch may read the source the evaluation reads
	tl, ta, err := r.Evaluate()
	if err != nil {
		return Metrics{}, err
	}
	p := r.partial
	m := Metrics{
		Epoch: r.Step / r.stepsEpoch, Step: r.Step, TestLoss: tl, TestAcc: ta, LR: r.sched.At(r.Step - 1),
		Skipped: p.Skipped,
	}
	if r.val != nil {
		ev, err := r.EvaluateOn(r.val)
		if err != nil {
			return Metrics{}, errors.Wrap(err, "validation")
		}
		m.ValLoss, m.ValAcc, m.HasVal = ev.Loss, ev.Accuracy, true
	}
	m.Seconds = p.Seconds + time.Since(start).Seconds()
	if p.Seen > 0 {
		m.TrainLoss, m.TrainAcc = p.SumLoss/float64(p.Seen), float64(p.Correct)/float64(p.Seen)
		m.ImagesPerS = float64(p.Seen) / p.Seconds
	}
	r.partial = partialEpoch{}
	return m, nil
}

// Hooks observe a Fit.
type Hooks struct {
	Step  func(r *Run, loss float64)    // after every step
	Epoch func(r *Run, m Metrics) error // after every epoch's evaluation
	Save  func(r *Run, best bool) error // when a checkpoint is due: after every epoch (best = a new best validation accuracy; never without validation data), every SaveEvery, and on cancellation
	// SaveEvery, if positive, also calls Save (best = false) after the first
	// step that ends at least this long after the previous save, so that a
	// killed run loses at most this much work.
	SaveEvery time.Duration
}

// Fit trains until the run is done or ctx is cancelled; on cancellation
// it calls hooks.Save and returns ctx.Err().
func (r *Run) Fit(ctx context.Context, h Hooks) error {
	lastSave := time.Now()
	for !r.Done() {
		if err := ctx.Err(); err != nil {
			if h.Save != nil {
				if serr := h.Save(r, false); serr != nil {
					return serr
				}
			}
			return err
		}
		loss, err := r.TrainStep()
		if err != nil {
			return err
		}
		if h.Step != nil {
			h.Step(r, loss)
		}
		if r.Step%r.stepsEpoch != 0 {
			if h.SaveEvery > 0 && h.Save != nil && time.Since(lastSave) >= h.SaveEvery {
				if err := h.Save(r, false); err != nil {
					return err
				}
				lastSave = time.Now()
			}
			continue
		}
		m, err := r.EndEpoch()
		if err != nil {
			return err
		}
		// The best checkpoint is chosen on validation data only.
		best := m.HasVal && (r.BestEpoch == 0 || m.ValAcc > r.BestAcc)
		if best {
			r.BestAcc, r.BestEpoch, r.BestTestAcc = m.ValAcc, m.Epoch, m.TestAcc
		}
		if h.Epoch != nil {
			if err := h.Epoch(r, m); err != nil {
				return err
			}
		}
		if h.Save != nil {
			if err := h.Save(r, best); err != nil {
				return err
			}
			lastSave = time.Now()
		}
	}
	return nil
}
