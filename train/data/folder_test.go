package data

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func pngBytes(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// randRGB is a w×h opaque colour image of random pixels, constant on
// block×block squares (block 1 = every pixel random).
func randRGB(seed int64, w, h, block int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	px := randBytes(seed, 3*w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			k := 3 * ((y/block)*w + x/block)
			img.SetNRGBA(x, y, color.NRGBA{px[k], px[k+1], px[k+2], 255})
		}
	}
	return img
}

func randGray(seed int64, w, h, block int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	px := randBytes(seed, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetGray(x, y, color.Gray{px[(y/block)*w+x/block]})
		}
	}
	return img
}

// planes returns the expected ch×n×n pixels of img at (x0, y0) sampled every
// step pixels — for block images, the exact result of area averaging.
func planes(img image.Image, ch, n, x0, y0, step int) []float32 {
	out := make([]float32, ch*n*n)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			r, g, b, _ := img.At(x0+x*step, y0+y*step).RGBA()
			o := y*n + x
			if ch == 3 {
				out[o], out[n*n+o], out[2*n*n+o] = float32(r)/65535, float32(g)/65535, float32(b)/65535
			} else if r == g && g == b {
				out[o] = float32(r) / 65535
			} else {
				out[o] = float32((0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)) / 65535)
			}
		}
	}
	return out
}

func decodeFile(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestFolder(t *testing.T) {
	dir := t.TempDir()
	const n = 16
	rgb16 := randRGB(1, n, n, 1)     // exact size: copied
	gray32 := randGray(2, 32, 32, 2) // 2× smaller: exact block means
	rgbWide := randRGB(3, 40, 32, 2) // crop x 4..36, then 2× smaller
	rgbTall := randRGB(4, 32, 36, 2) // crop y 2..34, then 2× smaller
	jpgRGB := jpegBytes(t, randRGB(5, n, n, 4))
	jpgGray := jpegBytes(t, randGray(6, n, n, 4))
	gray8 := image.NewGray(image.Rect(0, 0, 8, 8)) // 2× larger, uniform
	for i := range gray8.Pix {
		gray8.Pix[i] = 77
	}
	// Classes "zebra" and "ant": sorted, "ant" is label 0.
	writeFile(t, dir, "train/zebra/a.png", pngBytes(t, rgb16))
	writeFile(t, dir, "train/zebra/b.PNG", pngBytes(t, gray32))
	writeFile(t, dir, "train/zebra/notes.txt", []byte("not an image"))
	writeFile(t, dir, "train/zebra/.hidden.png", []byte("skipped"))
	writeFile(t, dir, "train/ant/c.png", pngBytes(t, rgbWide))
	writeFile(t, dir, "train/ant/d.jpg", jpgRGB)
	writeFile(t, dir, "test/ant/e.png", pngBytes(t, rgbTall))
	writeFile(t, dir, "test/zebra/f.jpeg", jpgGray)
	writeFile(t, dir, "test/zebra/g.png", pngBytes(t, gray8))
	if err := os.MkdirAll(filepath.Join(dir, "train", ".cache"), 0o755); err != nil {
		t.Fatal(err)
	}

	for _, ch := range []int{3, 1} {
		t.Run(fmt.Sprintf("channels=%d", ch), func(t *testing.T) {
			train, test, format, err := Load(dir, Options{ImageSize: n, Channels: ch})
			if err != nil {
				t.Fatal(err)
			}
			if format != FormatFolder {
				t.Fatalf("format %q, expected folder", format)
			}
			if !slices.Equal(train.Classes, []string{"ant", "zebra"}) || !slices.Equal(test.Classes, train.Classes) {
				t.Fatalf("classes %q / %q, expected [ant zebra]", train.Classes, test.Classes)
			}
			if train.N != 4 || test.N != 3 || train.C != ch || train.H != n || train.W != n || test.C != ch {
				t.Fatalf("shapes: train N,C,H,W = %d,%d,%d,%d, test N = %d", train.N, train.C, train.H, train.W, test.N)
			}
			if !slices.Equal(train.Labels, []int{0, 0, 1, 1}) || !slices.Equal(test.Labels, []int{0, 1, 1}) {
				t.Errorf("labels %v / %v", train.Labels, test.Labels)
			}
			exact := func(what string, got, want []float32) {
				t.Helper()
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s: value %d = %v, expected %v", what, i, got[i], want[i])
					}
				}
			}
			exact("wide png (centre crop, 2× area)", train.Image(0), planes(rgbWide, ch, n, 4, 0, 2))
			exact("rgb jpeg", train.Image(1), planes(decodeFile(t, filepath.Join(dir, "train/ant/d.jpg")), ch, n, 0, 0, 1))
			exact("rgb png", train.Image(2), planes(rgb16, ch, n, 0, 0, 1))
			exact("gray png (2× area)", train.Image(3), planes(gray32, ch, n, 0, 0, 2))
			exact("tall png (centre crop, 2× area)", test.Image(0), planes(rgbTall, ch, n, 0, 2, 2))
			exact("gray jpeg", test.Image(1), planes(decodeFile(t, filepath.Join(dir, "test/zebra/f.jpeg")), ch, n, 0, 0, 1))
			for i, v := range test.Image(2) {
				if math.Abs(float64(v)-77.0/255) > 1e-6 {
					t.Fatalf("uniform 8×8 gray enlarged: value %d = %v, expected %v", i, v, 77.0/255)
				}
			}
		})
	}

	// Default size 32 and 3 channels: the 16×16 image is enlarged.
	train, _, _, err := Load(dir, Options{Format: "folder"})
	if err != nil {
		t.Fatal(err)
	}
	if train.C != 3 || train.H != 32 || train.W != 32 {
		t.Errorf("defaults give %d×%d×%d, expected 3×32×32", train.C, train.H, train.W)
	}
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

func TestFolderErrors(t *testing.T) {
	img := pngBytes(t, randRGB(1, 8, 8, 1))
	base := func(t *testing.T) string {
		dir := t.TempDir()
		for _, p := range []string{"train/a/1.png", "train/b/1.png", "test/a/1.png", "test/b/1.png"} {
			writeFile(t, dir, p, img)
		}
		return dir
	}
	t.Run("class missing from test", func(t *testing.T) {
		dir := base(t)
		if err := os.RemoveAll(filepath.Join(dir, "test/b")); err != nil {
			t.Fatal(err)
		}
		_, _, _, err := Load(dir, Options{ImageSize: 8})
		wantErr(t, err, filepath.Join(dir, "test"), "missing from test", `"b"`)
	})
	t.Run("class not in train", func(t *testing.T) {
		dir := base(t)
		writeFile(t, dir, "test/c/1.png", img)
		_, _, _, err := Load(dir, Options{ImageSize: 8})
		wantErr(t, err, filepath.Join(dir, "test"), "not in train", `"c"`)
	})
	t.Run("undecodable", func(t *testing.T) {
		dir := base(t)
		p := writeFile(t, dir, "test/b/2.png", []byte("this is not a PNG file at all"))
		_, _, _, err := Load(dir, Options{ImageSize: 8})
		wantErr(t, err, p, "cannot decode")
	})
	t.Run("truncated png", func(t *testing.T) {
		dir := base(t)
		p := writeFile(t, dir, "train/a/2.png", img[:len(img)/2])
		_, _, _, err := Load(dir, Options{ImageSize: 8})
		wantErr(t, err, p, "cannot decode")
	})
	t.Run("empty training class", func(t *testing.T) {
		dir := base(t)
		if err := os.Remove(filepath.Join(dir, "train/b/1.png")); err != nil {
			t.Fatal(err)
		}
		_, _, _, err := Load(dir, Options{ImageSize: 8})
		wantErr(t, err, filepath.Join(dir, "train/b"), "at least one")
	})
	t.Run("no test folder", func(t *testing.T) {
		dir := base(t)
		if err := os.RemoveAll(filepath.Join(dir, "test")); err != nil {
			t.Fatal(err)
		}
		_, _, _, err := Load(dir, Options{ImageSize: 8})
		wantErr(t, err, filepath.Join(dir, "test"))
	})
	t.Run("bad options", func(t *testing.T) {
		dir := base(t)
		_, _, _, err := Load(dir, Options{Channels: 2})
		wantErr(t, err, dir, "2 channels", "1 or 3")
		_, _, _, err = Load(dir, Options{ImageSize: -4})
		wantErr(t, err, dir, "image size -4")
	})
}

func TestDetectAndFormatErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "readme.txt", []byte("nothing here"))
	_, _, _, err := Load(dir, Options{})
	wantErr(t, err, dir, "data_batch_1.bin", "train.bin", "idx3-ubyte", "train/<class>")
	_, _, _, err = Load(dir, Options{Format: "tfrecord"})
	wantErr(t, err, `"tfrecord"`, "cifar10", "folder")
	_, _, _, err = Load(filepath.Join(dir, "absent"), Options{})
	wantErr(t, err, filepath.Join(dir, "absent"))
}
