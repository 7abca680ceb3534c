package data

import (
	"image"
	"path/filepath"
	"testing"
)

// TestImageToCHWMatchesFolder checks that ImageToCHW gives, value for value,
// what the folder reader stores for the same files: shrinking, growing,
// non-square crops, gray and colour, 1 and 3 channels.
func TestImageToCHWMatchesFolder(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"a/wide.png":  pngBytes(t, randRGB(1, 21, 13, 1)),
		"a/gray.png":  pngBytes(t, randGray(2, 5, 5, 1)),
		"b/photo.jpg": jpegBytes(t, randRGB(3, 30, 40, 3)),
		"b/exact.png": pngBytes(t, randRGB(4, 8, 8, 1)),
	}
	for name, b := range files {
		writeFile(t, dir, filepath.Join("train", name), b)
		writeFile(t, dir, filepath.Join("test", name), b)
	}
	for _, ch := range []int{1, 3} {
		_, test, _, err := Load(dir, Options{Format: FormatFolder, ImageSize: 8, Channels: ch})
		if err != nil {
			t.Fatal(err)
		}
		order := []string{"a/gray.png", "a/wide.png", "b/exact.png", "b/photo.jpg"}
		if test.N != len(order) {
			t.Fatalf("%d test images, expected %d", test.N, len(order))
		}
		for i, name := range order {
			img := decodeFile(t, filepath.Join(dir, "test", name))
			got := make([]float32, ch*8*8)
			if err := ImageToCHW(img, ch, 8, got); err != nil {
				t.Fatal(err)
			}
			want := test.Image(i)
			for j := range want {
				if got[j] != want[j] {
					t.Fatalf("%d channels, %s: value %d = %v, the folder reader has %v", ch, name, j, got[j], want[j])
				}
			}
		}
	}
}

func TestImageToCHWErrors(t *testing.T) {
	ok := randRGB(1, 4, 4, 1)
	var nilImg image.Image
	wantErr(t, ImageToCHW(nilImg, 3, 4, make([]float32, 48)), "nil image")
	wantErr(t, ImageToCHW(ok, 2, 4, make([]float32, 32)), "2 channels", "expected 1 or 3")
	wantErr(t, ImageToCHW(ok, 3, 0, nil), "size 0")
	wantErr(t, ImageToCHW(ok, 3, 4, make([]float32, 47)), "47 values", "expected 48")
	wantErr(t, ImageToCHW(image.NewRGBA(image.Rect(3, 3, 3, 9)), 3, 4, make([]float32, 48)), "0×6", "non-empty")
}
