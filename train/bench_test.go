package train

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/train/data"
)

// benchConfigs are the configurations of the PyTorch yardstick
// (../shared/peer/vit_torch_bench.py).
var benchConfigs = []struct {
	name  string
	cfg   model.Config
	batch int
}{
	{"mnist-small", model.Config{ImageSize: 28, PatchSize: 7, Channels: 1, Dim: 64, Depth: 6, Heads: 4, MLPDim: 128, NumClasses: 10}, 128},
	{"cifar-tiny", model.Config{ImageSize: 32, PatchSize: 4, Channels: 3, Dim: 192, Depth: 6, Heads: 3, MLPDim: 768, NumClasses: 10}, 128},
	// The Fashion-MNIST recipe of docs/training.md: mnist-small with 4×4 patches.
	{"fashion-p4", model.Config{ImageSize: 28, PatchSize: 4, Channels: 1, Dim: 64, Depth: 6, Heads: 4, MLPDim: 128, NumClasses: 10}, 128},
	// The same with the conv stem (-stem conv).
	{"fashion-p4-stem", model.Config{ImageSize: 28, PatchSize: 4, Channels: 1, Dim: 64, Depth: 6, Heads: 4, MLPDim: 128, NumClasses: 10, Stem: model.StemConv}, 128},
	// A real size (docs/performance.md, docs/pytorch/bench_real.py).
	{"ti16/batch=32", model.Config{ImageSize: 224, PatchSize: 16, Channels: 3, Dim: 192, Depth: 12, Heads: 3, MLPDim: 768, NumClasses: 1000}, 32},
}

// randomDataset returns n random images of the config's shape.
func randomDataset(c model.Config, n int) *data.Dataset {
	d := &data.Dataset{N: n, C: c.Channels, H: c.ImageSize, W: c.ImageSize}
	d.Images = make([]float32, n*c.Channels*c.ImageSize*c.ImageSize)
	for i := range d.Images {
		d.Images[i] = float32((i*7919)%256) / 255
	}
	d.Labels = make([]int, n)
	for i := range d.Labels {
		d.Labels[i] = i % c.NumClasses
		d.Classes = nil
	}
	for k := 0; k < c.NumClasses; k++ {
		d.Classes = append(d.Classes, string(rune('a'+k)))
	}
	return d
}

// BenchmarkTrainStep measures one optimizer step (forward, loss, backward,
// clipping, AdamW) at batch 128 (32 for Ti/16), in images per second. The
// "augmented" rows add every augmentation of issue 16 (RandAugment, random
// erasing, Mixup or CutMix, the moving average), whose batches are prepared
// by a goroutine during the step before: the difference to the plain row
// is what they cost.
func BenchmarkTrainStep(b *testing.B) {
	configs := benchConfigs
	for _, bc := range benchConfigs {
		if bc.name == "fashion-p4" || bc.name == "cifar-tiny" {
			configs = append(configs, bc)
			configs[len(configs)-1].name += "/augmented"
		}
	}
	for _, bc := range configs {
		b.Run(bc.name, func(b *testing.B) {
			batch := bc.batch
			d := randomDataset(bc.cfg, batch*4)
			cfg := Config{Model: bc.cfg, Epochs: 1000, Batch: batch, LR: 1e-3, WeightDecay: 0.05, ClipNorm: 1}
			if strings.HasSuffix(bc.name, "/augmented") {
				cfg.Pad, cfg.Flip, cfg.AutoAugment, cfg.Erase, cfg.Mixup, cfg.CutMix, cfg.EMA = 2, true, "randaugment", 0.25, 0.8, 1, 0.999
			}
			r, err := New(cfg, d, d, data.ComputeNormalization(d))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			if _, err := r.TrainStep(); err != nil { // warm-up
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := r.TrainStep(); err != nil {
					b.Fatal(err)
				}
			}
			ips := float64(batch*b.N) / b.Elapsed().Seconds()
			b.ReportMetric(ips, "img/s")
			b.ReportMetric(ips*bc.cfg.Cost(batch).TrainFLOPs/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkEvaluate measures the evaluation pass of a run (Run.EvaluateOn,
// as after every epoch) on the conv-stem Fashion-MNIST model, at several
// evaluation batch sizes, in images per second.
func BenchmarkEvaluate(b *testing.B) {
	var bc = benchConfigs[0]
	for _, c := range benchConfigs {
		if c.name == "fashion-p4-stem" {
			bc = c
		}
	}
	if bc.name != "fashion-p4-stem" {
		b.Fatal("no fashion-p4-stem in benchConfigs")
	}
	for _, eb := range []int{32, 64, 128, 256} {
		b.Run(fmt.Sprintf("%s/eval-batch=%d", bc.name, eb), func(b *testing.B) {
			d := randomDataset(bc.cfg, 1024)
			cfg := Config{Model: bc.cfg, Epochs: 1, Batch: bc.batch, EvalBatch: eb, LR: 1e-3}
			r, err := New(cfg, d, d, data.ComputeNormalization(d))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			if _, err := r.EvaluateOn(d); err != nil { // warm-up
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := r.EvaluateOn(d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(d.N*b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}
