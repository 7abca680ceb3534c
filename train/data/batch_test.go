package data

import (
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/vitgo/vit/model/preprocess"
)

func TestComputeNormalization(t *testing.T) {
	// 2 images, 2 channels, 1×2 pixels. Channel 0: 0, 1, 0.5, 0.5 → mean 0.5,
	// population std sqrt((0.25+0.25+0+0)/4) = sqrt(0.125). Channel 1:
	// constant 0.25 → std floored at 1e-6.
	d := &Dataset{
		Images: []float32{0, 1, 0.25, 0.25, 0.5, 0.5, 0.25, 0.25},
		Labels: []int{0, 1}, N: 2, C: 2, H: 1, W: 2, Classes: []string{"a", "b"},
	}
	n := ComputeNormalization(d)
	if len(n.Mean) != 2 || len(n.Std) != 2 {
		t.Fatalf("got %d means, %d stds, expected 2 each", len(n.Mean), len(n.Std))
	}
	if n.Mean[0] != 0.5 || n.Mean[1] != 0.25 {
		t.Errorf("means %v, expected [0.5 0.25]", n.Mean)
	}
	if want := float32(math.Sqrt(0.125)); n.Std[0] != want {
		t.Errorf("std[0] = %v, expected %v", n.Std[0], want)
	}
	if n.Std[1] != float32(MinStd) {
		t.Errorf("std of a constant channel = %v, expected the floor %v", n.Std[1], float32(MinStd))
	}
	e := ComputeNormalization(&Dataset{C: 3, H: 2, W: 2})
	if !slices.Equal(e.Mean, []float32{0, 0, 0}) || !slices.Equal(e.Std, []float32{1, 1, 1}) {
		t.Errorf("empty split: %v / %v, expected zeros / ones", e.Mean, e.Std)
	}
}

// rampDataset has n images of c×h×w with distinct pixel values.
func rampDataset(n, c, h, w int) *Dataset {
	d := &Dataset{N: n, C: c, H: h, W: w, Images: make([]float32, n*c*h*w), Labels: make([]int, n)}
	for i := range d.Images {
		d.Images[i] = float32(i%251) / 250
	}
	for i := range d.Labels {
		d.Labels[i] = i % 3
	}
	d.Classes = []string{"x", "y", "z"}
	return d
}

func TestBatchNoAug(t *testing.T) {
	d := rampDataset(5, 3, 4, 6)
	norm := preprocess.Normalization{Mean: []float32{0.1, 0.5, 0.9}, Std: []float32{0.3, 0.7, 0.2}}
	idx := []int{4, 0, 4, 2}
	chw := d.C * d.H * d.W
	dst := make([]float32, len(idx)*chw)
	labels := make([]int, len(idx))
	d.Batch(dst, labels, idx, norm, nil, nil)
	for k, i := range idx {
		if labels[k] != d.Labels[i] {
			t.Errorf("label %d = %d, expected %d", k, labels[k], d.Labels[i])
		}
		for j, v := range d.Image(i) {
			c := j / (d.H * d.W)
			if want := (v - norm.Mean[c]) / norm.Std[c]; dst[k*chw+j] != want {
				t.Fatalf("image %d value %d = %v, expected %v", k, j, dst[k*chw+j], want)
			}
		}
	}
	// A zero augmentation is the identity too, and draws nothing.
	rng := rand.New(rand.NewSource(3))
	dst2 := make([]float32, len(dst))
	d.Batch(dst2, labels, idx, norm, &Augment{}, rng)
	if !slices.Equal(dst, dst2) {
		t.Error("Augment{} changed the batch")
	}
	if rng.Int63() != rand.New(rand.NewSource(3)).Int63() {
		t.Error("Augment{} consumed random numbers")
	}
}

func TestBatchDeterministic(t *testing.T) {
	d := rampDataset(6, 3, 8, 8)
	norm := ComputeNormalization(d)
	aug := &Augment{Pad: 2, Flip: true}
	idx := []int{5, 1, 3, 0, 2, 4, 1, 1}
	run := func(seed int64) ([]float32, []float32) {
		rng := rand.New(rand.NewSource(seed))
		a := make([]float32, len(idx)*d.C*d.H*d.W)
		b := make([]float32, len(a))
		l := make([]int, len(idx))
		d.Batch(a, l, idx, norm, aug, rng)
		d.Batch(b, l, idx, norm, aug, rng)
		return a, b
	}
	a1, b1 := run(42)
	a2, b2 := run(42)
	if !slices.Equal(a1, a2) || !slices.Equal(b1, b2) {
		t.Fatal("the same seed gave different batches")
	}
	if slices.Equal(a1, b1) {
		t.Error("two consecutive augmented batches are identical; expected fresh draws")
	}
	a3, _ := run(43)
	if slices.Equal(a1, a3) {
		t.Error("seeds 42 and 43 gave the same batch")
	}
}

// TestAugmentGeometry follows one bright pixel through the crop and flip.
func TestAugmentGeometry(t *testing.T) {
	const H, W, py, px = 5, 6, 1, 2
	d := &Dataset{N: 1, C: 2, H: H, W: W, Images: make([]float32, 2*H*W), Labels: []int{0}, Classes: []string{"a"}}
	d.Images[py*W+px] = 1     // channel 0
	d.Images[H*W+py*W+px] = 1 // channel 1
	// Means are non-zero, so a zero in normalised space is the mean pixel.
	norm := preprocess.Normalization{Mean: []float32{0.2, 0.5}, Std: []float32{0.5, 0.25}}
	bright := []float32{(1 - 0.2) / 0.5, (1 - 0.5) / 0.25}
	dark := []float32{(0 - 0.2) / 0.5, (0 - 0.5) / 0.25}

	// expect builds the image with the pixel at (y, x) (none if outside)
	// and padding (0) wherever the window left the image.
	expect := func(dy, dx int, flip bool) []float32 {
		out := make([]float32, 2*H*W)
		for c := 0; c < 2; c++ {
			for y := 0; y < H; y++ {
				for x := 0; x < W; x++ {
					cx := x
					if flip {
						cx = W - 1 - x
					}
					sy, sx := y+dy, cx+dx
					switch {
					case sy < 0 || sy >= H || sx < 0 || sx >= W:
						out[c*H*W+y*W+x] = 0
					case sy == py && sx == px:
						out[c*H*W+y*W+x] = bright[c]
					default:
						out[c*H*W+y*W+x] = dark[c]
					}
				}
			}
		}
		return out
	}
	// Hand-checked positions first.
	out := make([]float32, 2*H*W)
	d.place(out, d.Image(0), norm, 1, -2, false) // window moved down 1, left 2
	if out[0*W+4] != bright[0] || out[H*W+0*W+4] != bright[1] {
		t.Errorf("shift (1,-2): bright pixel not at (0,4)")
	}
	if out[4*W+0] != 0 || out[0] != 0 || out[W+0] != 0 {
		t.Errorf("shift (1,-2): padding not 0 at the left/bottom: %v", out[:H*W])
	}
	if !slices.Equal(out, expect(1, -2, false)) {
		t.Errorf("shift (1,-2): %v", out[:H*W])
	}
	d.place(out, d.Image(0), norm, 0, 0, true)
	if out[py*W+(W-1-px)] != bright[0] { // (1,2) → (1,3)
		t.Errorf("flip: bright pixel not at (1,3): %v", out[:H*W])
	}

	// Random draws: every offset in -2..2 and both flips occur, and each
	// output is the expected crop/flip for the draws (dy, dx, flip).
	rng := rand.New(rand.NewSource(7))
	mirror := rand.New(rand.NewSource(7))
	seen := map[[3]int]bool{}
	l := make([]int, 1)
	for k := 0; k < 400; k++ {
		d.Batch(out, l, []int{0}, norm, &Augment{Pad: 2, Flip: true}, rng)
		dy, dx := mirror.Intn(5)-2, mirror.Intn(5)-2
		flip := mirror.Intn(2) == 1
		if !slices.Equal(out, expect(dy, dx, flip)) {
			t.Fatalf("draw %d (dy=%d dx=%d flip=%v): got %v", k, dy, dx, flip, out[:H*W])
		}
		f := 0
		if flip {
			f = 1
		}
		seen[[3]int{dy, dx, f}] = true
	}
	if len(seen) != 50 {
		t.Errorf("%d of the 50 (dy, dx, flip) combinations drawn in 400 tries", len(seen))
	}
}

func TestBatchPanicsOnMisuse(t *testing.T) {
	d := rampDataset(2, 1, 2, 2)
	norm := ComputeNormalization(d)
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"dst length", func() { d.Batch(make([]float32, 3), make([]int, 1), []int{0}, norm, nil, nil) }},
		{"labels length", func() { d.Batch(make([]float32, 4), make([]int, 2), []int{0}, norm, nil, nil) }},
		{"index", func() { d.Batch(make([]float32, 4), make([]int, 1), []int{2}, norm, nil, nil) }},
		{"channels", func() { d.Batch(make([]float32, 4), make([]int, 1), []int{0}, preprocess.Normalization{}, nil, nil) }},
		{"nil rng", func() { d.Batch(make([]float32, 4), make([]int, 1), []int{0}, norm, &Augment{Flip: true}, nil) }},
	} {
		func() {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || !strings.HasPrefix(s, "data: Batch: ") {
					t.Errorf("%s: recovered %v, expected a \"data: Batch:\" panic", c.name, r)
				}
			}()
			c.f()
		}()
	}
}

func TestSubset(t *testing.T) {
	d := rampDataset(30, 1, 2, 2)
	d.Classes = []string{"a", "b", "c"}
	for i := range d.Labels {
		d.Labels[i] = i % 3
	}
	s, err := d.Subset([]int{2, 0}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 20 || strings.Join(s.Classes, ",") != "c,a" || s.Labels[0] != 1 || s.Labels[1] != 0 {
		t.Fatalf("subset of labels 2, 0: %d images, classes %q, labels %v…", s.N, s.Classes, s.Labels[:2])
	}
	if s.Image(1)[0] != d.Image(2)[0] {
		t.Errorf("image 1 of the subset is not image 2 of the data")
	}
	few, err := d.Subset(nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, 3)
	for _, l := range few.Labels {
		counts[l]++
	}
	if few.N != 12 || counts[0] != 4 || counts[1] != 4 || counts[2] != 4 {
		t.Errorf("4 per class: %d images, per class %v", few.N, counts)
	}
	if !slices.Equal(few.Images, d.Images[:12*4]) {
		t.Errorf("4 per class are not the first 4 of each class")
	}
	if _, err := d.Subset([]int{3}, 0); err == nil {
		t.Error("label 3 of 3 classes accepted")
	}
}
