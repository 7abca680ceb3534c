package optim

import (
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers"
)

// benchStep runs Step on ViT-Tiny-like float32 parameters (12 blocks of
// qkv, proj, fc1, fc2 weights and biases: about 5.3M values).
func benchStep(b *testing.B, workers int) {
	g := G.NewGraph()
	var params []*layers.Param
	var vgs []G.ValueGrad
	for blk := 0; blk < 12; blk++ {
		for j, sh := range [][]int{{192, 576}, {576}, {192, 192}, {192}, {192, 768}, {768}, {768, 192}, {192}} {
			p := newParam(g, string(rune('a'+j))+string(rune('A'+blk)), tensor.Float32, sh, nil, len(sh) == 2)
			params = append(params, p.p)
			vgs = append(vgs, p.vg)
		}
	}
	opt, err := NewAdamW(params, Config{LR: 1e-3, WeightDecay: 0.05})
	if err != nil {
		b.Fatal(err)
	}
	opt.workers = workers
	b.SetBytes(int64(opt.total) * 4 * 4) // p, g, m, v
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := opt.Step(vgs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStepSerial(b *testing.B)   { benchStep(b, 1) }
func BenchmarkStepParallel(b *testing.B) { benchStep(b, 0) }

func BenchmarkGlobalNorm(b *testing.B) {
	d := newDense(tensor.Float32, []int{5_300_000}, nil)
	vgs := []G.ValueGrad{&testVG{v: d, g: d}}
	b.SetBytes(5_300_000 * 4)
	for i := 0; i < b.N; i++ {
		if _, err := GlobalNorm(vgs); err != nil {
			b.Fatal(err)
		}
	}
}
