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
// Pixels are converted as package model/preprocess converts any image
// (ToCHW): colour, centred square crop, resampling to ImageSize.
package data

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pkg/errors"
	"github.com/vitgo/vit/model/preprocess"
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

// Convert returns d with every image converted to ch×size×size as an image
// file of the same pixels would be (preprocess.ToCHW; pixels are taken as
// 8-bit, as every reader here stores them), or d itself when it already
// has that geometry.
func (d *Dataset) Convert(ch, size int) (*Dataset, error) {
	if d.C == ch && d.H == size && d.W == size {
		return d, nil
	}
	out := &Dataset{Images: make([]float32, d.N*ch*size*size), Labels: d.Labels, N: d.N, C: ch, H: size, W: size, Classes: d.Classes}
	for i := 0; i < d.N; i++ {
		img, err := preprocess.ToImage(d.Image(i), d.C, d.H, d.W)
		if err == nil {
			err = preprocess.ToCHW(img, ch, size, out.Image(i))
		}
		if err != nil {
			return nil, errors.Wrapf(err, "data: converting image %d", i)
		}
	}
	return out, nil
}

// Options selects and configures a format for Load.
type Options struct {
	Format    string // "" = detect from the directory; "cifar10", "cifar100", "idx", "folder"
	ImageSize int    // for "folder": resize (and centre-crop) to this square size; 0 = keep 32
	Channels  int    // for "folder": 1 or 3 (convert gray<->RGB); 0 = 3
	Coarse    bool   // CIFAR-100: coarse labels instead of fine
}

// ErrUnknownFormat is the cause of Load's error for a format name it does
// not know or a directory whose format it cannot detect.
var ErrUnknownFormat = errors.New("data: unknown dataset format")

// formatError is an error whose cause is ErrUnknownFormat.
type formatError struct{ msg string }

func (e *formatError) Error() string        { return e.msg }
func (e *formatError) Is(target error) bool { return target == ErrUnknownFormat }

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
		return nil, nil, "", errors.Wrapf(err, "data: dataset directory %s", dir)
	}
	if !st.IsDir() {
		return nil, nil, "", errors.Errorf("data: dataset path %s is not a directory", dir)
	}
	format = strings.ToLower(strings.TrimSpace(opt.Format))
	if format == "" {
		if format, err = DetectFormat(dir); err != nil {
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
		return nil, nil, "", &formatError{fmt.Sprintf("data: unknown dataset format %q, expected one of %q, %q, %q, %q or \"\" to detect it",
			opt.Format, FormatCIFAR10, FormatCIFAR100, FormatIDX, FormatFolder)}
	}
	if err != nil {
		return nil, nil, "", err
	}
	return train, test, format, nil
}

// DetectFormat names the format of the dataset stored in dir (see Load), or returns
// an error that lists what it looked for.
func DetectFormat(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", errors.Wrapf(err, "data: reading dataset directory %s", dir)
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
	return "", &formatError{fmt.Sprintf("data: cannot tell the dataset format of %s: looked for CIFAR-10 (data_batch_1.bin … data_batch_5.bin, test_batch.bin), "+
		"CIFAR-100 (train.bin and test.bin), IDX (train-images-idx3-ubyte[.gz], …) and an image folder (train/<class>/*.png|jpg|jpeg) and found none; "+
		"set the format explicitly or point at the folder that holds the files", dir)}
}

// readNames is ReadClassNames for an optional file: a missing one gives
// (nil, nil).
func readNames(path string, want int) ([]string, error) {
	names, err := ReadClassNames(path, want)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return names, err
}

// ReadClassNames reads a class-name file: one name per line, surrounding
// spaces and blank lines ignored, names distinct. want > 0 requires exactly
// that many names.
func ReadClassNames(path string, want int) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrapf(err, "data: reading class names %s", path)
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		if s := strings.TrimSpace(line); s != "" {
			names = append(names, s)
		}
	}
	if want > 0 && len(names) != want {
		return nil, errors.Errorf("data: class names %s: found %d non-blank lines, expected %d (one name per class)", path, len(names), want)
	}
	if len(names) == 0 {
		return nil, errors.Errorf("data: class names %s: no names found, expected one name per line", path)
	}
	seen := map[string]int{}
	for i, n := range names {
		if j, ok := seen[n]; ok {
			return nil, errors.Errorf("data: class names %s: name %q appears twice (names %d and %d), expected distinct names", path, n, j, i)
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

// Subset returns the images of d whose label is one of labels (nil: every
// class), relabelled 0, 1, … in the order of labels (class names
// following), and, with perClass > 0, only the first perClass images of
// each class in d's order (so that a script in another language takes the
// same ones).
func (d *Dataset) Subset(labels []int, perClass int) (*Dataset, error) {
	if labels == nil {
		labels = make([]int, len(d.Classes))
		for i := range labels {
			labels[i] = i
		}
	}
	newLabel := map[int]int{}
	out := &Dataset{C: d.C, H: d.H, W: d.W}
	for i, l := range labels {
		if l < 0 || l >= len(d.Classes) {
			return nil, errors.Errorf("data: label %d, expected 0..%d", l, len(d.Classes)-1)
		}
		if _, dup := newLabel[l]; dup {
			return nil, errors.Errorf("data: label %d given twice", l)
		}
		newLabel[l] = i
		out.Classes = append(out.Classes, d.Classes[l])
	}
	taken := make([]int, len(labels))
	for i := 0; i < d.N; i++ {
		nl, ok := newLabel[d.Labels[i]]
		if !ok || (perClass > 0 && taken[nl] >= perClass) {
			continue
		}
		taken[nl]++
		out.Images = append(out.Images, d.Image(i)...)
		out.Labels = append(out.Labels, nl)
	}
	out.N = len(out.Labels)
	return out, nil
}
