//go:build ignore

// Command make builds the shipped Fashion-MNIST sample in CIFAR-10 binary
// layout from Debian's dataset-fashion-mnist package
// (apt-get install -y dataset-fashion-mnist).
//
// Run from the repository root:
//
//	go run testdata/fashion-sample/make/main.go
//
// It takes the first 5,000 training and the first 1,000 test images, pads
// each 28×28 image with 2 zero pixels on every side to 32×32, copies the gray
// channel to R, G and B, and writes data_batch_1.bin … data_batch_5.bin
// (1,000 records each), test_batch.bin and batches.meta.txt. Each record is
// 1 label byte followed by 1024 R, 1024 G and 1024 B bytes, row-major.
// It prints the per-class counts of both splits.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The class names documented in the dataset's README (label 0 to 9).
var classes = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// MD5 sums of the decompressed IDX files of Debian's
// dataset-fashion-mnist 0.0~git20200523.55506a9-1 (Debian recompressed the
// .gz files, so the sums of the upstream .gz files do not apply), so that the
// sample is rebuilt from exactly the data it was made from.
var md5sums = map[string]string{
	"train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
	"train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
	"t10k-images-idx3-ubyte.gz":  "8181f5470baa50b63fa0f6fddb340f0a",
	"t10k-labels-idx1-ubyte.gz":  "15d484375f8d13e6eb1aabb0c3f46965",
}

const (
	side    = 28
	out     = 32
	pad     = (out - side) / 2
	nTrain  = 5000
	nTest   = 1000
	perFile = 1000
)

func main() {
	src := flag.String("src", "/usr/share/datasets/fashion-mnist", "folder with the Fashion-MNIST IDX .gz files")
	dst := flag.String("out", "testdata/fashion-sample", "output folder")
	flag.Parse()
	if err := run(*src, *dst); err != nil {
		fmt.Fprintln(os.Stderr, "make:", err)
		os.Exit(1)
	}
}

func run(src, dst string) error {
	var parts [4][]byte // training images and labels, test images and labels
	for i, f := range []struct {
		name  string
		magic uint32
		n     int
	}{
		{"train-images-idx3-ubyte.gz", 0x803, nTrain}, {"train-labels-idx1-ubyte.gz", 0x801, nTrain},
		{"t10k-images-idx3-ubyte.gz", 0x803, nTest}, {"t10k-labels-idx1-ubyte.gz", 0x801, nTest},
	} {
		var err error
		if parts[i], err = readIDX(filepath.Join(src, f.name), f.magic, f.n); err != nil {
			return err
		}
	}
	trImg, trLbl, teImg, teLbl := parts[0], parts[1], parts[2], parts[3]
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for b := 0; b < nTrain/perFile; b++ {
		name := filepath.Join(dst, fmt.Sprintf("data_batch_%d.bin", b+1))
		if err := writeBatch(name, trImg, trLbl, b*perFile, perFile); err != nil {
			return err
		}
	}
	if err := writeBatch(filepath.Join(dst, "test_batch.bin"), teImg, teLbl, 0, nTest); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dst, "batches.meta.txt"), []byte(strings.Join(classes, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	report("train", trLbl)
	report("test", teLbl)
	return nil
}

// readIDX checks the decompressed file's MD5 against the pinned one, then
// returns the first n records' bytes (images: n·28·28; labels: n).
func readIDX(path string, magic uint32, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	all, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	sum := md5.Sum(all)
	if want := md5sums[filepath.Base(path)]; hex.EncodeToString(sum[:]) != want {
		return nil, fmt.Errorf("%s: md5 of the decompressed data %x, expected %s (Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1)", path, sum, want)
	}
	r := bytes.NewReader(all)
	ndim := int(magic & 0xff)
	hdr := make([]byte, 4+4*ndim)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("%s: header: %v", path, err)
	}
	if got := binary.BigEndian.Uint32(hdr); got != magic {
		return nil, fmt.Errorf("%s: magic 0x%08x, expected 0x%08x", path, got, magic)
	}
	rec := 1
	if ndim == 3 {
		if h, w := binary.BigEndian.Uint32(hdr[8:]), binary.BigEndian.Uint32(hdr[12:]); h != side || w != side {
			return nil, fmt.Errorf("%s: images %d×%d, expected %d×%d", path, h, w, side, side)
		}
		rec = side * side
	}
	if c := binary.BigEndian.Uint32(hdr[4:]); int(c) < n {
		return nil, fmt.Errorf("%s: %d records, expected at least %d", path, c, n)
	}
	buf := make([]byte, n*rec)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("%s: data: %v", path, err)
	}
	return buf, nil
}

func writeBatch(name string, img, lbl []byte, from, n int) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	rec := make([]byte, 1+3*out*out)
	for i := from; i < from+n; i++ {
		if lbl[i] >= byte(len(classes)) {
			f.Close()
			return fmt.Errorf("record %d: label %d out of range", i, lbl[i])
		}
		clear(rec)
		rec[0] = lbl[i]
		g := img[i*side*side : (i+1)*side*side]
		for c := 0; c < 3; c++ {
			plane := rec[1+c*out*out : 1+(c+1)*out*out]
			for y := 0; y < side; y++ {
				copy(plane[(y+pad)*out+pad:(y+pad)*out+pad+side], g[y*side:(y+1)*side])
			}
		}
		if _, err := w.Write(rec); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func report(split string, lbl []byte) {
	counts := make([]int, len(classes))
	for _, l := range lbl {
		counts[l]++
	}
	fmt.Printf("%s: %d images\n", split, len(lbl))
	for c, k := range counts {
		fmt.Printf("  %d %-12s %5d\n", c, classes[c], k)
	}
}
