package data

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

// levelImage returns a c×h×w image of 8-bit levels f(ch, y, x)/255.
func levelImage(c, h, w int, f func(ch, y, x int) int) []float32 {
	img := make([]float32, c*h*w)
	for ch := 0; ch < c; ch++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				img[(ch*h+y)*w+x] = float32(f(ch, y, x)) / 255
			}
		}
	}
	return img
}

func TestParsePolicy(t *testing.T) {
	for _, c := range []struct {
		in       string
		policy   string
		ops, mag int
		wantErr  bool
	}{
		{"", "", 0, 0, false}, {"none", "", 0, 0, false},
		{"randaugment", PolicyRandAugment, 2, 9, false},
		{"randaugment-n3-m15", PolicyRandAugment, 3, 15, false},
		{"randaugment-m5", PolicyRandAugment, 2, 5, false},
		{"trivialaugment", PolicyTrivialAugment, 1, 0, false},
		{"randaugment-m31", "", 0, 0, true}, {"randaugment-n0", "", 0, 0, true},
		{"randaugment-x2", "", 0, 0, true}, {"autoaugment", "", 0, 0, true},
	} {
		p, o, m, err := ParsePolicy(c.in)
		if (err != nil) != c.wantErr || p != c.policy || o != c.ops || m != c.mag {
			t.Errorf("ParsePolicy(%q) = %q, %d, %d, %v", c.in, p, o, m, err)
		}
	}
}

// TestOps: each operation against what it must do on images whose result
// is known.
func TestOps(t *testing.T) {
	const h, w = 8, 10
	ramp := levelImage(1, h, w, func(_, y, x int) int { return 20 + 2*(y*w+x) }) // 20..178
	tmp := make([]float32, 3*h*w)
	apply := func(o op, mag float64, img []float32, c int) []float32 {
		out := slices.Clone(img)
		applyOp(o, mag, out, tmp, c, h, w)
		return out
	}
	lv := func(v float32) int { return int(level(v)) }
	if !slices.Equal(apply(opIdentity, 0, ramp, 1), ramp) || !slices.Equal(apply(opShearX, 0, ramp, 1), ramp) ||
		!slices.Equal(apply(opBrightness, 0, ramp, 1), ramp) || !slices.Equal(apply(opSharpness, 0, ramp, 1), ramp) {
		t.Error("a zero-magnitude operation changed the image")
	}
	// Translation by 3 columns: out(y, x) = in(y, x−3), black at the left.
	tr := apply(opTranslateX, 3, ramp, 1)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			want := float32(0)
			if x >= 3 {
				want = ramp[y*w+x-3]
			}
			if tr[y*w+x] != want {
				t.Fatalf("TranslateX 3: (%d, %d) = %v, want %v", y, x, tr[y*w+x], want)
			}
		}
	}
	// Rotation: four quarter turns of a square image give it back, one does not.
	sq := levelImage(1, 8, 8, func(_, y, x int) int { return 1 + y*8 + x })
	tmp8 := make([]float32, 64)
	r := slices.Clone(sq)
	for i := 0; i < 4; i++ {
		affine(r, tmp8, 1, 8, 8, 90, [2]float64{}, [2]float64{}, 4, 4)
		if i == 0 && slices.Equal(r, sq) {
			t.Fatal("a quarter turn left the image as it was")
		}
		if i == 0 && r[0] != sq[7] && r[0] != sq[56] {
			t.Fatalf("a quarter turn moved corner %v, not a neighbouring corner", r[0])
		}
	}
	if !slices.Equal(r, sq) {
		t.Fatal("four quarter turns did not give the image back")
	}
	// Photometric operations on levels.
	black := apply(opBrightness, -1, ramp, 1)
	for _, v := range black {
		if v != 0 {
			t.Fatal("brightness factor 0 is not black")
		}
	}
	flat := apply(opContrast, -1, ramp, 1)
	mean := 0.0
	for _, v := range ramp {
		mean += float64(lv(v))
	}
	mean = math.Floor(mean/float64(len(ramp)) + 0.5)
	for _, v := range flat {
		if float64(lv(v)) != mean {
			t.Fatalf("contrast factor 0 gave level %d, want the mean %v", lv(v), mean)
		}
	}
	post := apply(opPosterize, 4, ramp, 1)
	sol := apply(opSolarize, 100, ramp, 1)
	auto := apply(opAutoContrast, 0, ramp, 1)
	for i, v := range ramp {
		l := lv(v)
		if lv(post[i]) != l&0xF0 {
			t.Fatalf("posterize 4 bits: %d → %d", l, lv(post[i]))
		}
		want := l
		if l >= 100 {
			want = 255 - l
		}
		if lv(sol[i]) != want {
			t.Fatalf("solarize at 100: %d → %d, want %d", l, lv(sol[i]), want)
		}
		if wantA := int(float64(l-20) * 255 / 158); lv(auto[i]) != wantA {
			t.Fatalf("autocontrast: %d → %d, want %d", l, lv(auto[i]), wantA)
		}
	}
	// Equalize spreads a two-level image over the range (PIL's algorithm:
	// 1,024 pixels, step 2, levels 100 → 0 and 110 → 255); with too few
	// pixels for a step (80 here) it leaves the image, as PIL does; a flat
	// image stays.
	big := levelImage(1, 32, 32, func(_, y, x int) int { return 100 + 10*((y*32+x)%2) })
	eq := slices.Clone(big)
	equalize(eq)
	if lv(eq[0]) != 0 || lv(eq[1]) != 255 {
		t.Errorf("equalize of levels 100/110 gave %d/%d, want 0 and 255", lv(eq[0]), lv(eq[1]))
	}
	small := levelImage(1, h, w, func(_, y, x int) int { return 100 + 10*((y*w+x)%2) })
	if !slices.Equal(apply(opEqualize, 0, small, 1), small) {
		t.Error("equalize changed an image with too few pixels for a step")
	}
	one := levelImage(1, h, w, func(_, _, _ int) int { return 77 })
	if !slices.Equal(apply(opEqualize, 0, one, 1), one) {
		t.Error("equalize changed a flat image")
	}
	// Colour: factor 0 makes the three channels the image's luma.
	rgb := levelImage(3, h, w, func(ch, y, x int) int { return (ch*80 + y*7 + x*3) % 256 })
	gray := apply(opColor, -1, rgb, 3)
	for i := 0; i < h*w; i++ {
		if gray[i] != gray[h*w+i] || gray[i] != gray[2*h*w+i] {
			t.Fatalf("saturation 0: pixel %d has channels %v %v %v", i, gray[i], gray[h*w+i], gray[2*h*w+i])
		}
	}
}

// TestPolicy: the same draws give the same image, a gray image never
// draws Color, and TrivialAugment and RandAugment both change images.
func TestPolicy(t *testing.T) {
	const h, w = 12, 12
	img := levelImage(1, h, w, func(_, y, x int) int { return (y*31 + x*17) % 256 })
	tmp := make([]float32, h*w)
	for _, spec := range []string{"randaugment", "randaugment-n3-m20", "trivialaugment"} {
		p, ops, m, err := ParsePolicy(spec)
		if err != nil {
			t.Fatal(err)
		}
		aug := &Augment{Policy: p, Ops: ops, Magnitude: m}
		changed := 0
		for seed := int64(0); seed < 40; seed++ {
			a, b := slices.Clone(img), slices.Clone(img)
			applyPolicy(a, tmp, 1, h, w, aug, rand.New(rand.NewSource(seed)))
			applyPolicy(b, tmp, 1, h, w, aug, rand.New(rand.NewSource(seed)))
			if !slices.Equal(a, b) {
				t.Fatalf("%s: the same seed gave two images", spec)
			}
			if !slices.Equal(a, img) {
				changed++
			}
			for _, v := range a {
				if v < 0 || v > 1 {
					t.Fatalf("%s: value %v outside [0, 1]", spec, v)
				}
			}
		}
		if changed < 20 {
			t.Errorf("%s changed only %d of 40 images", spec, changed)
		}
	}
}

// TestErase: with probability 1 a rectangle of 2–33% of the image is set
// to 0 on every channel and nothing else changes; with 0 nothing is drawn.
func TestErase(t *testing.T) {
	const c, h, w = 3, 28, 28
	rng := rand.New(rand.NewSource(1))
	for trial := 0; trial < 50; trial++ {
		img := make([]float32, c*h*w)
		for i := range img {
			img[i] = 1 + rng.Float32()
		}
		erase(img, c, h, w, 1, rng)
		zeros := 0
		for i := 0; i < h*w; i++ {
			z := img[i] == 0
			if z != (img[h*w+i] == 0) || z != (img[2*h*w+i] == 0) {
				t.Fatal("erasing differs between channels")
			}
			if z {
				zeros++
			}
		}
		if zeros == 0 || zeros > h*w/3+h+w {
			t.Fatalf("erased %d of %d pixels", zeros, h*w)
		}
	}
	img := []float32{1, 2, 3, 4}
	r := rand.New(rand.NewSource(2))
	erase(img, 1, 2, 2, 0, r)
	if !slices.Equal(img, []float32{1, 2, 3, 4}) {
		t.Error("erasing with probability 0 changed the image")
	}
}

// TestMix: Mixup keeps each pair's sum and mixes targets by λ; CutMix
// swaps one box between the pair, its λ the share left; targets stay
// distributions; Beta(1, 1) is uniform.
func TestMix(t *testing.T) {
	const n, c, h, w, k = 5, 2, 6, 6, 3
	chw := c * h * w
	rng := rand.New(rand.NewSource(4))
	x0 := make([]float32, n*chw)
	for i := range x0 {
		x0[i] = float32(rng.Intn(100))
	}
	y0 := make([]float32, n*k)
	for i := 0; i < n; i++ {
		y0[i*k+i%k] = 1
	}
	for _, m := range []Mix{{Mixup: 0.8}, {CutMix: 1}} {
		x, y := slices.Clone(x0), slices.Clone(y0)
		lam := m.Apply(x, y, n, c, h, w, k, rng)
		if lam < 0 || lam > 1 {
			t.Fatalf("%+v: λ = %v", m, lam)
		}
		for i := 0; i < n; i++ {
			var s float32
			for j := 0; j < k; j++ {
				s += y[i*k+j]
			}
			if math.Abs(float64(s)-1) > 1e-6 {
				t.Fatalf("%+v: target %d sums to %v", m, i, s)
			}
			j := n - 1 - i
			for q := 0; q < k; q++ {
				want := float32(lam)*y0[i*k+q] + float32(1-lam)*y0[j*k+q]
				if i == j {
					want = y0[i*k+q]
				}
				if math.Abs(float64(y[i*k+q]-want)) > 1e-6 {
					t.Fatalf("%+v: target %d[%d] = %v, want %v", m, i, q, y[i*k+q], want)
				}
			}
		}
		mid := n / 2
		if !slices.Equal(x[mid*chw:(mid+1)*chw], x0[mid*chw:(mid+1)*chw]) {
			t.Errorf("%+v: the middle image (its own mirror) changed", m)
		}
		own := 0
		for p := 0; p < chw; p++ {
			a, b := x0[p], x0[(n-1)*chw+p]
			ga, gb := x[p], x[(n-1)*chw+p]
			if math.Abs(float64(ga+gb-a-b)) > 1e-3 {
				t.Fatalf("%+v: pixel %d of the first pair sums to %v, was %v", m, p, ga+gb, a+b)
			}
			if m.CutMix > 0 && ga == a && gb == b {
				own++
			}
		}
		if m.CutMix > 0 {
			// Pixels where the two images differ are the ones swapped.
			if got := float64(own) / float64(chw); got < lam-0.05 {
				t.Errorf("CutMix: %.2f of the pixels are the image's own, λ = %.2f", got, lam)
			}
		}
	}
	// Beta(1, 1): mean 1/2, variance 1/12.
	var s, q float64
	const draws = 20000
	for i := 0; i < draws; i++ {
		v := betaSym(1, rng)
		s += v
		q += v * v
	}
	mean, vr := s/draws, q/draws-(s/draws)*(s/draws)
	if math.Abs(mean-0.5) > 0.01 || math.Abs(vr-1.0/12) > 0.005 {
		t.Errorf("Beta(1,1): mean %.4f, variance %.4f", mean, vr)
	}
	if (Mix{Mixup: -1}).Check() == nil || (Mix{CutMix: math.Inf(1)}).Check() == nil {
		t.Error("bad alphas accepted")
	}
}
