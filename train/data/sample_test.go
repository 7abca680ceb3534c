package data

import (
	"path/filepath"
	"testing"
)

// TestFashionSample loads the shipped sample (testdata/fashion-sample) the
// way the default training run does.
func TestFashionSample(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "fashion-sample")
	train, test, format, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if format != FormatCIFAR10 {
		t.Errorf("format %q, expected cifar10", format)
	}
	want := []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
	for _, c := range []struct {
		name string
		d    *Dataset
		n    int
	}{{"train", train, 5000}, {"test", test, 1000}} {
		d := c.d
		if d.N != c.n || len(d.Labels) != c.n || d.C != 3 || d.H != 32 || d.W != 32 || len(d.Images) != c.n*3*32*32 {
			t.Fatalf("%s: N=%d (%d labels), C,H,W=%d,%d,%d; expected %d images of 3×32×32", c.name, d.N, len(d.Labels), d.C, d.H, d.W, c.n)
		}
		if len(d.Classes) != 10 {
			t.Fatalf("%s: %d classes, expected 10", c.name, len(d.Classes))
		}
		for i, name := range want {
			if d.Classes[i] != name {
				t.Errorf("%s: class %d is %q, expected %q", c.name, i, d.Classes[i], name)
			}
		}
		counts := make([]int, 10)
		for i, l := range d.Labels {
			if l < 0 || l >= 10 {
				t.Fatalf("%s: label %d of image %d out of range", c.name, l, i)
			}
			counts[l]++
		}
		for k, n := range counts {
			if n == 0 {
				t.Errorf("%s: class %d (%s) has no images", c.name, k, want[k])
			}
		}
		// Gray padded to 32×32: R = G = B, a 2-pixel black border, and some
		// ink inside.
		for i := 0; i < d.N; i += 97 {
			img := d.Image(i)
			sum := float32(0)
			for y := 0; y < 32; y++ {
				for x := 0; x < 32; x++ {
					r, g, b := img[y*32+x], img[1024+y*32+x], img[2048+y*32+x]
					if r != g || g != b {
						t.Fatalf("%s image %d (%d,%d): R,G,B = %v,%v,%v, expected equal", c.name, i, y, x, r, g, b)
					}
					if (y < 2 || y >= 30 || x < 2 || x >= 30) && r != 0 {
						t.Fatalf("%s image %d (%d,%d) = %v, expected the zero border", c.name, i, y, x, r)
					}
					sum += r
				}
			}
			if sum < 1 {
				t.Errorf("%s image %d is blank", c.name, i)
			}
		}
		t.Logf("%s: %d images, per class %v", c.name, d.N, counts)
	}
}
