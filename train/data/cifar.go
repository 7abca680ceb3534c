package data

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pkg/errors"
)

// CIFAR binary geometry: 32×32 RGB, stored as 1024 R bytes, 1024 G bytes,
// 1024 B bytes, each plane row-major — already C×H×W.
const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide // 3072
)

// byteScale[b] = b/255 as float32: the one conversion from stored bytes to
// pixels used by every reader.
var byteScale = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return
}()

// cifarLabel describes one label byte of a CIFAR record.
type cifarLabel struct {
	name    string // "label", "coarse label", "fine label"
	classes int    // labels must be < classes
}

// cifarSpec describes a CIFAR record layout: label bytes, then 3072 pixels.
type cifarSpec struct {
	format string       // for messages
	labels []cifarLabel // in record order
	use    int          // which label byte becomes Dataset.Labels
}

func (s cifarSpec) recordSize() int { return len(s.labels) + cifarPixels }

func loadCIFAR10(dir string) (train, test *Dataset, err error) {
	var trainFiles []string
	for i := 1; i <= 5; i++ {
		p := filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", i))
		if _, err := os.Stat(p); err == nil {
			trainFiles = append(trainFiles, p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, nil, errors.Wrapf(err, "data: cifar10 file %s", p)
		}
	}
	if len(trainFiles) == 0 {
		return nil, nil, errors.Errorf("data: cifar10 directory %s: found none of data_batch_1.bin … data_batch_5.bin, expected at least one training batch", dir)
	}
	names, err := readNames(filepath.Join(dir, "batches.meta.txt"), 10)
	if err != nil {
		return nil, nil, err
	}
	if names == nil {
		names = numberedNames(10)
	}
	spec := cifarSpec{format: FormatCIFAR10, labels: []cifarLabel{{"label", 10}}}
	if train, err = readCIFAR(trainFiles, spec, names); err != nil {
		return nil, nil, err
	}
	if test, err = readCIFAR([]string{filepath.Join(dir, "test_batch.bin")}, spec, names); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

func loadCIFAR100(dir string, coarse bool) (train, test *Dataset, err error) {
	spec := cifarSpec{format: FormatCIFAR100, labels: []cifarLabel{{"coarse label", 20}, {"fine label", 100}}, use: 1}
	namesFile := "fine_label_names.txt"
	if coarse {
		spec.use = 0
		namesFile = "coarse_label_names.txt"
	}
	n := spec.labels[spec.use].classes
	names, err := readNames(filepath.Join(dir, namesFile), n)
	if err != nil {
		return nil, nil, err
	}
	if names == nil {
		names = numberedNames(n)
	}
	if train, err = readCIFAR([]string{filepath.Join(dir, "train.bin")}, spec, names); err != nil {
		return nil, nil, err
	}
	if test, err = readCIFAR([]string{filepath.Join(dir, "test.bin")}, spec, names); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// readCIFAR reads the records of the given files, in order, into one split.
// Every file's size is checked before anything is allocated.
func readCIFAR(paths []string, spec cifarSpec, names []string) (*Dataset, error) {
	rec := spec.recordSize()
	counts := make([]int, len(paths))
	total := 0
	for i, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, errors.Wrapf(err, "data: %s file %s", spec.format, p)
		}
		size := st.Size()
		if size == 0 {
			return nil, errors.Errorf("data: %s file %s: file is empty, expected records of %d bytes", spec.format, p, rec)
		}
		if size%int64(rec) != 0 {
			return nil, errors.Errorf("data: %s file %s: size %d bytes is not a multiple of the %d-byte record (%d label byte(s) + %d pixel bytes): record %d is truncated to %d of %d bytes",
				spec.format, p, size, rec, len(spec.labels), cifarPixels, size/int64(rec), size%int64(rec), rec)
		}
		counts[i] = int(size / int64(rec))
		total += counts[i]
	}
	d := &Dataset{
		Images:  make([]float32, total*cifarPixels),
		Labels:  make([]int, total),
		N:       total,
		C:       3,
		H:       cifarSide,
		W:       cifarSide,
		Classes: names,
	}
	at := 0
	buf := make([]byte, rec)
	for i, p := range paths {
		if err := readCIFARFile(p, counts[i], spec, buf, d, at); err != nil {
			return nil, err
		}
		at += counts[i]
	}
	return d, nil
}

// readCIFARFile reads n records of path into d, starting at image at.
func readCIFARFile(path string, n int, spec cifarSpec, buf []byte, d *Dataset, at int) error {
	f, err := os.Open(path)
	if err != nil {
		return errors.Wrapf(err, "data: %s file %s", spec.format, path)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	nl := len(spec.labels)
	for k := 0; k < n; k++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			return errors.Errorf("data: %s file %s record %d: %v, expected %d bytes (the file changed while being read?)", spec.format, path, k, err, len(buf))
		}
		for j, l := range spec.labels {
			if int(buf[j]) >= l.classes {
				return errors.Errorf("data: %s file %s record %d (byte offset %d): %s %d, expected 0..%d",
					spec.format, path, k, int64(k)*int64(len(buf))+int64(j), l.name, buf[j], l.classes-1)
			}
		}
		d.Labels[at+k] = int(buf[spec.use])
		img := d.Images[(at+k)*cifarPixels : (at+k+1)*cifarPixels]
		for j, b := range buf[nl:] {
			img[j] = byteScale[b]
		}
	}
	return nil
}
