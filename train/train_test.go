package train

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/train/data"
)

// sample loads the shipped Fashion-MNIST sample once.
func sample(t *testing.T) (*data.Dataset, *data.Dataset) {
	t.Helper()
	tr, te, _, err := data.Load("../testdata/fashion-sample", data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tr, te
}

// subset returns the first n images of d.
func subset(d *data.Dataset, n int) *data.Dataset {
	s := *d
	s.N = n
	s.Images = d.Images[:n*d.C*d.H*d.W]
	s.Labels = d.Labels[:n]
	return &s
}

var tinyModel = model.Config{ImageSize: 32, PatchSize: 8, Channels: 3, Dim: 32, Depth: 2, Heads: 2, MLPDim: 64, NumClasses: 10}

func weights(r *Run) []float32 {
	var all []float32
	for _, n := range r.Model.Learnables() {
		all = append(all, n.Value().Data().([]float32)...)
	}
	return all
}

// TestOverfit: a tiny model learns 64 real images by heart.
func TestOverfit(t *testing.T) {
	tr, _ := sample(t)
	d := subset(tr, 64)
	cfg := Config{Model: tinyModel, Epochs: 100, Batch: 16, LR: 3e-3, MinLR: 1e-4, WarmupEpochs: 2, Seed: 1}
	r, err := New(cfg, d, d, data.ComputeNormalization(d))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	loss, acc := fitAndEvaluate(t, r, d)
	t.Logf("after %d steps: loss %.4f, accuracy %.3f", r.Step, loss, acc)
	if acc < 0.99 {
		t.Fatalf("train accuracy %.3f after %d steps, want ≥ 0.99", acc, r.Step)
	}
}

// recipe is a small run with every source of randomness switched on.
func recipe() Config {
	m := tinyModel
	m.Dropout, m.AttnDropout, m.DropPath = 0.1, 0.1, 0.1
	return Config{Model: m, Epochs: 3, Batch: 16, LR: 2e-3, MinLR: 1e-5, WeightDecay: 0.05, WarmupEpochs: 1,
		Smoothing: 0.1, ClipNorm: 1, Seed: 5, Pad: 2, Flip: true, Val: 16, EMA: 0.9,
		AutoAugment: "randaugment", Erase: 0.25, Mixup: 0.8, CutMix: 1}
}

// emaWeights are the evaluation model's weights (the average with EMA).
func emaWeights(r *Run) []float32 {
	var all []float32
	for _, n := range r.eModel.Learnables() {
		all = append(all, n.Value().Data().([]float32)...)
	}
	return all
}

// TestDeterministicAndResume: the same seed gives the same weights bit for
// bit, and a run stopped mid-epoch, saved and resumed ends with exactly the
// weights of a run that never stopped.
func TestDeterministicAndResume(t *testing.T) {
	tr, te := sample(t)
	d, dt := subset(tr, 96), subset(te, 40)
	norm := data.ComputeNormalization(d)
	full := func() *Run {
		r, err := New(recipe(), d, dt, norm)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Fit(context.Background(), Hooks{}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := full(), full()
	defer a.Close()
	defer b.Close()
	wa, wb := weights(a), weights(b)
	for i := range wa {
		if wa[i] != wb[i] {
			t.Fatalf("two runs with one seed differ at weight %d: %v vs %v", i, wa[i], wb[i])
		}
	}

	// Stop after 8 steps (mid-epoch 2), save, resume in a new Run.
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	ctx, cancel := context.WithCancel(context.Background())
	r, err := New(recipe(), d, dt, norm)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Fit(ctx, Hooks{
		Step: func(r *Run, _ float64) {
			if r.Step == 8 {
				cancel()
			}
		},
		Save: func(r *Run, best bool) error { return r.Save(path) },
	})
	r.Close()
	if !errors.Is(err, context.Canceled) || r.Step != 8 {
		t.Fatalf("stopped at step %d with %v, want step 8 and context.Canceled", r.Step, err)
	}
	res, err := Resume(path, d, dt, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if res.Step != 8 || res.Epoch() != 1 {
		t.Fatalf("resumed at step %d epoch %d, want step 8 in epoch index 1", res.Step, res.Epoch())
	}
	if err := res.Fit(context.Background(), Hooks{}); err != nil {
		t.Fatal(err)
	}
	wr := weights(res)
	for i := range wa {
		if wa[i] != wr[i] {
			t.Fatalf("resumed run differs from the uninterrupted one at weight %d: %v vs %v", i, wr[i], wa[i])
		}
	}
	ea, er := emaWeights(a), emaWeights(res)
	for i := range ea {
		if ea[i] != er[i] {
			t.Fatalf("resumed run's moving average differs from the uninterrupted one's at weight %d: %v vs %v", i, er[i], ea[i])
		}
	}
	if res.BestAcc != a.BestAcc || res.BestEpoch != a.BestEpoch || res.BestTestAcc != a.BestTestAcc {
		t.Errorf("best (val %v, epoch %d, test %v) after resume, (%v, %d, %v) uninterrupted",
			res.BestAcc, res.BestEpoch, res.BestTestAcc, a.BestAcc, a.BestEpoch, a.BestTestAcc)
	}
	if a.BestEpoch == 0 {
		t.Error("a run with validation images chose no best epoch")
	}
}

// TestBestByValidation: with held-out images every epoch reports
// validation figures and the best checkpoint is the one with the highest
// validation accuracy so far, whatever the test accuracy does; without
// them no checkpoint is ever called best and the metrics have no val_*.
func TestBestByValidation(t *testing.T) {
	tr, te := sample(t)
	d, dt := subset(tr, 96), subset(te, 40)
	norm := data.ComputeNormalization(d)
	for _, val := range []int{16, 0} {
		cfg := recipe()
		cfg.Val, cfg.Epochs = val, 4
		r, err := New(cfg, d, dt, norm)
		if err != nil {
			t.Fatal(err)
		}
		var ms []Metrics
		var bests []bool
		err = r.Fit(context.Background(), Hooks{
			Epoch: func(r *Run, m Metrics) error { ms = append(ms, m); return nil },
			Save:  func(r *Run, best bool) error { bests = append(bests, best); return nil },
		})
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 4 || len(bests) != 4 {
			t.Fatalf("val=%d: %d epochs' metrics and %d saves, want 4 each", val, len(ms), len(bests))
		}
		top := -1.0
		for i, m := range ms {
			js, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var back Metrics
			if err := json.Unmarshal(js, &back); err != nil {
				t.Fatal(err)
			}
			if back != m {
				t.Errorf("val=%d: metrics %+v came back from JSON as %+v", val, m, back)
			}
			if m.HasVal != (val > 0) || strings.Contains(string(js), "val_acc") != (val > 0) {
				t.Fatalf("val=%d: epoch %d has validation figures %v (JSON %s)", val, m.Epoch, m.HasVal, js)
			}
			want := val > 0 && m.ValAcc > top
			if bests[i] != want {
				t.Errorf("val=%d: epoch %d (val acc %v, best so far %v, test acc %v) saved as best=%v, want %v",
					val, m.Epoch, m.ValAcc, top, m.TestAcc, bests[i], want)
			}
			if val > 0 {
				top = math.Max(top, m.ValAcc)
			}
		}
		if val > 0 && (r.BestAcc != top || ms[r.BestEpoch-1].ValAcc != top || r.BestTestAcc != ms[r.BestEpoch-1].TestAcc) {
			t.Errorf("best: val %v at epoch %d with test %v; the metrics say val %v", r.BestAcc, r.BestEpoch, r.BestTestAcc, top)
		}
		if val == 0 && r.BestEpoch != 0 {
			t.Errorf("without validation data epoch %d was chosen", r.BestEpoch)
		}
	}
}

// TestCheckpointLoadsAsModel: one step, a checkpoint, and the file opens as
// a model equal to the trained one.
func TestCheckpointLoadsAsModel(t *testing.T) {
	tr, te := sample(t)
	d := subset(tr, 32)
	r, err := New(Config{Model: tinyModel, Epochs: 1, Batch: 32, LR: 1e-3}, d, subset(te, 8), data.ComputeNormalization(d))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.TrainStep(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "one.safetensors")
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	m, _, err := model.Open(G.NewGraph(), path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config != tinyModel {
		t.Fatalf("config %+v, want %+v", m.Config, tinyModel)
	}
	want := weights(r)
	var got []float32
	for _, n := range m.Learnables() {
		got = append(got, n.Value().Data().([]float32)...)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("weight %d: %v in the file, %v trained", i, got[i], want[i])
		}
	}
	c, err := ReadConfig(path)
	if err != nil || c.Batch != 32 {
		t.Fatalf("ReadConfig: %+v, %v", c, err)
	}
	// A missing checkpoint is fs.ErrNotExist, a damaged one model.ErrChecksum.
	missing := filepath.Join(t.TempDir(), "absent.safetensors")
	if _, err := Resume(missing, d, subset(te, 8), 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Resume of a missing file: %v is not fs.ErrNotExist", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1 // the last byte of the last tensor
	damaged := filepath.Join(t.TempDir(), "damaged.safetensors")
	if err := os.WriteFile(damaged, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Resume(damaged, d, subset(te, 8), 0); !errors.Is(err, model.ErrChecksum) {
		t.Errorf("Resume of a damaged file: %v is not model.ErrChecksum", err)
	}
}

// TestNonFinite: a diverging run stops with an error naming the step, or
// skips the step when told to.
func TestNonFinite(t *testing.T) {
	tr, te := sample(t)
	d := subset(tr, 32)
	for _, skip := range []bool{false, true} {
		cfg := Config{Model: tinyModel, Epochs: 1, Batch: 16, LR: 1e-3, SkipNaN: skip}
		r, err := New(cfg, d, subset(te, 8), data.ComputeNormalization(d))
		if err != nil {
			t.Fatal(err)
		}
		r.Model.Head.Bias.Value().Data().([]float32)[0] = float32(math.Inf(1))
		before := append([]float32(nil), r.Model.PosEmbed.Value().Data().([]float32)...)
		_, err = r.TrainStep()
		if !skip {
			var nf *NonFiniteError
			if !errors.As(err, &nf) || nf.Step != 1 || !strings.Contains(err.Error(), "step 1") {
				t.Errorf("want a NonFiniteError at step 1, got %v", err)
			}
		} else if err != nil || r.Step != 1 || r.partial.Skipped != 1 {
			t.Errorf("skip: err %v, step %d, skipped %d", err, r.Step, r.partial.Skipped)
		}
		for i, v := range r.Model.PosEmbed.Value().Data().([]float32) {
			if v != before[i] {
				t.Fatal("a non-finite step changed the weights")
			}
		}
		r.Close()
	}
}

func TestBadConfig(t *testing.T) {
	tr, te := sample(t)
	norm := data.ComputeNormalization(tr)
	good := Config{Model: tinyModel, Epochs: 1, Batch: 16, LR: 1e-3}
	cases := []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Epochs = 0 }, "epochs"},
		{func(c *Config) { c.Batch = -1 }, "batch"},
		{func(c *Config) { c.LR = 0 }, "learning rate"},
		{func(c *Config) { c.LR = math.NaN() }, "learning rate"},
		{func(c *Config) { c.MinLR = 1 }, "minimum learning rate"},
		{func(c *Config) { c.WarmupEpochs = 2 }, "warmup"},
		{func(c *Config) { c.Smoothing = 1 }, "smoothing"},
		{func(c *Config) { c.Pad = 40 }, "padding"},
		{func(c *Config) { c.Model.Channels = 1 }, "3×32×32"},
		{func(c *Config) { c.Model.NumClasses = 5 }, "10 classes"},
		{func(c *Config) { c.Batch = 100000 }, "fewer than one batch"},
	}
	for _, c := range cases {
		cfg := good
		c.edit(&cfg)
		_, err := New(cfg, tr, te, norm)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error mentioning %q", cfg, err, c.want)
		}
	}
}

// TestSharedBuffersChangeNothing: with buffer sharing (ops.ShareBuffers) a
// run ends with the same weights and evaluation, bit for bit, as without.
func TestSharedBuffersChangeNothing(t *testing.T) {
	tr, te := sample(t)
	d, dt := subset(tr, 64), subset(te, 40)
	norm := data.ComputeNormalization(d)
	run := func(share bool) ([]float32, float64, float64) {
		defer func(old bool) { shareBuffers = old }(shareBuffers)
		shareBuffers = share
		cfg := recipe()
		cfg.Epochs = 2
		r, err := New(cfg, d, dt, norm)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		loss, acc := fitAndEvaluate(t, r, dt)
		return weights(r), loss, acc
	}
	ws, ls, as := run(true)
	wn, ln, an := run(false)
	for i := range ws {
		if ws[i] != wn[i] {
			t.Fatalf("weight %d: %v with shared buffers, %v without", i, ws[i], wn[i])
		}
	}
	if ls != ln || as != an {
		t.Fatalf("evaluation: loss %v accuracy %v with shared buffers, %v %v without", ls, as, ln, an)
	}
}

// fitAndEvaluate runs r to the end and evaluates it on d.
func fitAndEvaluate(t *testing.T, r *Run, d data.Source) (loss, acc float64) {
	t.Helper()
	if err := r.Fit(context.Background(), Hooks{}); err != nil {
		t.Fatal(err)
	}
	ev, err := r.EvaluateOn(d)
	if err != nil {
		t.Fatal(err)
	}
	return ev.Loss, ev.Accuracy
}

// TestEMA: after each step the evaluation model holds d·ema + (1−d)·w with
// the warmed-up decay; a checkpoint's main tensors are the average
// (MetaWeights "ema"), its training weights ride along, and without EMA the
// evaluation model is the training model.
func TestEMA(t *testing.T) {
	tr, te := sample(t)
	d, dt := subset(tr, 96), subset(te, 40)
	norm := data.ComputeNormalization(d)
	cfg := recipe()
	r, err := New(cfg, d, dt, norm)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !slices.Equal(emaWeights(r), weights(r)) {
		t.Fatal("the average does not start at the initial weights")
	}
	for step := 1; step <= 3; step++ {
		before := emaWeights(r)
		if _, err := r.TrainStep(); err != nil {
			t.Fatal(err)
		}
		w := weights(r)
		dec := math.Min(cfg.EMA, float64(1+step)/float64(10+step))
		keep, take := float32(dec), float32(1-dec)
		got := emaWeights(r)
		for i := range got {
			if want := keep*before[i] + take*w[i]; got[i] != want {
				t.Fatalf("step %d, weight %d: average %v, want %v", step, i, got[i], want)
			}
		}
		if slices.Equal(got, w) {
			t.Fatalf("step %d: the average equals the trained weights", step)
		}
	}
	path := filepath.Join(t.TempDir(), "ema.safetensors")
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	f, err := model.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Meta[MetaWeights] != "ema" {
		t.Errorf("checkpoint says weights %q, want ema", f.Meta[MetaWeights])
	}
	m, _, err := model.Open(G.NewGraph(), path)
	if err != nil {
		t.Fatal(err)
	}
	var opened []float32
	for _, n := range m.Learnables() {
		opened = append(opened, n.Value().Data().([]float32)...)
	}
	if !slices.Equal(opened, emaWeights(r)) {
		t.Error("the checkpoint's weights are not the average")
	}

	cfg.EMA = 0
	plain, err := New(cfg, d, dt, norm)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.TrainStep(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(emaWeights(plain), weights(plain)) {
		t.Error("without EMA the evaluation model is not the trained one")
	}
	if err := plain.Save(path); err != nil {
		t.Fatal(err)
	}
	if f, err := model.ReadFile(path); err != nil || f.Meta[MetaWeights] != "trained" {
		t.Errorf("checkpoint without EMA says weights %q (%v), want trained", f.Meta[MetaWeights], err)
	}
}

// TestFixedPositions: with sin-cos positions the positional embedding is
// not trained: not among Trainable, and the same after a few steps.
func TestFixedPositions(t *testing.T) {
	tr, te := sample(t)
	d, dt := subset(tr, 64), subset(te, 16)
	cfg := recipe()
	cfg.Model.PosEmbed = model.PosSinCos
	r, err := New(cfg, d, dt, data.ComputeNormalization(d))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, p := range r.Trainable {
		if p.Name == "pos_embed" {
			t.Fatal("fixed positions are trained")
		}
	}
	if len(r.Trainable) != len(r.Model.Params())-1 {
		t.Fatalf("%d of %d parameters trained, want all but pos_embed", len(r.Trainable), len(r.Model.Params()))
	}
	before := slices.Clone(r.Model.PosEmbed.Value().Data().([]float32))
	for i := 0; i < 3; i++ {
		if _, err := r.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(before, r.Model.PosEmbed.Value().Data().([]float32)) {
		t.Error("the fixed positions changed in training")
	}
}
