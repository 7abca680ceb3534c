package model

import (
	"fmt"
	"path/filepath"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/layers/ops"
)

// BenchmarkForward measures inference (forward only, dropout off) at batch
// 128 on the configurations of the PyTorch yardstick, in images per second.
func BenchmarkForward(b *testing.B) {
	fashionMNIST := Config{ImageSize: 28, PatchSize: 4, Channels: 1, Dim: 64, Depth: 6, Heads: 4, MLPDim: 128, NumClasses: 10}
	fashionTiny := Config{ImageSize: 32, PatchSize: 8, Channels: 3, Dim: 32, Depth: 2, Heads: 2, MLPDim: 64, NumClasses: 10}
	ti16 := Config{ImageSize: 224, PatchSize: 16, Channels: 3, Dim: 192, Depth: 12, Heads: 3, MLPDim: 768, NumClasses: 1000}
	s16 := Config{ImageSize: 224, PatchSize: 16, Channels: 3, Dim: 384, Depth: 12, Heads: 6, MLPDim: 1536, NumClasses: 1000}
	b16 := Config{ImageSize: 224, PatchSize: 16, Channels: 3, Dim: 768, Depth: 12, Heads: 12, MLPDim: 3072, NumClasses: 1000}
	for _, bc := range []struct {
		name  string
		cfg   Config
		batch int
	}{
		{"mnist-small", Config{ImageSize: 28, PatchSize: 7, Channels: 1, Dim: 64, Depth: 6, Heads: 4, MLPDim: 128, NumClasses: 10}, 128},
		{"cifar-tiny", Config{ImageSize: 32, PatchSize: 4, Channels: 3, Dim: 192, Depth: 6, Heads: 3, MLPDim: 768, NumClasses: 10}, 128},
		// The served models of docs/serving.md: the Fashion-MNIST recipe's
		// (docs/training.md), testdata/classifier's checkpoint and a Ti/16,
		// one image and a server's batch.
		{"fashion-mnist/batch=1", fashionMNIST, 1},
		{"fashion-mnist/batch=16", fashionMNIST, 16},
		{"fashion-tiny/batch=1", fashionTiny, 1},
		{"fashion-tiny/batch=16", fashionTiny, 16},
		{"ti16/batch=1", ti16, 1},
		{"ti16/batch=16", ti16, 16},
		// The other real sizes of docs/performance.md.
		{"s16/batch=1", s16, 1},
		{"s16/batch=16", s16, 16},
		{"b16/batch=1", b16, 1},
		{"b16/batch=16", b16, 16},
	} {
		b.Run(bc.name, func(b *testing.B) {
			batch := bc.batch
			g := G.NewGraph()
			m, err := New(g, bc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			m.SetTraining(false)
			c := bc.cfg
			px := make([]float32, batch*c.Channels*c.ImageSize*c.ImageSize)
			for i := range px {
				px[i] = float32(i%255)/255 - 0.5
			}
			x, err := m.NewInput(batch, "x")
			if err != nil {
				b.Fatal(err)
			}
			copy(x.Value().Data().([]float32), px)
			if _, err := m.Forward(x); err != nil {
				b.Fatal(err)
			}
			ops.FreezeWeights(g) // weights packed once, as the Classifier does
			vm := G.NewTapeMachine(g)
			defer vm.Close()
			run := func() {
				vm.Reset()
				if err := vm.RunAll(); err != nil {
					b.Fatal(err)
				}
			}
			run() // warm-up
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				run()
			}
			ips := float64(batch*b.N) / b.Elapsed().Seconds()
			b.ReportMetric(ips, "img/s")
			b.ReportMetric(ips*bc.cfg.Cost(batch).ForwardFLOPs/1e9, "GFLOP/s")
			if batch == 1 {
				b.ReportMetric(1000/ips, "ms/img")
			}
		})
	}
}

// BenchmarkClassifier measures Classifier.ClassifyPixels on 512 cifar-tiny
// images (batch 16) with one graph and with two: one call spreads its
// batches over the pool. Images per second.
func BenchmarkClassifier(b *testing.B) {
	cfg := Config{ImageSize: 32, PatchSize: 4, Channels: 3, Dim: 192, Depth: 6, Heads: 3, MLPDim: 768, NumClasses: 10}
	m, err := New(G.NewGraph(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "w.safetensors")
	if err := m.SaveWeights(path); err != nil {
		b.Fatal(err)
	}
	const n = 512
	px := make([]float32, n*3*32*32)
	for i := range px {
		px[i] = float32(i%251) / 251
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			c, err := LoadClassifier(path, WithBatchSize(16), WithWorkers(workers))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.ClassifyPixels(px, n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}
