package train

import (
	"encoding/json"
	"strconv"

	"github.com/pkg/errors"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/train/data"
	"github.com/vitgo/vit/train/optim"
)

// Metadata keys of a checkpoint's training state, beside the model's own
// (model.MetaConfig, model.MetaClasses, model.MetaNormalization).
const (
	metaTrain   = "train.config"
	metaStep    = "train.step"
	metaBest    = "train.best_acc"
	metaBestAt  = "train.best" // {"epoch":…,"test_acc":…}: where BestAcc was reached
	metaPartial = "train.partial"
	metaAdam    = "train.adam_step"
	tensorM     = model.ExtraPrefix + "adam.m."
	tensorV     = model.ExtraPrefix + "adam.v."
)

// Save writes the run's whole state (weights, config, optimizer moments,
// position, best accuracy, normalisation, class names; with EMA both the
// average, as the main tensors, and the training weights) to one
// safetensors file, atomically. The file also loads as plain weights
// (model.Open): the trained ones, or the average with EMA (MetaWeights).
func (r *Run) Save(path string) error {
	st := r.opt.State()
	tensors := make(map[string]model.Tensor, 2*len(st.M))
	for i, p := range r.Trainable {
		shape := p.Node.Shape().Clone()
		tensors[tensorM+p.Name] = model.Tensor{Shape: shape, Data: st.M[i]}
		tensors[tensorV+p.Name] = model.Tensor{Shape: shape, Data: st.V[i]}
	}
	meta := map[string]string{
		model.MetaClasses:       mustJSON(r.Classes),
		model.MetaNormalization: mustJSON(r.Norm),
		metaTrain:               mustJSON(r.Config),
		metaStep:                strconv.Itoa(r.Step),
		metaBest:                strconv.FormatFloat(r.BestAcc, 'g', -1, 64),
		metaBestAt:              mustJSON(bestAt{r.BestEpoch, r.BestTestAcc}),
		metaPartial:             mustJSON(r.partial),
		metaAdam:                strconv.Itoa(st.Step),
		MetaWeights:             "trained",
	}
	if r.Config.EMA == 0 {
		return errors.Wrap(r.Model.SaveCheckpoint(path, tensors, meta), "train: save checkpoint")
	}
	// The average is what was evaluated: the main tensors; the training
	// weights go beside them for a resume.
	meta[MetaWeights] = "ema"
	meta[metaEMADecay] = strconv.FormatFloat(r.Config.EMA, 'g', -1, 64)
	for _, p := range r.Model.Params() {
		w := p.Node.Value().Data().([]float32)
		data := make([]float64, len(w))
		for i, v := range w {
			data[i] = float64(v)
		}
		tensors[tensorRaw+p.Name] = model.Tensor{Shape: p.Node.Shape().Clone(), Data: data}
	}
	return errors.Wrap(r.eModel.SaveCheckpoint(path, tensors, meta), "train: save checkpoint")
}

// bestAt is the metaBestAt metadata.
type bestAt struct {
	Epoch   int     `json:"epoch"`
	TestAcc float64 `json:"test_acc"`
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs, slices and strings are marshalled here
	}
	return string(b)
}

// ReadConfig returns the training config stored in a checkpoint.
func ReadConfig(path string) (Config, error) {
	f, err := model.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return configFromFile(f)
}

func configFromFile(f *model.File) (Config, error) {
	var c Config
	s, ok := f.Meta[metaTrain]
	if !ok {
		return c, errors.Errorf("train: %s is not a training checkpoint (no %q metadata)", f.Path, metaTrain)
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, errors.Wrapf(err, "train: %s: bad %q metadata", f.Path, metaTrain)
	}
	return c, errors.Wrapf(c.Validate(), "train: %s", f.Path)
}

// Resume rebuilds a run from a checkpoint written by Save and continues it
// on the same data; it ends with the weights an uninterrupted run would
// have. epochs, if positive, replaces the stored number of epochs (to train
// longer than planned; the schedule then changes).
func Resume(path string, trainSet, testSet data.Source, epochs int) (*Run, error) {
	f, err := model.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := configFromFile(f)
	if err != nil {
		return nil, err
	}
	if epochs > 0 {
		cfg.Epochs = epochs
	}
	if mc, err := f.Config(); err != nil || mc != cfg.Model {
		return nil, errors.Errorf("train: %s: the model config (%v, %v) is not the training config's (%v)", path, mc, err, cfg.Model)
	}
	norm, note, err := f.Normalization(cfg.Model.Channels)
	if err == nil && note != "" {
		err = errors.New(note)
	}
	if err != nil {
		return nil, errors.Wrap(err, "train: resume")
	}
	r, err := newRun(cfg, trainSet, testSet, norm, f)
	if err != nil {
		return nil, errors.Wrapf(err, "train: resume %s", path)
	}
	if err := r.restore(f); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Run) restore(f *model.File) error {
	bad := func(key string, err error) error {
		return errors.Wrapf(err, "train: %s: bad %q metadata", f.Path, key)
	}
	meta := f.Meta
	var err error
	if r.Step, err = strconv.Atoi(meta[metaStep]); err != nil || r.Step < 0 || r.Step > r.TotalSteps() {
		return bad(metaStep, errors.Errorf("step %q is not in [0, %d]", meta[metaStep], r.TotalSteps()))
	}
	if r.BestAcc, err = strconv.ParseFloat(meta[metaBest], 64); err != nil {
		return bad(metaBest, err)
	}
	if s, ok := meta[metaBestAt]; ok { // absent in checkpoints of earlier versions
		var b bestAt
		if err := json.Unmarshal([]byte(s), &b); err != nil {
			return bad(metaBestAt, err)
		}
		r.BestEpoch, r.BestTestAcc = b.Epoch, b.TestAcc
	}
	if err := json.Unmarshal([]byte(meta[metaPartial]), &r.partial); err != nil {
		return bad(metaPartial, err)
	}
	var classes []string
	if err := json.Unmarshal([]byte(meta[model.MetaClasses]), &classes); err != nil {
		return bad(model.MetaClasses, err)
	}
	if len(classes) != len(r.Classes) {
		return errors.Errorf("train: %s was trained on %d classes, the data has %d", f.Path, len(classes), len(r.Classes))
	}
	var s optim.State
	if s.Step, err = strconv.Atoi(meta[metaAdam]); err != nil {
		return bad(metaAdam, err)
	}
	for _, p := range r.Trainable {
		m, okm := f.Tensors[tensorM+p.Name]
		v, okv := f.Tensors[tensorV+p.Name]
		if !okm || !okv {
			return errors.Errorf("train: %s has no optimizer state for %s", f.Path, p.Name)
		}
		s.M = append(s.M, m.Data)
		s.V = append(s.V, v.Data)
	}
	if err := r.opt.SetState(s); err != nil {
		return errors.Wrapf(err, "train: %s", f.Path)
	}
	if r.Config.EMA > 0 {
		return r.restoreRaw(f)
	}
	return nil
}
