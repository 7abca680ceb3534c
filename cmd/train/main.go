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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vitgo/vit/cmd/internal/cli"
	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/train"
	"github.com/vitgo/vit/train/data"
)

func main() {
	train.TuneGC()
	cli.Main("train", run)
}

// options are the command line's settings.
type options struct {
	dataDir, format, preset, out, resume, metrics string
	classes, pretrained, labels, norm, lazy       string
	perClass, cacheMiB                            int
	pre                                           *model.File // -pretrained, read
	preCfg                                        model.Config
	saveEvery                                     time.Duration
	cfg                                           train.Config
	patch, dim, depth, heads, mlpDim              int
	dropout, attnDropout, dropPath                float64
	pool, gelu, init, posEmbed, stem              string
	coarse, noFlip                                bool
	set                                           map[string]bool // flags given explicitly
}

const (
	defaultPreset = "fashion-sample"
	defaultData   = "testdata/fashion-sample"
	defaultOut    = "checkpoints/vit.safetensors"
)

// defaultModel is the model of the no-flag run: small enough to train on the
// shipped sample in about two minutes on two cores.
var defaultModel = model.Config{ImageSize: 32, PatchSize: 8, Channels: 3, Dim: 64, Depth: 4, Heads: 4, MLPDim: 128, NumClasses: 10}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	flags := cli.NewFlagSet("train", "usage: go run ./cmd/train [flags]\n\nTrains a Vision Transformer and writes a checkpoint. Flags:\n", stderr)
	c := &o.cfg
	flags.StringVar(&o.dataDir, "data", defaultData, "dataset `dir`: CIFAR-10/100 binary, IDX files, or train/ and test/ image folders")
	flags.StringVar(&o.format, "format", "", "data format: cifar10, cifar100, idx or folder (default: detected)")
	flags.StringVar(&o.classes, "classes", "", "class names `file`, one per line in label order (e.g. for IDX data, which has none)")
	flags.BoolVar(&o.coarse, "coarse", false, "CIFAR-100: train on the 20 coarse labels")
	flags.StringVar(&o.preset, "preset", defaultPreset, "model preset: "+defaultPreset+", "+strings.Join(model.Presets(), ", ")+" (image size, channels and classes follow the data)")
	flags.IntVar(&o.patch, "patch", 0, "patch size (overrides the preset)")
	flags.IntVar(&o.dim, "dim", 0, "token width (overrides the preset)")
	flags.IntVar(&o.depth, "depth", 0, "encoder blocks (overrides the preset)")
	flags.IntVar(&o.heads, "heads", 0, "attention heads (overrides the preset)")
	flags.IntVar(&o.mlpDim, "mlp-dim", 0, "MLP hidden width (overrides the preset)")
	flags.Float64Var(&o.dropout, "dropout", 0, "dropout rate")
	flags.Float64Var(&o.attnDropout, "attn-dropout", 0, "attention-probability dropout rate")
	flags.Float64Var(&o.dropPath, "drop-path", 0, "stochastic depth rate of the last block")
	flags.StringVar(&o.pool, "pool", "cls", "pooling: cls or mean")
	flags.StringVar(&o.gelu, "gelu", "exact", "GELU: exact or tanh")
	flags.StringVar(&o.posEmbed, "pos-embed", "learned", "positional embedding: learned, or sincos (fixed 2-D sin-cos, not trained)")
	flags.StringVar(&o.stem, "stem", "patch", "patch embedding: patch (one linear projection per patch), or conv (3×3 convolutions of stride 2, LayerNorm, GELU; -patch a power of 2)")
	flags.StringVar(&o.init, "init", "timm", "initialisation: timm (N(0, 0.02²) weights) or torchvision (Xavier-uniform; faster start for small models)")
	flags.IntVar(&c.Epochs, "epochs", 8, "training epochs")
	flags.IntVar(&c.Batch, "batch", 32, "batch size")
	flags.IntVar(&c.EvalBatch, "eval-batch", 0, "evaluation batch size (default: -batch, at most 32)")
	flags.Float64Var(&c.LR, "lr", 3e-3, "peak learning rate (AdamW)")
	flags.Float64Var(&c.MinLR, "min-lr", 1e-5, "final learning rate of the cosine schedule")
	flags.Float64Var(&c.WeightDecay, "wd", 0.05, "decoupled weight decay (weight matrices only)")
	flags.Float64Var(&c.WarmupEpochs, "warmup", 1, "linear warmup, in epochs")
	flags.Float64Var(&c.Smoothing, "smoothing", 0.1, "label smoothing")
	flags.Float64Var(&c.ClipNorm, "clip", 1, "global gradient-norm clipping (0 = off)")
	flags.IntVar(&c.Pad, "pad", 0, "random crop after padding by this many pixels (0 = no crop)")
	flags.BoolVar(&o.noFlip, "no-flip", false, "no random horizontal flips (e.g. for digits)")
	flags.StringVar(&c.AutoAugment, "augment", "", "augmentation policy: randaugment (2 ops, magnitude 9), randaugment-nN-mM, trivialaugment, or none")
	flags.Float64Var(&c.Erase, "erase", 0, "random erasing probability")
	flags.Float64Var(&c.Mixup, "mixup", 0, "Mixup Beta alpha (e.g. 0.8; 0 = off)")
	flags.Float64Var(&c.CutMix, "cutmix", 0, "CutMix Beta alpha (e.g. 1.0; 0 = off; with -mixup, one of the two per batch)")
	flags.Int64Var(&c.Seed, "seed", 0, "random seed: weights, data order, augmentation, dropout, validation split")
	flags.Float64Var(&c.EMA, "ema", 0, "exponential moving average of the weights with this decay (e.g. 0.999; 0 = off): evaluated and saved instead of the trained weights")
	flags.IntVar(&c.Val, "val", 0, "hold out this many training images (stratified, chosen by -seed) for validation: evaluated every epoch, they choose the best checkpoint (0 = none held out, no best checkpoint)")
	flags.BoolVar(&c.SkipNaN, "skip-nan", false, "skip steps whose loss or gradient is not finite instead of stopping")
	flags.StringVar(&o.out, "out", defaultOut, "checkpoint `file` (the best one goes beside it as NAME.best.safetensors; default with -resume: the resumed file)")
	flags.StringVar(&o.pretrained, "pretrained", "", "start from these weights `file` (ours, or timm / torchvision / Hugging Face): a new head for other classes, positions resized, optimizer afresh")
	flags.StringVar(&o.cfg.Freeze, "freeze", "", "with -pretrained: \"backbone\" trains the head only (a linear probe), or comma-separated name prefixes to freeze (patch_embed.,blocks.0.)")
	flags.Float64Var(&o.cfg.LayerDecay, "layer-decay", 0, "with -pretrained: each block's learning rate is R times the next one's, from the head down (0 = off)")
	flags.StringVar(&o.norm, "norm", "", "normalisation: data (the training images' mean/std), imagenet, half or MEAN,…/STD,… (default: data, or the -pretrained weights')")
	flags.StringVar(&o.lazy, "lazy", "auto", "read image folders lazily, batch by batch: on, off, or auto (when in memory they would take more than 1 GiB)")
	flags.IntVar(&o.cacheMiB, "cache", int(data.DefaultCacheBytes>>20), "MiB of converted images a lazily read folder keeps (the first ones read)")
	flags.StringVar(&o.labels, "labels", "", "train on these classes only, e.g. 0,1,2,3,4 (relabelled in this order)")
	flags.IntVar(&o.perClass, "per-class", 0, "take only the first this many training images of each class")
	flags.StringVar(&o.resume, "resume", "", "continue the run saved in this checkpoint `file` (its config wins; -epochs may extend it)")
	flags.DurationVar(&o.saveEvery, "save-every", 5*time.Minute, "also write the checkpoint this often within an epoch (0 = at epoch ends only)")
	flags.StringVar(&o.metrics, "metrics", "", "metrics `file`, one JSON line per epoch (default: beside -out, NAME.metrics.jsonl)")
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	if flags.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (all settings are flags; see -h)", flags.Arg(0))
	}
	o.set = flags.Set()
	c.Flip = !o.noFlip
	if o.resume != "" && !o.set["out"] {
		o.out = o.resume // a resumed run goes on writing the file it resumed from
	}
	if o.metrics == "" {
		o.metrics = strings.TrimSuffix(o.out, ".safetensors") + ".metrics.jsonl"
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) (int, error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return cli.Status(err)
	}
	start := time.Now()
	trainSet, testSet, err := o.loadData(stdout)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stdout, "loaded in %.1fs\n", time.Since(start).Seconds())
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

	r, code, err := o.newRun(trainSet, testSet, stdout)
	if err != nil {
		return code, err
	}
	defer r.Close()
	cfgJSON, _ := json.Marshal(r.Config)
	fmt.Fprintf(stdout, "model: %s\n", r.Model.Describe())
	fmt.Fprintf(stdout, "cost: %v\n", r.Config.Model.Cost(r.Config.Batch))
	fmt.Fprintf(stdout, "buffers: %.0f MiB for training, %.0f MiB for evaluation (intermediate results share memory)\n",
		float64(r.Buffers.Train.BytesAfter)/(1<<20), float64(r.Buffers.Eval.BytesAfter)/(1<<20))
	fmt.Fprintf(stdout, "config: %s\n", cfgJSON)
	fmt.Fprintf(stdout, "steps: %d per epoch, %d in all; checkpoint: %s\n", r.StepsPerEpoch(), r.TotalSteps(), o.out)

	metrics, err := train.OpenMetricsLog(o.metrics, o.resume != "", r.Step)
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
			return metrics.Write(m)
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
		if o.labels != "" {
			dataFlags += " -labels " + o.labels
		}
		if o.perClass > 0 {
			dataFlags += fmt.Sprintf(" -per-class %d", o.perClass)
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
	fmt.Fprintf(stdout, "done in %s: final model: test accuracy %.2f%%, test loss %.4f", time.Since(start).Round(time.Second), 100*last.TestAcc, last.TestLoss)
	if last.HasVal {
		fmt.Fprintf(stdout, ", validation accuracy %.2f%%", 100*last.ValAcc)
	}
	fmt.Fprintf(stdout, "\ncheckpoint: %s, metrics: %s\n", o.out, o.metrics)
	if r.BestEpoch > 0 {
		fmt.Fprintf(stdout, "best by validation: epoch %d, validation accuracy %.2f%%, test accuracy %.2f%%: %s\n",
			r.BestEpoch, 100*r.BestAcc, 100*r.BestTestAcc, best)
	} else {
		fmt.Fprintln(stdout, "no best checkpoint: no validation images were held out (-val N)")
	}
	return 0, nil
}
