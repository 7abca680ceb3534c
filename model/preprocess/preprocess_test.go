package preprocess

import (
	"bytes"
	"errors"
	"image"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vitgo/vit/model/vittest"
)

// wantErr fails unless err is non-nil, starts with "preprocess: " and contains every
// one of parts.
var wantErr = vittest.WantErrFrom("preprocess: ")

func TestToCHWErrors(t *testing.T) {
	ok := vittest.RandRGB(1, 4, 4, 1)
	var nilImg image.Image
	wantErr(t, ToCHW(nilImg, 3, 4, make([]float32, 48)), "nil image")
	wantErr(t, ToCHW(ok, 2, 4, make([]float32, 32)), "2 channels", "expected 1 or 3")
	wantErr(t, ToCHW(ok, 3, 0, nil), "size 0")
	wantErr(t, ToCHW(ok, 3, 4, make([]float32, 47)), "47 values", "expected 48")
	wantErr(t, ToCHW(image.NewRGBA(image.Rect(3, 3, 3, 9)), 3, 4, make([]float32, 48)), "0×6", "non-empty")
}

// TestToImageRoundTrip checks that 8-bit pixels survive ToImage and ToCHW
// unchanged, gray and colour.
func TestToImageRoundTrip(t *testing.T) {
	for _, ch := range []int{1, 3} {
		px := vittest.RandBytes(int64(ch), ch*5*5)
		x := make([]float32, len(px))
		for i, b := range px {
			x[i] = float32(b) / 255
		}
		img, err := ToImage(x, ch, 5, 5)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(x))
		if err := ToCHW(img, ch, 5, got); err != nil {
			t.Fatal(err)
		}
		for i := range x {
			if math.Abs(float64(got[i]-x[i])) > 1e-6 {
				t.Fatalf("%d channels: value %d = %v, expected %v", ch, i, got[i], x[i])
			}
		}
	}
	_, err := ToImage(make([]float32, 10), 2, 5, 1)
	wantErr(t, err, "c = 1 or 3")
}

func TestResampleWeights(t *testing.T) {
	apply := func(row []float32, n int) []float32 {
		out := make([]float32, n)
		for i, taps := range resampleWeights(len(row), n) {
			for _, tp := range taps {
				out[i] += tp.w * row[tp.i]
			}
		}
		return out
	}
	near := func(what string, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-6 {
				t.Fatalf("%s: %v, expected %v", what, got, want)
			}
		}
	}
	// Area averaging 3 → 2: output 0 covers [0, 1.5), output 1 covers [1.5, 3).
	near("area 3→2", apply([]float32{0, 0.3, 0.9}, 2), []float32{0.1, 0.7})
	// Area averaging 4 → 2: pair means.
	near("area 4→2", apply([]float32{0, 0.2, 0.4, 1}, 2), []float32{0.1, 0.7})
	// Linear 2 → 4: centres at -0.25, 0.25, 0.75, 1.25 (edges clamped).
	near("linear 2→4", apply([]float32{0, 1}, 4), []float32{0, 0.25, 0.75, 1})
	// Same size: identity.
	near("identity", apply([]float32{0.1, 0.5, 0.3}, 3), []float32{0.1, 0.5, 0.3})
	for _, c := range [][2]int{{7, 3}, {3, 7}, {32, 24}, {28, 32}, {5, 1}} {
		for i, taps := range resampleWeights(c[0], c[1]) {
			sum := 0.0
			for _, tp := range taps {
				if tp.i < 0 || tp.i >= c[0] || tp.w <= 0 {
					t.Fatalf("%d→%d output %d: bad tap %+v", c[0], c[1], i, tp)
				}
				sum += float64(tp.w)
			}
			if math.Abs(sum-1) > 1e-6 {
				t.Fatalf("%d→%d output %d: weights sum to %v, expected 1", c[0], c[1], i, sum)
			}
		}
	}
}

func TestNormalization(t *testing.T) {
	n := Normalization{Mean: []float32{0.5, 0.25}, Std: []float32{0.5, 0.25}}
	x := []float32{0, 1, 0.25, 0.5, 1, 0, 0.5, 0.75}
	if err := n.Apply(x, 2); err != nil {
		t.Fatal(err)
	}
	want := []float32{-1, 1, 0, 1, 1, -1, 1, 2}
	for i := range want {
		if x[i] != want[i] {
			t.Fatalf("normalised %v, expected %v", x, want)
		}
	}
	wantErr(t, n.Apply(make([]float32, 6), 2), "6 values", "2 channels")
	wantErr(t, n.Check(3), "2 means", "expected 3")
	wantErr(t, Normalization{Mean: []float32{0}, Std: []float32{0}}.Check(1), "positive std")
	if err := Identity(3).Check(3); err != nil {
		t.Error(err)
	}
}

// TestDecodeErrors checks that a missing file, a file that is no image and
// an image too large are told apart with errors.Is, and named.
func TestDecodeErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "absent.png")
	_, err := DecodeFile(missing)
	wantErr(t, err, missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v is not fs.ErrNotExist", err)
	}
	text := vittest.WriteFile(t, dir, "text.png", []byte("this is not a PNG file at all"))
	_, err = DecodeFile(text)
	wantErr(t, err, text, "cannot decode")
	if !errors.Is(err, image.ErrFormat) {
		t.Errorf("not an image: %v is not image.ErrFormat", err)
	}
	huge := vittest.WriteFile(t, dir, "huge.png", vittest.PNGWithSize(t, 100000, 100000))
	_, err = DecodeFile(huge)
	wantErr(t, err, huge, "100000×100000")
	if !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("huge image: %v is not ErrTooManyPixels", err)
	}
	// A smaller limit: 64×64 passes 4096 pixels, 65×64 does not.
	if _, err := DecodeLimit(bytes.NewReader(vittest.PNG(t, vittest.RandRGB(1, 64, 64, 1))), 64*64); err != nil {
		t.Errorf("64×64 under a limit of 4096 pixels: %v", err)
	}
	_, err = DecodeLimit(bytes.NewReader(vittest.PNG(t, vittest.RandRGB(1, 65, 64, 1))), 64*64)
	if err == nil || !strings.Contains(err.Error(), "65×64 pixels, expected 1 to 4096 pixels") {
		t.Errorf("65×64 over 4096 pixels: error %v", err)
	}
	if !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("65×64 over 4096 pixels: %v is not ErrTooManyPixels", err)
	}
	full := vittest.PNG(t, vittest.RandRGB(1, 6, 6, 1))
	trunc := vittest.WriteFile(t, dir, "trunc.png", full[:len(full)/2])
	_, err = DecodeFile(trunc)
	wantErr(t, err, trunc, "cannot decode it as PNG")
}

func TestListImages(t *testing.T) {
	dir := t.TempDir()
	b := vittest.PNG(t, vittest.RandGray(1, 2, 2, 1))
	for _, name := range []string{"b.PNG", "a.jpg", ".hidden.png", "notes.txt", "sub/c.png"} {
		vittest.WriteFile(t, dir, name, b)
	}
	empty := filepath.Join(dir, "sub", "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	one := filepath.Join(dir, "notes.txt")
	files, errs := ListImages([]string{dir, one, filepath.Join(dir, "absent"), empty})
	want := []string{filepath.Join(dir, "a.jpg"), filepath.Join(dir, "b.PNG"), one}
	if strings.Join(files, "|") != strings.Join(want, "|") {
		t.Errorf("files %q, expected %q", files, want)
	}
	if len(errs) != 2 || !errors.Is(errs[0], fs.ErrNotExist) {
		t.Fatalf("errors %v, expected a missing path and an empty directory", errs)
	}
	wantErr(t, errs[1], empty, "no .png")
}

func FuzzDecode(f *testing.F) {
	img := image.NewRGBA(image.Rect(0, 0, 5, 3))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 37)
	}
	gray := image.NewGray16(image.Rect(0, 0, 4, 4))
	gray.Pix[5] = 200
	f.Add(vittest.PNG(f, img))
	f.Add(vittest.JPEG(f, img))
	f.Add(vittest.PNG(f, gray))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "img")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := DecodeFile(p)
		if err != nil {
			return
		}
		tm, err := TimmEval(8, 0.9, Bicubic, Half)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range []Transform{TrainTransform(8, 1, Identity(1)), TrainTransform(8, 3, Identity(3)), tm} {
			dst := make([]float32, tr.Channels*tr.Size*tr.Size)
			if err := tr.Pixels(img, dst); err != nil {
				if tr.Resize != 0 && strings.Contains(err.Error(), "expected sides of 1..") {
					continue // an aspect ratio beyond MaxSize:size is refused with a clear error
				}
				t.Fatal(err) // a decoded image within the pixel limit always converts
			}
			ch := tr.Channels
			for i, v := range dst {
				if !(v >= 0 && v <= 1) || math.IsNaN(float64(v)) {
					t.Fatalf("%d channel(s): value %d = %v, outside [0, 1]", ch, i, v)
				}
			}
		}
	})
}

// TestToCHWAsWholeCrop: ToCHW, which converts and resamples the crop a
// strip of rows at a time, gives bit for bit what converting the whole crop
// and then resampling it gives (the arithmetic of the training pipeline
// must not change).
func TestToCHWAsWholeCrop(t *testing.T) {
	for _, c := range []struct{ w, h, ch, size int }{{45, 30, 3, 8}, {30, 45, 1, 8}, {37, 37, 3, 16}, {12, 20, 3, 20}, {100, 70, 1, 7}} {
		imgs := []image.Image{vittest.RandRGB(int64(c.w), c.w, c.h, 1), vittest.RandGray(int64(c.h), c.w, c.h, 1)}
		jpg, err := Decode(bytes.NewReader(vittest.JPEG(t, imgs[0])))
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range append(imgs, jpg) {
			got := make([]float32, c.ch*c.size*c.size)
			if err := ToCHW(img, c.ch, c.size, got); err != nil {
				t.Fatal(err)
			}
			s := min(c.w, c.h)
			b := img.Bounds()
			crop := image.Rect(b.Min.X+(c.w-s)/2, b.Min.Y+(c.h-s)/2, b.Min.X+(c.w-s)/2+s, b.Min.Y+(c.h-s)/2+s)
			whole := make([]float32, c.ch*s*s)
			toPlanes(img, crop, c.ch, whole)
			want := make([]float32, len(got))
			wt := resampleWeights(s, c.size)
			n := c.size
			for ch := 0; ch < c.ch; ch++ {
				tmp := make([]float32, s*n)
				for y := 0; y < s; y++ {
					for x, taps := range wt {
						var v float32
						for _, tp := range taps {
							v += tp.w * whole[ch*s*s+y*s+tp.i]
						}
						tmp[y*n+x] = v
					}
				}
				for y, taps := range wt {
					for x := 0; x < n; x++ {
						var v float32
						for _, tp := range taps {
							v += tp.w * tmp[tp.i*n+x]
						}
						want[ch*n*n+y*n+x] = min(max(v, 0), 1)
					}
				}
			}
			if s == c.size {
				copy(want, whole)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%d×%d %T to %d×%d×%d: ToCHW differs from the whole-crop conversion", c.w, c.h, img, c.ch, c.size, c.size)
			}
		}
	}
}
