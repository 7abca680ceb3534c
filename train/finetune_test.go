package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/preprocess"
	"github.com/vitgo/vit/model/vittest"
	"github.com/vitgo/vit/train/data"
)

// pretrainedFile saves a model of cfg with random weights (seed 5) and
// reads it back as a pretrained file.
func pretrainedFile(t *testing.T, cfg model.Config) *model.File {
	t.Helper()
	m, err := model.New(G.NewGraph(), cfg, model.WithSeed(5))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pre.safetensors")
	if err := m.SaveWeights(path); err != nil {
		t.Fatal(err)
	}
	f, err := model.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFineTuneFreezeBackbone: from weights of 1000 classes, a 10-class run
// gets a new head and every other tensor loaded; with the backbone frozen,
// training changes the head only and leaves every other tensor bit for bit
// as loaded, through a checkpoint and a resume too.
func TestFineTuneFreezeBackbone(t *testing.T) {
	tr, te := sample(t)
	d, dt := subset(tr, 64), subset(te, 16)
	big := tinyModel
	big.NumClasses = 1000
	pre := pretrainedFile(t, big)
	cfg := Config{Model: tinyModel, Epochs: 2, Batch: 16, LR: 1e-2, Seed: 3, Freeze: FreezeBackbone}
	r, notes, err := FineTune(cfg, d, dt, data.ComputeNormalization(d), pre)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(notes) != 1 || !strings.Contains(notes[0], "1000 classes, the model 10: a new head") {
		t.Errorf("notes %q, expected one about the new head", notes)
	}
	if len(r.Trainable) != 2 || r.Trainable[0].Name != "head.weight" || r.Trainable[1].Name != "head.bias" {
		t.Fatalf("trainable %d parameters, expected the head's two", len(r.Trainable))
	}
	loaded := map[string][]float32{}
	for _, p := range r.Model.Params() {
		v := p.Node.Value().Data().([]float32)
		loaded[p.Name] = slices.Clone(v)
		if src, ok := pre.Tensors[p.Name]; ok && !strings.HasPrefix(p.Name, "head.") {
			for i, x := range src.Data {
				if v[i] != float32(x) {
					t.Fatalf("%s[%d] = %v, the weights hold %v", p.Name, i, v[i], x)
				}
			}
		}
	}
	for step := 0; step < r.StepsPerEpoch(); step++ {
		if _, err := r.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "ft.safetensors")
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	r2, err := Resume(path, d, dt, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := r2.Fit(context.Background(), Hooks{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range r2.Model.Params() {
		got := p.Node.Value().Data().([]float32)
		changed := !slices.Equal(got, loaded[p.Name])
		if strings.HasPrefix(p.Name, "head.") != changed {
			t.Errorf("%s: changed %v after training with the backbone frozen", p.Name, changed)
		}
	}
}

// TestLayerDecay: each parameter's learning rate is the base rate times
// R^(depth+1−layer), embeddings layer 0, block i layer i+1, norm and head
// layer depth+1; the run's optimizer uses these scales.
func TestLayerDecay(t *testing.T) {
	tr, te := sample(t)
	d := subset(tr, 32)
	cfg := Config{Model: tinyModel, Epochs: 1, Batch: 16, LR: 1e-3, LayerDecay: 0.5}
	r, _, err := FineTune(cfg, d, subset(te, 8), data.ComputeNormalization(d), pretrainedFile(t, tinyModel))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := map[string]float64{"cls_token": 0.125, "pos_embed": 0.125, "patch_embed.proj.weight": 0.125,
		"blocks.0.attn.qkv.weight": 0.25, "blocks.0.norm1.bias": 0.25, "blocks.1.mlp.fc2.bias": 0.5, "norm.weight": 1, "head.bias": 1}
	scales := r.opt.LRScales()
	if len(scales) != len(r.Trainable) {
		t.Fatalf("%d scales for %d parameters", len(scales), len(r.Trainable))
	}
	seen := 0
	for i, p := range r.Trainable {
		if w, ok := want[p.Name]; ok {
			seen++
			if math.Abs(scales[i]-w) > 1e-15 {
				t.Errorf("%s: learning-rate scale %v, expected %v", p.Name, scales[i], w)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("checked %d of %d parameters", seen, len(want))
	}
	if _, err := New(Config{Model: tinyModel, Epochs: 1, Batch: 16, LR: 1e-3, LayerDecay: 1.5}, d, d, data.ComputeNormalization(d)); err == nil || !strings.Contains(err.Error(), "layer decay") {
		t.Errorf("layer decay 1.5: %v", err)
	}
}

// TestLazyFolderSameRun: a run on an image folder read lazily (files
// decoded batch by batch, ahead of the step) ends with the weights, bit for
// bit, of a run on the same folder held in memory.
func TestLazyFolderSameRun(t *testing.T) {
	dir := t.TempDir()
	for _, split := range []string{"train", "test"} {
		for c, class := range []string{"a", "b", "c"} {
			for i := 0; i < 12; i++ {
				img := vittest.RandRGB(int64(100*c+i), 20+i, 16+c, 2)
				vittest.WriteFile(t, dir, fmt.Sprintf("%s/%s/%02d.png", split, class, i), vittest.PNG(t, img))
			}
		}
	}
	opt := data.Options{ImageSize: 16, Channels: 3}
	memTrain, memTest, _, err := data.Load(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	lazyTrain, _, err := data.OpenFolder(dir, opt, 2)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := lazyTrain.Normalization()
	if err != nil {
		t.Fatal(err)
	}
	want := data.ComputeNormalization(memTrain)
	for c := range norm.Mean {
		if math.Abs(float64(norm.Mean[c]-want.Mean[c])) > 1e-6 || math.Abs(float64(norm.Std[c]-want.Std[c])) > 1e-6 {
			t.Errorf("channel %d: lazy normalisation %v/%v, in memory %v/%v", c, norm.Mean[c], norm.Std[c], want.Mean[c], want.Std[c])
		}
	}
	cfg := Config{Model: model.Config{ImageSize: 16, PatchSize: 8, Channels: 3, Dim: 16, Depth: 1, Heads: 2, MLPDim: 16, NumClasses: 3},
		Epochs: 3, Batch: 8, LR: 3e-3, Seed: 4, Pad: 2, Flip: true}
	final := func(tr, te data.Source) ([]float32, float64) {
		r, err := New(cfg, tr, te, want)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, acc := fitAndEvaluate(t, r, te)
		return weights(r), acc
	}
	wm, am := final(memTrain, memTest)
	// No cache, a cache of 10 images, every image cached.
	for _, cache := range []int64{0, 10 * 3 * 16 * 16 * 4, data.DefaultCacheBytes} {
		lazyTrain, lazyTest, err := data.OpenFolder(dir, opt, 2)
		if err != nil {
			t.Fatal(err)
		}
		lazyTrain.CacheBytes, lazyTest.CacheBytes = cache, cache
		wl, al := final(lazyTrain, lazyTest)
		if !slices.Equal(wm, wl) || am != al {
			t.Errorf("cache of %d bytes: the lazy run differs from the in-memory one (test accuracy %v vs %v)", cache, al, am)
		}
	}
}

// TestFineTuneNewHeadForOtherClasses: weights of as many classes as the
// data but other class names get a new head; the same names keep it.
func TestFineTuneNewHeadForOtherClasses(t *testing.T) {
	tr, te := sample(t)
	d := subset(tr, 32)
	for _, c := range []struct {
		names   []string
		newHead bool
	}{{d.Classes, false}, {[]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, true}} {
		m, err := model.New(G.NewGraph(), tinyModel, model.WithSeed(5))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "pre.safetensors")
		names, _ := json.Marshal(c.names)
		if err := m.SaveCheckpoint(path, nil, map[string]string{model.MetaClasses: string(names)}); err != nil {
			t.Fatal(err)
		}
		pre, err := model.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		r, notes, err := FineTune(Config{Model: tinyModel, Epochs: 1, Batch: 16, LR: 1e-3}, d, subset(te, 8), data.ComputeNormalization(d), pre)
		if err != nil {
			t.Fatal(err)
		}
		head := r.Model.Head.Weight.Value().Data().([]float32)
		loaded := head[0] == float32(pre.Tensors["head.weight"].Data[0])
		r.Close()
		if loaded == c.newHead || (len(notes) == 1) != c.newHead {
			t.Errorf("classes %q: head loaded %v, notes %q; expected a new head: %v", c.names, loaded, notes, c.newHead)
		}
	}
}

// TestFreezePrefixes: Config.Freeze names the parameters to freeze by
// prefix; a prefix that names none is an error.
func TestFreezePrefixes(t *testing.T) {
	tr, te := sample(t)
	d := subset(tr, 32)
	cfg := Config{Model: tinyModel, Epochs: 1, Batch: 16, LR: 1e-3, Freeze: "patch_embed.,blocks.0.,cls_token"}
	r, err := New(cfg, d, subset(te, 8), data.ComputeNormalization(d))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, p := range r.Trainable {
		if strings.HasPrefix(p.Name, "patch_embed.") || strings.HasPrefix(p.Name, "blocks.0.") || p.Name == "cls_token" {
			t.Errorf("%s is trained, expected it frozen", p.Name)
		}
	}
	if len(r.Trainable) != len(r.Model.Params())-3-12 {
		t.Errorf("%d of %d parameters trained, expected all but 15", len(r.Trainable), len(r.Model.Params()))
	}
	for _, bad := range []string{"blocks.9.", "head.,patch_embed.,cls_token,pos_embed,blocks.,norm."} {
		cfg.Freeze = bad
		if _, err := New(cfg, d, d, data.ComputeNormalization(d)); err == nil {
			t.Errorf("freeze %q accepted", bad)
		}
	}
}

// TestLazyFolderBadFile: a file that breaks after the folder was opened is
// an error naming it and the step, not a panic.
func TestLazyFolderBadFile(t *testing.T) {
	dir := t.TempDir()
	var victim string
	for _, split := range []string{"train", "test"} {
		for c, class := range []string{"a", "b"} {
			for i := 0; i < 8; i++ {
				p := vittest.WriteFile(t, dir, fmt.Sprintf("%s/%s/%d.png", split, class, i), vittest.PNG(t, vittest.RandRGB(int64(c*10+i), 16, 16, 1)))
				if split == "train" && c == 1 && i == 3 {
					victim = p
				}
			}
		}
	}
	tr, te, err := data.OpenFolder(dir, data.Options{ImageSize: 16}, 2)
	if err != nil {
		t.Fatal(err)
	}
	tr.CacheBytes = 0
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victim, b[:len(b)/2], 0o644); err != nil { // the header stays, the pixels go
		t.Fatal(err)
	}
	cfg := Config{Model: model.Config{ImageSize: 16, PatchSize: 8, Channels: 3, Dim: 16, Depth: 1, Heads: 2, MLPDim: 16, NumClasses: 2}, Epochs: 1, Batch: 16, LR: 1e-3}
	r, err := New(cfg, tr, te, preprocess.Identity(3))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.TrainStep()
	if err == nil || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), "step 1") {
		t.Errorf("a truncated file: %v, expected an error naming it and the step", err)
	}
}
