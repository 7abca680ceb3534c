package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vitgo/vit/model/vittest"
)

// idxBytes builds an IDX file: magic, big-endian dimensions, data.
func idxBytes(magic uint32, dims []uint32, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(data)
	return b.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes()
}

// idxSplit writes prefix-images/labels files (gzipped if gz) with n images of
// h×w and the given labels; it returns the image bytes.
func idxSplit(t *testing.T, dir, prefix string, gz bool, h, w int, labels []byte, seed int64) []byte {
	t.Helper()
	px := vittest.RandBytes(seed, len(labels)*h*w)
	img := idxBytes(idxImagesMagic, []uint32{uint32(len(labels)), uint32(h), uint32(w)}, px)
	lbl := idxBytes(idxLabelsMagic, []uint32{uint32(len(labels))}, labels)
	ext := ""
	if gz {
		img, lbl, ext = gzipBytes(t, img), gzipBytes(t, lbl), ".gz"
	}
	vittest.WriteFile(t, dir, prefix+"-images-idx3-ubyte"+ext, img)
	vittest.WriteFile(t, dir, prefix+"-labels-idx1-ubyte"+ext, lbl)
	return px
}

func TestIDX(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			dir := t.TempDir()
			// 5 rows × 4 columns, so that H and W cannot be swapped unnoticed.
			ptr := idxSplit(t, dir, "train", gz, 5, 4, []byte{9, 0, 4}, 1)
			pte := idxSplit(t, dir, "t10k", !gz, 5, 4, []byte{2, 7}, 2) // the other kind
			train, test, format, err := Load(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if format != FormatIDX {
				t.Fatalf("format %q, expected idx", format)
			}
			if train.N != 3 || test.N != 2 || train.C != 1 || train.H != 5 || train.W != 4 || test.H != 5 || test.W != 4 {
				t.Fatalf("shapes: train N,C,H,W = %d,%d,%d,%d, test N = %d; expected 3,1,5,4 and 2", train.N, train.C, train.H, train.W, test.N)
			}
			if !slices.Equal(train.Labels, []int{9, 0, 4}) || !slices.Equal(test.Labels, []int{2, 7}) {
				t.Errorf("labels %v / %v", train.Labels, test.Labels)
			}
			checkBytes(t, "train", train.Images, ptr)
			checkBytes(t, "test", test.Images, pte)
			if len(train.Classes) != 10 || train.Classes[9] != "9" {
				t.Errorf("classes %q, expected \"0\"..\"9\"", train.Classes)
			}
		})
	}
}

func TestIDXClassesFile(t *testing.T) {
	dir := t.TempDir()
	idxSplit(t, dir, "train", false, 2, 2, []byte{0, 2}, 1)
	idxSplit(t, dir, "t10k", false, 2, 2, []byte{1}, 2)
	vittest.WriteFile(t, dir, "classes.txt", []byte("zero\none\n\ntwo\n"))
	train, _, _, err := Load(dir, Options{Format: "idx"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(train.Classes, []string{"zero", "one", "two"}) {
		t.Errorf("classes %q, expected [zero one two]", train.Classes)
	}
	// With three classes, label 3 is out of range.
	lp := vittest.WriteFile(t, dir, "t10k-labels-idx1-ubyte", idxBytes(idxLabelsMagic, []uint32{1}, []byte{3}))
	_, _, _, err = Load(dir, Options{Format: "idx"})
	wantErr(t, err, lp, "record 0", "label 3", "expected 0..2")
}

func TestIDXErrors(t *testing.T) {
	img := func(n, h, w uint32, data int) []byte {
		return idxBytes(idxImagesMagic, []uint32{n, h, w}, make([]byte, data))
	}
	lbl := func(n uint32, data []byte) []byte { return idxBytes(idxLabelsMagic, []uint32{n}, data) }
	cases := []struct {
		name      string
		trainImg  []byte
		trainLbl  []byte
		gz        bool
		badFile   string // which file the error must name
		wantParts []string
	}{
		{"bad image magic", idxBytes(0x00000801, []uint32{2, 3, 3}, make([]byte, 18)), lbl(2, []byte{0, 1}), false,
			"train-images-idx3-ubyte", []string{"magic number 0x00000801", "expected 0x00000803"}},
		{"bad label magic", img(2, 3, 3, 18), idxBytes(0x00000803, []uint32{2}, []byte{0, 1}), false,
			"train-labels-idx1-ubyte", []string{"magic number 0x00000803", "expected 0x00000801"}},
		{"count mismatch", img(3, 3, 3, 27), lbl(2, []byte{0, 1}), false,
			"train-images-idx3-ubyte", []string{"header counts 3 images", "2 labels"}},
		{"label out of range", img(2, 3, 3, 18), lbl(2, []byte{0, 10}), false,
			"train-labels-idx1-ubyte", []string{"record 1", "label 10", "expected 0..9"}},
		{"truncated images", img(2, 3, 3, 17), lbl(2, []byte{0, 1}), false,
			"train-images-idx3-ubyte", []string{"need 18 data bytes", "has only 17"}},
		{"trailing bytes", img(2, 3, 3, 19), lbl(2, []byte{0, 1}), false,
			"train-images-idx3-ubyte", []string{"need 18 data bytes", "has 19"}},
		{"truncated labels", img(2, 3, 3, 18), lbl(2, []byte{0}), false,
			"train-labels-idx1-ubyte", []string{"need 2 data bytes", "has only 1"}},
		{"truncated header", img(2, 3, 3, 18)[:9], lbl(2, []byte{0, 1}), false,
			"train-images-idx3-ubyte", []string{"header truncated"}},
		{"zero dimension", img(2, 0, 3, 0), lbl(2, []byte{0, 1}), false,
			"train-images-idx3-ubyte", []string{"dimension 1", "is 0"}},
		{"gz truncated images", img(2, 3, 3, 13), lbl(2, []byte{0, 1}), true,
			"train-images-idx3-ubyte.gz", []string{"need 18 data bytes", "only 13", "record 1"}},
		{"gz trailing bytes", img(2, 3, 3, 20), lbl(2, []byte{0, 1}), true,
			"train-images-idx3-ubyte.gz", []string{"need 18 data bytes", "has more"}},
		{"gz bad magic", idxBytes(0x00000802, []uint32{2, 3}, make([]byte, 18)), lbl(2, []byte{0, 1}), true,
			"train-images-idx3-ubyte.gz", []string{"magic number 0x00000802"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ext := ""
			ti, tl := c.trainImg, c.trainLbl
			if c.gz {
				ti, tl, ext = gzipBytes(t, ti), gzipBytes(t, tl), ".gz"
			}
			vittest.WriteFile(t, dir, "train-images-idx3-ubyte"+ext, ti)
			vittest.WriteFile(t, dir, "train-labels-idx1-ubyte"+ext, tl)
			idxSplit(t, dir, "t10k", false, 3, 3, []byte{1}, 3)
			_, _, _, err := Load(dir, Options{})
			wantErr(t, err, append([]string{filepath.Join(dir, c.badFile)}, c.wantParts...)...)
		})
	}

	t.Run("corrupt gzip", func(t *testing.T) {
		dir := t.TempDir()
		z := gzipBytes(t, idxBytes(idxImagesMagic, []uint32{2, 3, 3}, vittest.RandBytes(5, 18)))
		z[len(z)-6] ^= 0xff // inside the CRC-32 trailer
		p := vittest.WriteFile(t, dir, "train-images-idx3-ubyte.gz", z)
		vittest.WriteFile(t, dir, "train-labels-idx1-ubyte", lbl(2, []byte{0, 1}))
		idxSplit(t, dir, "t10k", false, 3, 3, []byte{1}, 3)
		_, _, _, err := Load(dir, Options{})
		wantErr(t, err, p, "checksum")
	})
	t.Run("test size differs", func(t *testing.T) {
		dir := t.TempDir()
		idxSplit(t, dir, "train", false, 3, 3, []byte{1}, 3)
		idxSplit(t, dir, "t10k", false, 3, 4, []byte{1}, 3)
		_, _, _, err := Load(dir, Options{})
		wantErr(t, err, dir, "3×4", "3×3")
	})
	t.Run("missing file", func(t *testing.T) {
		dir := t.TempDir()
		idxSplit(t, dir, "train", false, 3, 3, []byte{1}, 3)
		_, _, _, err := Load(dir, Options{})
		wantErr(t, err, dir, "t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz")
	})
}

// TestIDXHugeHeader: a header claiming 2^31 images (1.6 TB of pixels) in a
// file of about 100 bytes is refused from the header alone — plain or
// gzipped, read directly or through Load — quickly and without allocating
// anything of that size.
func TestIDXHugeHeader(t *testing.T) {
	dir := t.TempDir()
	hdr := idxBytes(idxImagesMagic, []uint32{1 << 31, 28, 28}, vittest.RandBytes(1, 84)) // 100 bytes
	lhdr := idxBytes(idxLabelsMagic, []uint32{1 << 31}, vittest.RandBytes(2, 92))        // 100 bytes
	plain := vittest.WriteFile(t, dir, "plain/train-images-idx3-ubyte", hdr)
	vittest.WriteFile(t, dir, "plain/train-labels-idx1-ubyte", lhdr)
	gz := vittest.WriteFile(t, dir, "gz/train-images-idx3-ubyte.gz", gzipBytes(t, hdr))
	vittest.WriteFile(t, dir, "gz/train-labels-idx1-ubyte.gz", gzipBytes(t, lhdr))
	// Dimensions whose product overflows 64 bits.
	over := vittest.WriteFile(t, dir, "over/train-images-idx3-ubyte", idxBytes(idxImagesMagic, []uint32{1<<32 - 1, 1<<32 - 1, 1<<32 - 1}, nil))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for _, p := range []string{plain, gz, over} {
		_, _, err := readIDX(p, idxImagesMagic, "images", 0, "")
		wantErr(t, err, p, "refusing")
	}
	for _, sub := range []string{"plain", "gz"} {
		_, _, _, err := Load(filepath.Join(dir, sub), Options{})
		wantErr(t, err, filepath.Join(dir, sub, "train-labels-idx1-ubyte"), "refusing")
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("refusing the huge headers allocated %d bytes, expected well under 4 MiB", alloc)
	}
	if elapsed > time.Second {
		t.Errorf("refusing the huge headers took %v, expected well under a second", elapsed)
	}
}
