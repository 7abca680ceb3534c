// Package data loads image-classification datasets into memory and turns
// them into normalised, optionally augmented mini-batches for training.
//
// Four on-disk formats are read (see Load):
//
//   - "cifar10":  the CIFAR-10 binary version (data_batch_1.bin … data_batch_5.bin,
//     test_batch.bin, optional batches.meta.txt);
//   - "cifar100": the CIFAR-100 binary version (train.bin, test.bin, optional
//     fine_label_names.txt / coarse_label_names.txt);
//   - "idx":      MNIST-style IDX files, plain or gzipped
//     (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
//     t10k-labels-idx1-ubyte, each optionally with ".gz"; optional classes.txt);
//   - "folder":   dir/train/<class>/*.png|*.jpg|*.jpeg and dir/test/<class>/….
//
// Every split is held as float32 pixels scaled to [0,1] in N×C×H×W row-major
// order. Errors start with "data:" and name the file and, where there is one,
// the record, together with what was expected and what was found.
//
// # Image folders
//
// Layout: dir/train/<class>/<file> and dir/test/<class>/<file>, where <file>
// ends in .png, .jpg or .jpeg (any case). Other files, and names starting
// with ".", are skipped. The classes are the sorted (byte-wise) names of the
// sub-folders of train/; test/ must have exactly the same sub-folders. Every
// training class needs at least one image; a test class may be empty.
// Images are taken in sorted file-name order within each class, classes in
// label order.
//
// Pixel conversion: a pixel's colour is read through the standard library's
// colour model (16-bit, alpha-premultiplied, so transparent areas come out
// composited over black) and scaled to [0,1]. With 3 channels a gray image is
// copied to R, G and B. With 1 channel a pixel whose R, G and B are equal
// keeps that value exactly; any other gets the ITU-R BT.601 luma
// 0.299·R + 0.587·G + 0.114·B.
//
// Geometry: the centred square of side min(width, height) is cut out (offset
// ⌊(long − short)/2⌋ along the longer side) and resampled to
// ImageSize×ImageSize — the same as resizing the shorter side to ImageSize
// and centre-cropping, up to sub-pixel rounding of the crop. The resampling
// is separable: along an axis that shrinks, area averaging (each output pixel
// is the mean of the input area it covers, partial pixels weighted by their
// covered fraction — exact block means for integer factors); along an axis
// that grows, linear interpolation between pixel centres (edges clamped). An
// image already of the right size is copied unchanged.
package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Format names accepted by Options.Format and returned by Load.
const (
	FormatCIFAR10  = "cifar10"
	FormatCIFAR100 = "cifar100"
	FormatIDX      = "idx"
	FormatFolder   = "folder"
)

// Dataset holds one split in memory: pixels scaled to [0,1], N×C×H×W row-major.
type Dataset struct {
	Images     []float32
	Labels     []int
	N, C, H, W int
	Classes    []string // class names, index = label
}

// Image returns the C×H×W slice of image i (shared with d.Images; its
// capacity ends at the image, so appending to it cannot clobber image i+1).
func (d *Dataset) Image(i int) []float32 {
	n := d.C * d.H * d.W
	return d.Images[i*n : (i+1)*n : (i+1)*n]
}

// NumClasses is len(d.Classes).
func (d *Dataset) NumClasses() int { return len(d.Classes) }

// ClassCounts returns how many images of each class the split holds.
func (d *Dataset) ClassCounts() []int {
	c := make([]int, len(d.Classes))
	for _, l := range d.Labels {
		if l >= 0 && l < len(c) {
			c[l]++
		}
	}
	return c
}

// Options selects and configures a format for Load.
type Options struct {
	Format    string // "" = detect from the directory; "cifar10", "cifar100", "idx", "folder"
	ImageSize int    // for "folder": resize (and centre-crop) to this square size; 0 = keep 32
	Channels  int    // for "folder": 1 or 3 (convert gray<->RGB); 0 = 3
	Coarse    bool   // CIFAR-100: coarse labels instead of fine
}

// MaxImageSize bounds Options.ImageSize, so that a typing slip cannot ask for
// a many-gigabyte dataset.
const MaxImageSize = 4096

// Load reads the training and test splits stored in dir and returns them with
// the name of the format that was read.
//
// With opt.Format == "" the format is detected from the directory's contents,
// in this order: any data_batch_*.bin or test_batch.bin → "cifar10";
// train.bin and test.bin → "cifar100"; a *-idx3-ubyte or *-idx3-ubyte.gz file
// → "idx"; a train/ folder with sub-folders → "folder".
//
// ImageSize and Channels apply to "folder" only (the binary formats have a
// fixed geometry: 3×32×32 for CIFAR, 1×rows×cols for IDX); Coarse applies to
// "cifar100" only.
func Load(dir string, opt Options) (train, test *Dataset, format string, err error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, nil, "", fmt.Errorf("data: dataset directory %s: %v", dir, err)
	}
	if !st.IsDir() {
		return nil, nil, "", fmt.Errorf("data: dataset path %s is not a directory", dir)
	}
	format = strings.ToLower(strings.TrimSpace(opt.Format))
	if format == "" {
		if format, err = Detect(dir); err != nil {
			return nil, nil, "", err
		}
	}
	switch format {
	case FormatCIFAR10:
		train, test, err = loadCIFAR10(dir)
	case FormatCIFAR100:
		train, test, err = loadCIFAR100(dir, opt.Coarse)
	case FormatIDX:
		train, test, err = loadIDX(dir)
	case FormatFolder:
		train, test, err = loadFolder(dir, opt)
	default:
		return nil, nil, "", fmt.Errorf("data: unknown dataset format %q, expected one of %q, %q, %q, %q or \"\" to detect it",
			opt.Format, FormatCIFAR10, FormatCIFAR100, FormatIDX, FormatFolder)
	}
	if err != nil {
		return nil, nil, "", err
	}
	return train, test, format, nil
}

// Detect names the format of the dataset stored in dir (see Load), or returns
// an error that lists what it looked for.
func Detect(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("data: reading dataset directory %s: %v", dir, err)
	}
	files := map[string]bool{}
	for _, e := range entries {
		if !e.IsDir() {
			files[e.Name()] = true
		}
	}
	for name := range files {
		if name == "test_batch.bin" || (strings.HasPrefix(name, "data_batch_") && strings.HasSuffix(name, ".bin")) {
			return FormatCIFAR10, nil
		}
	}
	if files["train.bin"] && files["test.bin"] {
		return FormatCIFAR100, nil
	}
	for name := range files {
		if strings.HasSuffix(name, "-idx3-ubyte") || strings.HasSuffix(name, "-idx3-ubyte.gz") {
			return FormatIDX, nil
		}
	}
	if sub, err := os.ReadDir(filepath.Join(dir, "train")); err == nil {
		for _, e := range sub {
			if e.IsDir() {
				return FormatFolder, nil
			}
		}
	}
	return "", fmt.Errorf("data: cannot tell the dataset format of %s: looked for CIFAR-10 (data_batch_1.bin … data_batch_5.bin, test_batch.bin), "+
		"CIFAR-100 (train.bin and test.bin), IDX (train-images-idx3-ubyte[.gz], …) and an image folder (train/<class>/*.png|jpg|jpeg) and found none; "+
		"set the format explicitly or point at the folder that holds the files", dir)
}

// readNames reads a class-name file: one name per line, surrounding spaces
// and blank lines ignored. A missing file gives (nil, nil); want > 0 requires
// exactly that many names.
func readNames(path string, want int) ([]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("data: reading class names %s: %v", path, err)
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		if s := strings.TrimSpace(line); s != "" {
			names = append(names, s)
		}
	}
	if want > 0 && len(names) != want {
		return nil, fmt.Errorf("data: class names %s: found %d non-blank lines, expected %d (one name per class)", path, len(names), want)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("data: class names %s: no names found, expected one name per line", path)
	}
	seen := map[string]int{}
	for i, n := range names {
		if j, ok := seen[n]; ok {
			return nil, fmt.Errorf("data: class names %s: name %q appears twice (names %d and %d), expected distinct names", path, n, j, i)
		}
		seen[n] = i
	}
	return names, nil
}

// numberedNames returns "0", "1", …, strconv.Itoa(n-1).
func numberedNames(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]bool) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
