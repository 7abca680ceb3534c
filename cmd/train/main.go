// Command train trains a Vision Transformer on CIFAR-10/100 binary, IDX
// (MNIST, Fashion-MNIST) or image-folder data and writes a checkpoint.
//
// With no flags it trains a small model on the Fashion-MNIST sample shipped
// in testdata/fashion-sample, in a couple of minutes on two cores:
//
//	go run ./cmd/train
//
// Flags name the data, the model (a preset and field overrides) and the
// recipe; -resume continues a stopped run. Ctrl-C saves a checkpoint first.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/train"
	"github.com/vitgo/vit/train/data"
)

func main() {
	train.TuneGC()
	code, err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "train:", strings.TrimPrefix(err.Error(), "train: "))
	}
	os.Exit(code)
}

// errFlag is a mistake on the command line (unknown flag, bad value): one
// line, exit status 2. The flag list is printed only for -h.
type errFlag struct{ error }

func (e errFlag) Unwrap() error { return e.error }

// options are the command line's settings.
type options struct {
	dataDir, format, preset, out, resume, metrics string
	classes                                       string
	saveEvery                                     time.Duration
	cfg                                           train.Config
	patch, dim, depth, heads, mlpDim              int
	dropout, attnDropout, dropPath                float64
	pool, gelu, init                              string
	coarse, noFlip                                bool
	set                                           map[string]bool // flags given explicitly
}

const defaultPreset = "fashion-sample"

// defaultModel is the model of the no-flag run: small enough to train on the
// shipped sample in about two minutes on two cores.
var defaultModel = model.Config{ImageSize: 32, PatchSize: 8, Channels: 3, Dim: 64, Depth: 4, Heads: 4, MLPDim: 128, NumClasses: 10}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{set: map[string]bool{}}
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned as one line; the flag list is printed for -h only
	fs.Usage = func() {}
	usage := func() {
		fmt.Fprintf(stderr, "usage: go run ./cmd/train [flags]\n\nTrains a Vision Transformer and writes a checkpoint. Flags:\n")
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	c := &o.cfg
	fs.StringVar(&o.dataDir, "data", "testdata/fashion-sample", "dataset `dir`: CIFAR-10/100 binary, IDX files, or train/ and test/ image folders")
	fs.StringVar(&o.format, "format", "", "data format: cifar10, cifar100, idx or folder (default: detected)")
	fs.StringVar(&o.classes, "classes", "", "class names `file`, one per line in label order (e.g. for IDX data, which has none)")
	fs.BoolVar(&o.coarse, "coarse", false, "CIFAR-100: train on the 20 coarse labels")
	fs.StringVar(&o.preset, "preset", defaultPreset, "model preset: "+defaultPreset+", "+strings.Join(model.Presets(), ", ")+" (image size, channels and classes follow the data)")
	fs.IntVar(&o.patch, "patch", 0, "patch size (overrides the preset)")
	fs.IntVar(&o.dim, "dim", 0, "token width (overrides the preset)")
	fs.IntVar(&o.depth, "depth", 0, "encoder blocks (overrides the preset)")
	fs.IntVar(&o.heads, "heads", 0, "attention heads (overrides the preset)")
	fs.IntVar(&o.mlpDim, "mlp-dim", 0, "MLP hidden width (overrides the preset)")
	fs.Float64Var(&o.dropout, "dropout", 0, "dropout rate")
	fs.Float64Var(&o.attnDropout, "attn-dropout", 0, "attention-probability dropout rate")
	fs.Float64Var(&o.dropPath, "drop-path", 0, "stochastic depth rate of the last block")
	fs.StringVar(&o.pool, "pool", "cls", "pooling: cls or mean")
	fs.StringVar(&o.gelu, "gelu", "exact", "GELU: exact or tanh")
	fs.StringVar(&o.init, "init", "timm", "initialisation: timm (N(0, 0.02²) weights) or torchvision (Xavier-uniform; faster start for small models)")
	fs.IntVar(&c.Epochs, "epochs", 8, "training epochs")
	fs.IntVar(&c.Batch, "batch", 32, "batch size")
	fs.IntVar(&c.EvalBatch, "eval-batch", 0, "evaluation batch size (default: -batch, at most 32)")
	fs.Float64Var(&c.LR, "lr", 3e-3, "peak learning rate (AdamW)")
	fs.Float64Var(&c.MinLR, "min-lr", 1e-5, "final learning rate of the cosine schedule")
	fs.Float64Var(&c.WeightDecay, "wd", 0.05, "decoupled weight decay (weight matrices only)")
	fs.Float64Var(&c.WarmupEpochs, "warmup", 1, "linear warmup, in epochs")
	fs.Float64Var(&c.Smoothing, "smoothing", 0.1, "label smoothing")
	fs.Float64Var(&c.ClipNorm, "clip", 1, "global gradient-norm clipping (0 = off)")
	fs.IntVar(&c.Pad, "pad", 0, "random crop after padding by this many pixels (0 = no crop)")
	fs.BoolVar(&o.noFlip, "no-flip", false, "no random horizontal flips (e.g. for digits)")
	fs.Int64Var(&c.Seed, "seed", 0, "random seed: weights, data order, augmentation, dropout")
	fs.BoolVar(&c.SkipNaN, "skip-nan", false, "skip steps whose loss or gradient is not finite instead of stopping")
	fs.StringVar(&o.out, "out", "checkpoints/vit.safetensors", "checkpoint `file` (the best one goes beside it as NAME.best.safetensors)")
	fs.StringVar(&o.resume, "resume", "", "continue the run saved in this checkpoint `file` (its config wins; -epochs may extend it)")
	fs.DurationVar(&o.saveEvery, "save-every", 5*time.Minute, "also write the checkpoint this often within an epoch (0 = at epoch ends only)")
	fs.StringVar(&o.metrics, "metrics", "", "metrics `file`, one JSON line per epoch (default: beside -out, NAME.metrics.jsonl)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return nil, err
		}
		return nil, errFlag{err}
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (all settings are flags; see -h)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	c.Flip = !o.noFlip
	if o.metrics == "" {
		o.metrics = strings.TrimSuffix(o.out, ".safetensors") + ".metrics.jsonl"
	}
	return o, nil
}

// modelConfig resolves the preset and overrides, then adapts image size,
// channels and classes to the data.
func (o *options) modelConfig(d *data.Dataset) (model.Config, error) {
	mc := defaultModel
	if o.preset != defaultPreset {
		var err error
		if mc, err = model.Preset(o.preset); err != nil {
			return mc, err
		}
	}
	for _, f := range []struct {
		v   int
		dst *int
	}{{o.patch, &mc.PatchSize}, {o.dim, &mc.Dim}, {o.depth, &mc.Depth}, {o.heads, &mc.Heads}, {o.mlpDim, &mc.MLPDim}} {
		if f.v != 0 {
			*f.dst = f.v
		}
	}
	mc.Dropout, mc.AttnDropout, mc.DropPath = o.dropout, o.attnDropout, o.dropPath
	mc.Pool, mc.GELU, mc.Init = o.pool, o.gelu, o.init
	if d.H != d.W {
		return mc, fmt.Errorf("images are %d×%d; the model needs square images", d.H, d.W)
	}
	mc.ImageSize, mc.Channels, mc.NumClasses = d.H, d.C, len(d.Classes)
	if mc.ImageSize%mc.PatchSize != 0 {
		return mc, fmt.Errorf("the data's %d×%d images do not divide into %d×%d patches; choose -patch", d.H, d.W, mc.PatchSize, mc.PatchSize)
	}
	return mc, mc.Validate()
}

// checkResumeFlags refuses flags that contradict the checkpoint's config.
func (o *options) checkResumeFlags(stored train.Config) error {
	var clash []string
	for _, name := range []string{"preset", "patch", "dim", "depth", "heads", "mlp-dim", "dropout", "attn-dropout", "drop-path",
		"pool", "gelu", "init", "classes", "batch", "eval-batch", "lr", "min-lr", "wd", "warmup", "smoothing", "clip", "pad", "no-flip", "seed", "skip-nan"} {
		if o.set[name] {
			clash = append(clash, "-"+name)
		}
	}
	if len(clash) > 0 {
		return fmt.Errorf("-resume takes the model and recipe from the checkpoint; drop %s", strings.Join(clash, ", "))
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) (int, error) {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0, nil
	}
	var bad errFlag
	if errors.As(err, &bad) {
		return 2, fmt.Errorf("%v (run with -h for the list of flags)", bad.error)
	}
	if err != nil {
		return 2, err
	}
	start := time.Now()
	trainSet, testSet, format, err := data.Load(o.dataDir, data.Options{Format: o.format, Coarse: o.coarse, ImageSize: folderSize(o), Channels: 0})
	if err != nil {
		return 1, err
	}
	if o.classes != "" {
		names, err := readClasses(o.classes, len(trainSet.Classes))
		if err != nil {
			return 1, err
		}
		trainSet.Classes, testSet.Classes = names, names
	}
	fmt.Fprintf(stdout, "data: %s (%s): %d training and %d test images, %d×%d×%d, %d classes, loaded in %.1fs\n",
		o.dataDir, format, trainSet.N, testSet.N, trainSet.C, trainSet.H, trainSet.W, len(trainSet.Classes), time.Since(start).Seconds())
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return 1, fmt.Errorf("cannot create the checkpoint directory: %v", err)
	}
	// Find out now, not after the first epoch, if checkpoints cannot be written.
	probe, err := os.CreateTemp(filepath.Dir(o.out), ".vit-write-test-*")
	if err != nil {
		return 1, fmt.Errorf("cannot write to the checkpoint directory: %v", err)
	}
	probe.Close()
	os.Remove(probe.Name())

	var r *train.Run
	if o.resume != "" {
		stored, err := train.ReadConfig(o.resume)
		if err != nil {
			return 1, err
		}
		if err := o.checkResumeFlags(stored); err != nil {
			return 2, err
		}
		epochs := 0
		if o.set["epochs"] {
			epochs = o.cfg.Epochs
		}
		if r, err = train.Resume(o.resume, trainSet, testSet, epochs); err != nil {
			return 1, err
		}
		fmt.Fprintf(stdout, "resumed %s at step %d of %d (epoch %d)\n", o.resume, r.Step, r.TotalSteps(), r.Epoch()+1)
	} else {
		mc, err := o.modelConfig(trainSet)
		if err != nil {
			return 2, err
		}
		o.cfg.Model = mc
		if r, err = train.New(o.cfg, trainSet, testSet, data.ComputeNormalization(trainSet)); err != nil {
			return 2, err
		}
	}
	defer r.Close()
	cfgJSON, _ := json.Marshal(r.Config)
	fmt.Fprintf(stdout, "model: %s\n", r.Model.Describe())
	fmt.Fprintf(stdout, "cost: %v\n", r.Config.Model.Cost(r.Config.Batch))
	fmt.Fprintf(stdout, "buffers: %.0f MiB for training, %.0f MiB for evaluation (intermediate results share memory)\n",
		float64(r.Buffers.Train.BytesAfter)/(1<<20), float64(r.Buffers.Eval.BytesAfter)/(1<<20))
	fmt.Fprintf(stdout, "config: %s\n", cfgJSON)
	fmt.Fprintf(stdout, "steps: %d per epoch, %d in all; checkpoint: %s\n", r.StepsPerEpoch(), r.TotalSteps(), o.out)

	if o.resume != "" {
		// A run killed after writing an epoch's line but before saving the
		// checkpoint would write that epoch again: drop lines past the
		// checkpoint's step.
		if err := trimMetrics(o.metrics, r.Step); err != nil {
			return 1, err
		}
	}
	metrics, err := openMetrics(o.metrics, o.resume != "")
	if err != nil {
		return 1, err
	}
	defer metrics.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	best := strings.TrimSuffix(o.out, ".safetensors") + ".best.safetensors"
	prog := newProgress(stdout, r)
	var last train.Metrics
	err = r.Fit(ctx, train.Hooks{
		SaveEvery: o.saveEvery,
		Step:      prog.step,
		Epoch: func(r *train.Run, m train.Metrics) error {
			last = m
			prog.epoch(m)
			b, _ := json.Marshal(m)
			if _, err := fmt.Fprintf(metrics, "%s\n", b); err != nil {
				return fmt.Errorf("writing metrics %s: %v", o.metrics, err)
			}
			return nil
		},
		Save: func(r *train.Run, isBest bool) error {
			if err := r.Save(o.out); err != nil {
				return err
			}
			if isBest {
				return r.Save(best)
			}
			return nil
		},
	})
	prog.finish()
	if errors.Is(err, context.Canceled) {
		dataFlags := "-data " + o.dataDir
		if o.format != "" {
			dataFlags += " -format " + o.format
		}
		if o.coarse {
			dataFlags += " -coarse"
		}
		fmt.Fprintf(stderr, "interrupted at step %d of %d; checkpoint saved to %s\nresume with: go run ./cmd/train %s -out %s -resume %s\n",
			r.Step, r.TotalSteps(), o.out, dataFlags, o.out, o.out)
		return 130, nil
	}
	if err != nil {
		var nf *train.NonFiniteError
		if errors.As(err, &nf) {
			return 1, fmt.Errorf("%v; the last good checkpoint is %s", err, o.out)
		}
		return 1, err
	}
	fmt.Fprintf(stdout, "done in %s: test accuracy %.2f%% (best %.2f%%), test loss %.4f\ncheckpoint: %s (best: %s), metrics: %s\n",
		time.Since(start).Round(time.Second), 100*last.TestAcc, 100*r.BestAcc, last.TestLoss, o.out, best, o.metrics)
	return 0, nil
}

// readClasses reads one class name per line (blank lines and surrounding
// space ignored) and checks that there is one per class of the data.
func readClasses(path string, want int) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-classes: %v", err)
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			names = append(names, line)
		}
	}
	if len(names) != want {
		return nil, fmt.Errorf("-classes %s has %d names; the data has %d classes", path, len(names), want)
	}
	return names, nil
}

// folderSize is the image size to resize image folders to.
func folderSize(o *options) int {
	if o.preset == defaultPreset {
		return defaultModel.ImageSize
	}
	if c, err := model.Preset(o.preset); err == nil {
		return c.ImageSize
	}
	return 0
}

// trimMetrics keeps the lines of a metrics file whose "step" is at most
// step (a missing file is fine), rewriting the file only if that drops any.
func trimMetrics(path string, step int) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read the metrics file: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var keep []string
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for _, line := range lines {
		var m struct{ Step *int }
		if json.Unmarshal([]byte(line), &m) == nil && m.Step != nil && *m.Step > step {
			continue
		}
		if line != "" {
			keep = append(keep, line)
		}
	}
	if len(keep) == len(lines) {
		return nil
	}
	tmp := path + ".tmp"
	out := strings.Join(keep, "\n")
	if out != "" {
		out += "\n"
	}
	if err := os.WriteFile(tmp, []byte(out), 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot rewrite the metrics file: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot rewrite the metrics file: %v", err)
	}
	return nil
}

func openMetrics(path string, appendTo bool) (*os.File, error) {
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if appendTo {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open the metrics file: %v", err)
	}
	return f, nil
}

// progress shows a bar on a terminal and plain lines otherwise.
type progress struct {
	w        io.Writer
	bar      *progressbar.ProgressBar
	tty      bool
	every    int
	t0       time.Time
	s0       int
	lossEMA  float64
	batch    int
	perEpoch int
}

func newProgress(w io.Writer, r *train.Run) *progress {
	p := &progress{w: w, batch: r.Config.Batch, perEpoch: r.StepsPerEpoch(), t0: time.Now(), s0: r.Step}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		p.bar = progressbar.NewOptions(r.TotalSteps(),
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish())
		_ = p.bar.Set(r.Step)
	}
	p.every = max(1, p.perEpoch/4)
	return p
}

func (p *progress) step(r *train.Run, loss float64) {
	if p.lossEMA == 0 {
		p.lossEMA = loss
	}
	p.lossEMA = 0.9*p.lossEMA + 0.1*loss
	ips := float64((r.Step-p.s0)*p.batch) / time.Since(p.t0).Seconds()
	if p.tty {
		p.bar.Describe(fmt.Sprintf("epoch %d/%d loss %.4f %.0f img/s", r.Epoch()+1-boolInt(r.Step%p.perEpoch == 0), r.Config.Epochs, p.lossEMA, ips))
		_ = p.bar.Set(r.Step)
		return
	}
	if r.Step%p.every == 0 {
		left := float64(r.TotalSteps()-r.Step) * float64(p.batch) / ips
		fmt.Fprintf(p.w, "step %d/%d loss %.4f %.0f img/s lr %.2e eta %s\n", r.Step, r.TotalSteps(), p.lossEMA, ips, r.LR(), (time.Duration(left) * time.Second).Round(time.Second))
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (p *progress) epoch(m train.Metrics) {
	if p.tty {
		_ = p.bar.Clear()
	}
	fmt.Fprintf(p.w, "epoch %d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | lr %.2e | %.0f img/s | %.1fs\n",
		m.Epoch, m.TrainLoss, 100*m.TrainAcc, m.TestLoss, 100*m.TestAcc, m.LR, m.ImagesPerS, m.Seconds)
}

func (p *progress) finish() {
	if p.tty {
		_ = p.bar.Finish()
	}
}
