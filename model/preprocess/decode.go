package preprocess

import (
	"bufio"
	"image"
	_ "image/jpeg" // register the JPEG decoder for image.Decode
	_ "image/png"  // register the PNG decoder for image.Decode
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"
)

// MaxPixels bounds the width×height of an image this package decodes or
// converts; a larger one (or a header claiming one) is refused before it is
// decoded, so that a small file cannot make a decoder allocate gigabytes.
const MaxPixels = 1 << 26

// ErrTooManyPixels is the cause of the error for an image whose header
// claims more than MaxPixels pixels (or none).
var ErrTooManyPixels = errors.New("image size out of range")

// DecodeFile reads a PNG or JPEG file. Its header is read first: an image of
// more than MaxPixels pixels is refused before its pixels are decoded.
func DecodeFile(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Wrap(err, "preprocess: image")
	}
	defer f.Close()
	img, err := Decode(f)
	return img, errors.Wrapf(err, "preprocess: image %s", path)
}

// Decode reads a PNG or JPEG image from r with the checks of DecodeFile. A
// panic inside a decoder becomes an error.
func Decode(r io.ReadSeeker) (image.Image, error) { return DecodeLimit(r, MaxPixels) }

// DecodeLimit is Decode with another bound than MaxPixels on width×height,
// checked from the header before the pixels are decoded (a server takes a
// smaller one).
func DecodeLimit(r io.ReadSeeker, maxPixels int64) (img image.Image, err error) {
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, errors.Errorf("the image decoder failed: %v", p)
		}
	}()
	if err := checkConfig(r, maxPixels); err != nil {
		return nil, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, errors.WithStack(err)
	}
	img, format, err := image.Decode(bufio.NewReader(r))
	if err != nil {
		return nil, errors.Wrapf(err, "cannot decode it as %s", strings.ToUpper(format))
	}
	return img, nil
}

// checkConfig reads an image's header and refuses one that is not PNG or
// JPEG or whose size is outside 1..maxPixels pixels.
func checkConfig(r io.Reader, maxPixels int64) error {
	cfg, format, err := image.DecodeConfig(bufio.NewReader(r))
	if err != nil {
		return errors.Wrap(err, "cannot decode it as PNG or JPEG")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return errors.Wrapf(ErrTooManyPixels, "%s of %d×%d pixels, expected 1 to %d pixels", format, cfg.Width, cfg.Height, maxPixels)
	}
	return nil
}

// CheckFile reads only the header of a PNG or JPEG file and refuses it as
// DecodeFile would (not an image, more than MaxPixels pixels), so that a
// folder can be checked without being decoded.
func CheckFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errors.Wrap(err, "preprocess: image")
	}
	defer f.Close()
	return errors.Wrapf(checkConfig(f, MaxPixels), "preprocess: image %s", path)
}

// IsImageName reports whether a file name is one this package reads: it
// ends in .png, .jpg or .jpeg (any case) and does not start with ".".
func IsImageName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// ListImages turns paths into image files: a file is taken as it is; a
// directory gives its image files (IsImageName; not sub-directories),
// sorted by name. A path that cannot be read, or a directory without
// images, is one error in errs; the other paths are still listed.
func ListImages(paths []string) (files []string, errs []error) {
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, errors.Wrap(err, "preprocess"))
			continue
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			errs = append(errs, errors.Wrap(err, "preprocess"))
			continue
		}
		n := 0
		for _, e := range entries { // sorted by name
			if !e.IsDir() && IsImageName(e.Name()) {
				files = append(files, filepath.Join(p, e.Name()))
				n++
			}
		}
		if n == 0 {
			errs = append(errs, errors.Errorf("preprocess: %s: no .png, .jpg or .jpeg files in the directory", p))
		}
	}
	return files, errs
}
