package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vitgo/vit/model"
	"gorgonia.org/gorgonia"
)

// TestFlagErrors: command-line mistakes are one clear message and a
// non-zero status, never a panic.
func TestFlagErrors(t *testing.T) {
	dir := t.TempDir()
	classes3 := filepath.Join(dir, "three.txt")
	if err := os.WriteFile(classes3, []byte("a\nb\n\n c \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string // in stderr or in the returned error
	}{
		{[]string{"-no-such-flag"}, 2, "flag provided but not defined: -no-such-flag"},
		{[]string{"-epochs", "many"}, 2, `invalid value "many" for flag -epochs`},
		{[]string{"stray"}, 2, `unexpected argument "stray"`},
		{[]string{"-data", filepath.Join(dir, "nothing")}, 1, "nothing"},
		{[]string{"-preset", "Q/99", "-out", filepath.Join(dir, "a.safetensors")}, 2, `unknown preset "Q/99"`},
		{[]string{"-patch", "5", "-out", filepath.Join(dir, "a.safetensors")}, 2, "do not divide into 5×5 patches"},
		{[]string{"-lr", "-1", "-out", filepath.Join(dir, "a.safetensors")}, 2, "learning rate must be positive"},
		{[]string{"-heads", "3", "-out", filepath.Join(dir, "a.safetensors")}, 2, "Dim 64 is not divisible by Config.Heads 3"},
		{[]string{"-classes", filepath.Join(dir, "none.txt")}, 1, "-classes: data: reading class names"},
		{[]string{"-classes", classes3, "-out", filepath.Join(dir, "a.safetensors")}, 1, "found 3 non-blank lines, expected 10"},
		{[]string{"-resume", filepath.Join(dir, "missing.safetensors"), "-out", filepath.Join(dir, "a.safetensors")}, 1, "missing.safetensors"},
		{[]string{"-lazy", "maybe"}, 1, `-lazy "maybe"`},
		{[]string{"-lazy", "on"}, 1, "-lazy on reads image folders"},
		{[]string{"-labels", "0,x"}, 1, "-labels"},
		{[]string{"-labels", "0,10"}, 1, "label 10, expected 0..9"},
		{[]string{"-stem", "resnet", "-out", filepath.Join(dir, "a.safetensors")}, 2, `Config.Stem must be "patch" or "conv", got "resnet"`},
		{[]string{"-stem", "conv", "-patch", "1", "-out", filepath.Join(dir, "a.safetensors")}, 2, "conv stem needs Config.PatchSize a power of 2"},
		{[]string{"-val", "-5", "-out", filepath.Join(dir, "a.safetensors")}, 2, "validation images must not be negative, got -5"},
		{[]string{"-val", "99999", "-out", filepath.Join(dir, "a.safetensors")}, 2, "validation split of 99999 images, expected 1.."},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		args := append([]string{"-data", "../../testdata/fashion-sample"}, c.args...)
		code, err := run(args, &out, &errb)
		msg := errb.String()
		if err != nil {
			msg += err.Error()
		}
		if code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("%v: exit %d, message %q; want exit %d and %q", c.args, code, msg, c.code, c.want)
		}
	}
}

// TestTrainAndResume runs the command end to end on a slice of the sample:
// a checkpoint and a metrics line appear, and -resume refuses flags that
// contradict the checkpoint but extends the epochs.
func TestTrainAndResume(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "vit.safetensors")
	base := []string{"-data", "../../testdata/fashion-sample", "-out", out}
	small := append(base, "-classes", "../../testdata/fashion-mnist/classes.txt", "-epochs", "1", "-dim", "16", "-depth", "1", "-heads", "2", "-mlp-dim", "16", "-batch", "250", "-val", "500")
	var so, se bytes.Buffer
	if code, err := run(small, &so, &se); code != 0 || err != nil {
		t.Fatalf("exit %d, %v\n%s%s", code, err, so.String(), se.String())
	}
	for _, want := range []string{"model: ViT image 32×32×3, patch 8", "epoch 1: train loss", "| val loss", "test accuracy", "best by validation: epoch 1"} {
		if !strings.Contains(so.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, so.String())
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "vit.metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(b), &m); err != nil {
		t.Fatalf("metrics line %q: %v", b, err)
	}
	for _, k := range []string{"epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "images_per_s", "seconds"} {
		if _, ok := m[k]; !ok {
			t.Errorf("metrics lack %q: %v", k, m)
		}
	}
	if ck, err := os.ReadFile(out); err != nil || !bytes.Contains(ck, []byte("Ankle boot")) {
		t.Errorf("the checkpoint lacks the -classes names (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "vit.best.safetensors")); err != nil {
		t.Errorf("no best checkpoint: %v", err)
	}

	so.Reset()
	se.Reset()
	code, err := run(append(base, "-resume", out, "-dim", "32"), &so, &se)
	if code != 2 || err == nil || !strings.Contains(err.Error(), "drop -dim") {
		t.Errorf("resume with a contradicting flag: exit %d, %v", code, err)
	}
	so.Reset()
	code, err = run(append(base, "-resume", out, "-epochs", "2"), &so, &se)
	if code != 0 || err != nil || !strings.Contains(so.String(), "resumed") || !strings.Contains(so.String(), "epoch 2:") {
		t.Errorf("resume for a second epoch: exit %d, %v\n%s", code, err, so.String())
	}

	// Without -out, a resumed run goes on writing the file it resumed from
	// (and its metrics file), not the default checkpoint.
	so.Reset()
	sample, err := filepath.Abs("../../testdata/fashion-sample")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	code, err = run([]string{"-data", sample, "-resume", out, "-epochs", "3"}, &so, &se)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || !strings.Contains(so.String(), "checkpoint: "+out) {
		t.Errorf("resume without -out: exit %d, output:\n%s", code, so.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoints")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("resume without -out wrote the default checkpoints/ directory (%v)", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "vit.metrics.jsonl")); err != nil || !bytes.Contains(b, []byte(`"epoch":3`)) {
		t.Errorf("resume without -out: metrics file lacks epoch 3 (%v):\n%s", err, b)
	}
}

// TestNoFlagsOutsideRepo: the no-flag run away from the repository's root
// says how to point at data instead of only that a directory is missing.
func TestNoFlagsOutsideRepo(t *testing.T) {
	t.Chdir(t.TempDir())
	var so, se bytes.Buffer
	code, err := run(nil, &so, &se)
	if code != 1 || err == nil || !strings.Contains(err.Error(), "run from the repository's root, or pass -data DIR") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("exit %d, error %v; want 1 and a hint to pass -data", code, err)
	}
}

// TestPretrained: a 1000-class checkpoint fine-tunes into a 10-class model
// with no flag but -pretrained (and the data): a new head, the rest
// loaded, the weights' normalisation; -freeze needs -pretrained.
func TestPretrained(t *testing.T) {
	dir := t.TempDir()
	pre := filepath.Join(dir, "pre.safetensors")
	cfg := model.Config{ImageSize: 32, PatchSize: 8, Channels: 3, Dim: 16, Depth: 1, Heads: 2, MLPDim: 16, NumClasses: 1000}
	m, err := model.New(gorgonia.NewGraph(), cfg, model.WithSeed(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SaveWeights(pre); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "ft.safetensors")
	var so, se bytes.Buffer
	code, err := run([]string{"-data", "../../testdata/fashion-sample", "-pretrained", pre, "-out", out, "-epochs", "1", "-batch", "250"}, &so, &se)
	if code != 0 || err != nil {
		t.Fatalf("exit %d, %v\n%s%s", code, err, so.String(), se.String())
	}
	if !strings.Contains(so.String(), "1000 classes, the model 10: a new head") {
		t.Errorf("the run does not say that the head is new:\n%s", so.String())
	}
	ft, err := model.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ft.Config()
	want := cfg
	want.NumClasses, want.Init = 10, model.InitTimm // -init's default: the scheme of the new head
	if err != nil || got != want {
		t.Errorf("fine-tuned config %+v (%v), expected %+v", got, err, want)
	}
	// Weights of patch 7 on the sample's 32×32 images: converted to 28×28.
	cfg7 := model.Config{ImageSize: 28, PatchSize: 7, Channels: 1, Dim: 16, Depth: 1, Heads: 2, MLPDim: 16, NumClasses: 10}
	m7, err := model.New(gorgonia.NewGraph(), cfg7)
	if err != nil {
		t.Fatal(err)
	}
	pre7 := filepath.Join(dir, "pre7.safetensors")
	if err := m7.SaveWeights(pre7); err != nil {
		t.Fatal(err)
	}
	so.Reset()
	code, err = run([]string{"-data", "../../testdata/fashion-sample", "-pretrained", pre7, "-out", out, "-epochs", "1", "-batch", "250"}, &so, &se)
	if code != 0 || err != nil || !strings.Contains(so.String(), "converted to the weights' 1 channels at 28×28") {
		t.Errorf("weights of 1×28×28, patch 7, on 3×32×32 images: exit %d, %v\n%s", code, err, so.String())
	}
	code, err = run([]string{"-data", "../../testdata/fashion-sample", "-freeze", "backbone", "-out", out}, &so, &se)
	if code != 2 || err == nil || !strings.Contains(err.Error(), "add -pretrained") {
		t.Errorf("-freeze without -pretrained: exit %d, %v", code, err)
	}
	code, err = run([]string{"-data", "../../testdata/fashion-sample", "-pretrained", pre, "-dim", "32", "-out", out}, &so, &se)
	if code != 2 || err == nil || !strings.Contains(err.Error(), "drop -dim") {
		t.Errorf("-pretrained with -dim: exit %d, %v", code, err)
	}
}

// TestFineTuneFromPyTorch: weights trained from scratch in PyTorch with
// docs/pytorch/ddp_train.py (testdata/ddp/scratch.safetensors: conv stem,
// sin-cos positions) fine-tune here with -pretrained and nothing else: the
// same architecture, the same head (same class names), and the run starts
// from the script's test accuracy, not from chance.
func TestFineTuneFromPyTorch(t *testing.T) {
	pre := "../../testdata/ddp/scratch.safetensors"
	out := filepath.Join(t.TempDir(), "ft.safetensors")
	var so, se bytes.Buffer
	code, err := run([]string{"-data", "../../testdata/fashion-sample", "-pretrained", pre, "-out", out, "-epochs", "1", "-batch", "100", "-lr", "1e-4"}, &so, &se)
	if code != 0 || err != nil {
		t.Fatalf("exit %d, %v\n%s%s", code, err, so.String(), se.String())
	}
	if strings.Contains(so.String(), "new head") {
		t.Errorf("a new head for weights of the same classes:\n%s", so.String())
	}
	src, err := model.ReadFile(pre)
	if err != nil {
		t.Fatal(err)
	}
	ft, err := model.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	a, err := src.Config()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ft.Config()
	if err != nil {
		t.Fatal(err)
	}
	a.Init, b.Init = "", "" // how the weights were first drawn, not the architecture
	if a != b {
		t.Errorf("fine-tuned config %+v, PyTorch's %+v", b, a)
	}
	m := regexp.MustCompile(`final model: test accuracy ([0-9.]+)%`).FindStringSubmatch(so.String())
	if m == nil {
		t.Fatalf("no final test accuracy in the output:\n%s", so.String())
	}
	if acc, _ := strconv.ParseFloat(m[1], 64); acc < 40 || acc > 60 {
		t.Errorf("after one epoch at lr 1e-4 from PyTorch's 44%% model, test accuracy %.2f%%, expected 40–60%%", acc)
	}
}
