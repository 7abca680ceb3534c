package train

import (
	"encoding/json"
	"strconv"

	"github.com/pkg/errors"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/train/data"
	"github.com/vitgo/vit/train/optim"
)

// Metadata keys of a checkpoint. "classes" and "normalization" are what an
// inference program needs besides the model config; the rest is training
// state.
const (
	MetaClasses = "classes"       // JSON list of class names
	MetaNorm    = "normalization" // JSON {"Mean": [...], "Std": [...]}
	metaTrain   = "train.config"
	metaStep    = "train.step"
	metaBest    = "train.best_acc"
	metaPartial = "train.partial"
	metaAdam    = "train.adam_step"
	tensorM     = model.ExtraPrefix + "adam.m."
	tensorV     = model.ExtraPrefix + "adam.v."
)

// Save writes the run's whole state (weights, config, optimizer moments,
// position, best accuracy, normalisation, class names) to one safetensors
// file, atomically. The file also loads as plain weights (model.Open).
func (r *Run) Save(path string) error {
	st := r.opt.State()
	tensors := make(map[string]model.Tensor, 2*len(st.M))
	for i, p := range r.Model.Params() {
		shape := p.Node.Shape().Clone()
		tensors[tensorM+p.Name] = model.Tensor{Shape: shape, Data: st.M[i]}
		tensors[tensorV+p.Name] = model.Tensor{Shape: shape, Data: st.V[i]}
	}
	meta := map[string]string{
		MetaClasses: mustJSON(r.Classes),
		MetaNorm:    mustJSON(r.Norm),
		metaTrain:   mustJSON(r.Config),
		metaStep:    strconv.Itoa(r.Step),
		metaBest:    strconv.FormatFloat(r.BestAcc, 'g', -1, 64),
		metaPartial: mustJSON(r.partial),
		metaAdam:    strconv.Itoa(st.Step),
	}
	return errors.Wrap(r.Model.SaveCheckpoint(path, tensors, meta), "train: save checkpoint")
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
	_, meta, err := model.ReadSafetensors(path)
	if err != nil {
		return Config{}, err
	}
	return configFromMeta(path, meta)
}

func configFromMeta(path string, meta map[string]string) (Config, error) {
	var c Config
	s, ok := meta[metaTrain]
	if !ok {
		return c, errors.Errorf("train: %s is not a training checkpoint (no %q metadata)", path, metaTrain)
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, errors.Wrapf(err, "train: %s: bad %q metadata", path, metaTrain)
	}
	return c, errors.Wrapf(c.Validate(), "train: %s", path)
}

// Resume rebuilds a run from a checkpoint written by Save and continues it
// on the same data; it ends with the weights an uninterrupted run would
// have. epochs, if positive, replaces the stored number of epochs (to train
// longer than planned; the schedule then changes).
func Resume(path string, trainSet, testSet *data.Dataset, epochs int) (*Run, error) {
	st, meta, err := model.ReadSafetensors(path)
	if err != nil {
		return nil, err
	}
	cfg, err := configFromMeta(path, meta)
	if err != nil {
		return nil, err
	}
	if epochs > 0 {
		cfg.Epochs = epochs
	}
	var norm data.Normalization
	if err := json.Unmarshal([]byte(meta[MetaNorm]), &norm); err != nil {
		return nil, errors.Wrapf(err, "train: %s: bad %q metadata", path, MetaNorm)
	}
	if err := model.CheckFits(cfg.Model, st); err != nil {
		return nil, errors.Wrapf(err, "train: resume %s", path)
	}
	r, err := New(cfg, trainSet, testSet, norm)
	if err != nil {
		return nil, errors.Wrapf(err, "train: resume %s", path)
	}
	if err := r.Model.LoadTensors(st); err != nil {
		r.Close()
		return nil, errors.Wrapf(err, "train: resume %s", path)
	}
	if err := r.restore(path, st, meta); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Run) restore(path string, st map[string]model.Tensor, meta map[string]string) error {
	bad := func(key string, err error) error {
		return errors.Wrapf(err, "train: %s: bad %q metadata", path, key)
	}
	var err error
	if r.Step, err = strconv.Atoi(meta[metaStep]); err != nil || r.Step < 0 || r.Step > r.TotalSteps() {
		return bad(metaStep, errors.Errorf("step %q is not in [0, %d]", meta[metaStep], r.TotalSteps()))
	}
	if r.BestAcc, err = strconv.ParseFloat(meta[metaBest], 64); err != nil {
		return bad(metaBest, err)
	}
	if err := json.Unmarshal([]byte(meta[metaPartial]), &r.partial); err != nil {
		return bad(metaPartial, err)
	}
	var classes []string
	if err := json.Unmarshal([]byte(meta[MetaClasses]), &classes); err != nil {
		return bad(MetaClasses, err)
	}
	if len(classes) != len(r.Classes) {
		return errors.Errorf("train: %s was trained on %d classes, the data has %d", path, len(classes), len(r.Classes))
	}
	var s optim.State
	if s.Step, err = strconv.Atoi(meta[metaAdam]); err != nil {
		return bad(metaAdam, err)
	}
	for _, p := range r.Model.Params() {
		m, okm := st[tensorM+p.Name]
		v, okv := st[tensorV+p.Name]
		if !okm || !okv {
			return errors.Errorf("train: %s has no optimizer state for %s", path, p.Name)
		}
		s.M = append(s.M, m.Data)
		s.V = append(s.V, v.Data)
	}
	return errors.Wrapf(r.opt.SetState(s), "train: %s", path)
}
