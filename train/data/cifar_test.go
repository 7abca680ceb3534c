package data

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vitgo/vit/model/vittest"
)

// cifarRecords builds n records whose label bytes are labels[k] (a slice per
// record) and whose pixels are random; it returns the file bytes and the
// pixels of each record.
func cifarRecords(seed int64, labels [][]byte) (file []byte, pixels [][]byte) {
	for k, l := range labels {
		px := vittest.RandBytes(seed+int64(k), cifarPixels)
		file = append(file, l...)
		file = append(file, px...)
		pixels = append(pixels, px)
	}
	return file, pixels
}

func TestCIFAR10(t *testing.T) {
	dir := t.TempDir()
	// Batches 1 and 3 only: a subset, read in numeric order.
	b1, p1 := cifarRecords(10, [][]byte{{3}, {0}, {9}})
	b3, p3 := cifarRecords(20, [][]byte{{5}, {1}})
	bt, pt := cifarRecords(30, [][]byte{{7}, {2}})
	vittest.WriteFile(t, dir, "data_batch_3.bin", b3)
	vittest.WriteFile(t, dir, "data_batch_1.bin", b1)
	vittest.WriteFile(t, dir, "test_batch.bin", bt)
	names := []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
	vittest.WriteFile(t, dir, "batches.meta.txt", []byte("\n"+strings.Join(names[:4], "\n")+"\n\n  "+strings.Join(names[4:], "\n")+"  \n\n"))

	train, test, format, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if format != FormatCIFAR10 {
		t.Fatalf("format %q, expected cifar10", format)
	}
	for _, c := range []struct {
		name   string
		d      *Dataset
		labels []int
		px     [][]byte
	}{
		{"train", train, []int{3, 0, 9, 5, 1}, append(p1, p3...)},
		{"test", test, []int{7, 2}, pt},
	} {
		d := c.d
		if d.N != len(c.labels) || d.C != 3 || d.H != 32 || d.W != 32 || len(d.Images) != d.N*3072 {
			t.Fatalf("%s: N,C,H,W = %d,%d,%d,%d with %d values, expected %d,3,32,32", c.name, d.N, d.C, d.H, d.W, len(d.Images), len(c.labels))
		}
		if !slices.Equal(d.Labels, c.labels) {
			t.Errorf("%s: labels %v, expected %v", c.name, d.Labels, c.labels)
		}
		if !slices.Equal(d.Classes, names) {
			t.Errorf("%s: classes %q, expected %q", c.name, d.Classes, names)
		}
		for i := range c.px {
			checkBytes(t, fmt.Sprintf("%s image %d", c.name, i), d.Image(i), c.px[i])
		}
	}

	// Without batches.meta.txt the names are "0".."9"; an explicit format works.
	dir2 := t.TempDir()
	vittest.WriteFile(t, dir2, "data_batch_2.bin", b1)
	vittest.WriteFile(t, dir2, "test_batch.bin", bt)
	train, _, _, err = Load(dir2, Options{Format: "cifar10"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}; !slices.Equal(train.Classes, want) {
		t.Errorf("default classes %q, expected %q", train.Classes, want)
	}
}

func TestCIFAR10Errors(t *testing.T) {
	good, _ := cifarRecords(1, [][]byte{{1}, {2}})
	bad, _ := cifarRecords(1, [][]byte{{1}, {10}, {2}})

	t.Run("truncated", func(t *testing.T) {
		dir := t.TempDir()
		p := vittest.WriteFile(t, dir, "data_batch_1.bin", good[:len(good)-5])
		vittest.WriteFile(t, dir, "test_batch.bin", good)
		_, _, _, err := Load(dir, Options{})
		wantErr(t, err, p, "record 1", "3073", "not a multiple")
	})
	t.Run("label out of range", func(t *testing.T) {
		dir := t.TempDir()
		vittest.WriteFile(t, dir, "data_batch_1.bin", good)
		p := vittest.WriteFile(t, dir, "test_batch.bin", bad)
		_, _, _, err := Load(dir, Options{})
		wantErr(t, err, p, "record 1", "label 10", "expected 0..9")
	})
	t.Run("empty", func(t *testing.T) {
		dir := t.TempDir()
		p := vittest.WriteFile(t, dir, "data_batch_1.bin", nil)
		vittest.WriteFile(t, dir, "test_batch.bin", good)
		_, _, _, err := Load(dir, Options{})
		wantErr(t, err, p, "empty")
	})
	t.Run("no test batch", func(t *testing.T) {
		dir := t.TempDir()
		vittest.WriteFile(t, dir, "data_batch_1.bin", good)
		_, _, _, err := Load(dir, Options{})
		wantErr(t, err, filepath.Join(dir, "test_batch.bin"))
	})
	t.Run("no training batch", func(t *testing.T) {
		dir := t.TempDir()
		vittest.WriteFile(t, dir, "test_batch.bin", good)
		_, _, _, err := Load(dir, Options{})
		wantErr(t, err, dir, "data_batch_1.bin")
	})
	t.Run("wrong number of names", func(t *testing.T) {
		dir := t.TempDir()
		vittest.WriteFile(t, dir, "data_batch_1.bin", good)
		vittest.WriteFile(t, dir, "test_batch.bin", good)
		p := vittest.WriteFile(t, dir, "batches.meta.txt", []byte("a\nb\nc\n"))
		_, _, _, err := Load(dir, Options{})
		wantErr(t, err, p, "found 3", "expected 10")
	})
}

func TestCIFAR100(t *testing.T) {
	dir := t.TempDir()
	tr, ptr := cifarRecords(40, [][]byte{{19, 99}, {0, 0}, {7, 42}})
	te, pte := cifarRecords(50, [][]byte{{3, 17}, {11, 64}})
	vittest.WriteFile(t, dir, "train.bin", tr)
	vittest.WriteFile(t, dir, "test.bin", te)
	var fine []string
	for i := 0; i < 100; i++ {
		fine = append(fine, fmt.Sprintf("fine%02d", i))
	}
	vittest.WriteFile(t, dir, "fine_label_names.txt", []byte(strings.Join(fine, "\n")+"\n"))

	train, test, format, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if format != FormatCIFAR100 {
		t.Fatalf("format %q, expected cifar100", format)
	}
	if !slices.Equal(train.Labels, []int{99, 0, 42}) || !slices.Equal(test.Labels, []int{17, 64}) {
		t.Errorf("fine labels %v / %v, expected [99 0 42] / [17 64]", train.Labels, test.Labels)
	}
	if !slices.Equal(train.Classes, fine) || !slices.Equal(test.Classes, fine) {
		t.Errorf("fine class names not read from fine_label_names.txt: %q…", train.Classes[:3])
	}
	if train.N != 3 || test.N != 2 || train.C != 3 || train.H != 32 || train.W != 32 {
		t.Fatalf("shapes train N=%d test N=%d C,H,W=%d,%d,%d", train.N, test.N, train.C, train.H, train.W)
	}
	for i := range ptr {
		checkBytes(t, fmt.Sprintf("train image %d", i), train.Image(i), ptr[i])
	}
	for i := range pte {
		checkBytes(t, fmt.Sprintf("test image %d", i), test.Image(i), pte[i])
	}

	train, test, _, err = Load(dir, Options{Coarse: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(train.Labels, []int{19, 0, 7}) || !slices.Equal(test.Labels, []int{3, 11}) {
		t.Errorf("coarse labels %v / %v, expected [19 0 7] / [3 11]", train.Labels, test.Labels)
	}
	if len(train.Classes) != 20 || train.Classes[19] != "19" {
		t.Errorf("coarse names without coarse_label_names.txt: %q, expected \"0\"..\"19\"", train.Classes)
	}
	checkBytes(t, "coarse train image 2", train.Image(2), ptr[2])
}

func TestCIFAR100Errors(t *testing.T) {
	good, _ := cifarRecords(1, [][]byte{{1, 2}})
	for _, c := range []struct {
		name   string
		labels [][]byte
		want   string
	}{
		{"coarse", [][]byte{{0, 0}, {20, 5}}, "coarse label 20"},
		{"fine", [][]byte{{0, 0}, {0, 0}, {19, 100}}, "fine label 100"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			bad, _ := cifarRecords(2, c.labels)
			p := vittest.WriteFile(t, dir, "train.bin", bad)
			vittest.WriteFile(t, dir, "test.bin", good)
			_, _, _, err := Load(dir, Options{})
			wantErr(t, err, p, fmt.Sprintf("record %d", len(c.labels)-1), c.want)
		})
	}
	t.Run("truncated", func(t *testing.T) {
		dir := t.TempDir()
		vittest.WriteFile(t, dir, "train.bin", good)
		p := vittest.WriteFile(t, dir, "test.bin", append(good, good[:100]...))
		_, _, _, err := Load(dir, Options{})
		wantErr(t, err, p, "3074", "record 1")
	})
}
