package model

import (
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BenchmarkForward measures inference (forward only, dropout off) at batch
// 128 on the configurations of the PyTorch yardstick, in images per second.
func BenchmarkForward(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"mnist-small", Config{ImageSize: 28, PatchSize: 7, Channels: 1, Dim: 64, Depth: 6, Heads: 4, MLPDim: 128, NumClasses: 10}},
		{"cifar-tiny", Config{ImageSize: 32, PatchSize: 4, Channels: 3, Dim: 192, Depth: 6, Heads: 3, MLPDim: 768, NumClasses: 10}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const batch = 128
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
			x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(batch, c.Channels, c.ImageSize, c.ImageSize), G.WithName("x"),
				G.WithValue(tensor.New(tensor.WithShape(batch, c.Channels, c.ImageSize, c.ImageSize), tensor.WithBacking(px))))
			if _, err := m.Forward(x); err != nil {
				b.Fatal(err)
			}
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
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}
