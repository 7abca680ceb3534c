package data

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vitgo/vit/model/vittest"
)

// Fuzz targets for every reader of outside data. Their seeds run in every
// `go test`; `go test -fuzz FuzzIDX ./train/data` (and so on) explores.
// Each checks that a file is read or refused with an error, never a panic,
// and that what is read is consistent.

// checkDataset fails unless d's fields agree with one another.
func checkDataset(t *testing.T, d *Dataset, classes int) {
	t.Helper()
	if d.N != len(d.Labels) || len(d.Images) != d.N*d.C*d.H*d.W || len(d.Classes) != classes {
		t.Fatalf("inconsistent dataset: N %d, %d labels, %d pixels for %d×%d×%d, %d classes (want %d)",
			d.N, len(d.Labels), len(d.Images), d.C, d.H, d.W, len(d.Classes), classes)
	}
	for i, l := range d.Labels {
		if l < 0 || l >= classes {
			t.Fatalf("label %d of record %d outside 0..%d", l, i, classes-1)
		}
	}
	for i, v := range d.Images {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("pixel %d = %v, outside [0, 1]", i, v)
		}
	}
}

func FuzzIDX(f *testing.F) {
	f.Add(idxBytes(idxImagesMagic, []uint32{2, 3, 3}, vittest.RandBytes(1, 18)), idxBytes(idxLabelsMagic, []uint32{2}, []byte{0, 9}))
	f.Add(gzipBytes(f, idxBytes(idxImagesMagic, []uint32{1, 2, 2}, vittest.RandBytes(2, 4))), gzipBytes(f, idxBytes(idxLabelsMagic, []uint32{1}, []byte{3})))
	f.Add(idxBytes(idxImagesMagic, []uint32{1 << 31, 28, 28}, nil), idxBytes(idxLabelsMagic, []uint32{1 << 31}, nil))
	f.Add(idxBytes(idxImagesMagic, []uint32{1, 1 << 30, 1 << 30}, nil), idxBytes(idxLabelsMagic, []uint32{1}, []byte{1}))
	f.Fuzz(func(t *testing.T, images, labels []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "train-images-idx3-ubyte"), images, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "train-labels-idx1-ubyte"), labels, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := loadIDXSplit(dir, "train", numberedNames(10))
		if err != nil {
			return
		}
		checkDataset(t, d, 10)
	})
}

func fuzzCIFAR(f *testing.F, spec cifarSpec, classes int) {
	labels := [][]byte{{1}, {0}}
	if len(spec.labels) == 2 {
		labels = [][]byte{{3, 17}, {19, 99}}
	}
	good, _ := cifarRecords(1, labels)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "batch.bin")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := readCIFAR([]string{p}, spec, numberedNames(classes))
		if err != nil {
			return
		}
		checkDataset(t, d, classes)
	})
}

func FuzzCIFAR10(f *testing.F) {
	fuzzCIFAR(f, cifarSpec{format: FormatCIFAR10, labels: []cifarLabel{{"label", 10}}}, 10)
}

func FuzzCIFAR100(f *testing.F) {
	fuzzCIFAR(f, cifarSpec{format: FormatCIFAR100, labels: []cifarLabel{{"coarse label", 20}, {"fine label", 100}}, use: 1}, 100)
}
