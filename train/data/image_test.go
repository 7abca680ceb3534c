package data

import (
	"path/filepath"
	"testing"

	"github.com/vitgo/vit/model/preprocess"
	"github.com/vitgo/vit/model/vittest"
)

// TestImageToCHWMatchesFolder checks that preprocess.ToCHW gives, value for value,
// what the folder reader stores for the same files: shrinking, growing,
// non-square crops, gray and colour, 1 and 3 channels.
func TestImageToCHWMatchesFolder(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"a/wide.png":  vittest.PNG(t, vittest.RandRGB(1, 21, 13, 1)),
		"a/gray.png":  vittest.PNG(t, vittest.RandGray(2, 5, 5, 1)),
		"b/photo.jpg": vittest.JPEG(t, vittest.RandRGB(3, 30, 40, 3)),
		"b/exact.png": vittest.PNG(t, vittest.RandRGB(4, 8, 8, 1)),
	}
	for name, b := range files {
		vittest.WriteFile(t, dir, filepath.Join("train", name), b)
		vittest.WriteFile(t, dir, filepath.Join("test", name), b)
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
			if err := preprocess.ToCHW(img, ch, 8, got); err != nil {
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
