package preprocess

import (
	"testing"
)

// BenchmarkPhoto measures, on a 640×427 JPEG photo (testdata/photos),
// decoding it, converting it to the training pipeline's 3×32×32 input
// (ToCHW) — what the lazy folder reader spends per image — and to a
// Ti/16's 3×224×224 input with timm's evaluation transform (bicubic resize
// to 248, crop) — what a server spends per request after decoding — in
// images per second.
func BenchmarkPhoto(b *testing.B) {
	const path = "../../testdata/photos/rocket.jpg"
	img, err := DecodeFile(path)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, 3*32*32)
	timm, err := TimmEval(224, 0.9, Bicubic, ImageNet)
	if err != nil {
		b.Fatal(err)
	}
	dst224 := make([]float32, 3*224*224)
	for _, c := range []struct {
		name string
		run  func() error
	}{
		{"decode", func() error { _, err := DecodeFile(path); return err }},
		{"ToCHW", func() error { return ToCHW(img, 3, 32, dst) }},
		{"timm224", func() error { return timm.Pixels(img, dst224) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}
