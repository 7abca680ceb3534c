package data

import (
	"fmt"
	"image"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pkg/errors"
	"github.com/vitgo/vit/model/vittest"
)

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
	rgb16 := vittest.RandRGB(1, n, n, 1)     // exact size: copied
	gray32 := vittest.RandGray(2, 32, 32, 2) // 2× smaller: exact block means
	rgbWide := vittest.RandRGB(3, 40, 32, 2) // crop x 4..36, then 2× smaller
	rgbTall := vittest.RandRGB(4, 32, 36, 2) // crop y 2..34, then 2× smaller
	jpgRGB := vittest.JPEG(t, vittest.RandRGB(5, n, n, 4))
	jpgGray := vittest.JPEG(t, vittest.RandGray(6, n, n, 4))
	gray8 := image.NewGray(image.Rect(0, 0, 8, 8)) // 2× larger, uniform
	for i := range gray8.Pix {
		gray8.Pix[i] = 77
	}
	// Classes "zebra" and "ant": sorted, "ant" is label 0.
	vittest.WriteFile(t, dir, "train/zebra/a.png", vittest.PNG(t, rgb16))
	vittest.WriteFile(t, dir, "train/zebra/b.PNG", vittest.PNG(t, gray32))
	vittest.WriteFile(t, dir, "train/zebra/notes.txt", []byte("not an image"))
	vittest.WriteFile(t, dir, "train/zebra/.hidden.png", []byte("skipped"))
	vittest.WriteFile(t, dir, "train/ant/c.png", vittest.PNG(t, rgbWide))
	vittest.WriteFile(t, dir, "train/ant/d.jpg", jpgRGB)
	vittest.WriteFile(t, dir, "test/ant/e.png", vittest.PNG(t, rgbTall))
	vittest.WriteFile(t, dir, "test/zebra/f.jpeg", jpgGray)
	vittest.WriteFile(t, dir, "test/zebra/g.png", vittest.PNG(t, gray8))
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

func TestFolderErrors(t *testing.T) {
	img := vittest.PNG(t, vittest.RandRGB(1, 8, 8, 1))
	base := func(t *testing.T) string {
		dir := t.TempDir()
		for _, p := range []string{"train/a/1.png", "train/b/1.png", "test/a/1.png", "test/b/1.png"} {
			vittest.WriteFile(t, dir, p, img)
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
		vittest.WriteFile(t, dir, "test/c/1.png", img)
		_, _, _, err := Load(dir, Options{ImageSize: 8})
		wantErr(t, err, filepath.Join(dir, "test"), "not in train", `"c"`)
	})
	t.Run("undecodable", func(t *testing.T) {
		dir := base(t)
		p := vittest.WriteFile(t, dir, "test/b/2.png", []byte("this is not a PNG file at all"))
		_, _, _, err := Load(dir, Options{ImageSize: 8})
		wantErr(t, err, p, "cannot decode")
	})
	t.Run("truncated png", func(t *testing.T) {
		dir := base(t)
		p := vittest.WriteFile(t, dir, "train/a/2.png", img[:len(img)/2])
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
	vittest.WriteFile(t, dir, "readme.txt", []byte("nothing here"))
	_, _, _, err := Load(dir, Options{})
	wantErr(t, err, dir, "data_batch_1.bin", "train.bin", "idx3-ubyte", "train/<class>")
	_, _, _, err = Load(dir, Options{Format: "tfrecord"})
	wantErr(t, err, `"tfrecord"`, "cifar10", "folder")
	if !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("unknown format: %v is not ErrUnknownFormat", err)
	}
	_, _, _, err = Load(filepath.Join(dir, "absent"), Options{})
	wantErr(t, err, filepath.Join(dir, "absent"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v is not fs.ErrNotExist", err)
	}
	_, err = ReadClassNames(filepath.Join(dir, "absent.txt"), 0)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing class-name file: %v is not fs.ErrNotExist", err)
	}
}
