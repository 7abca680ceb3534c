package data

import (
	"bufio"
	"fmt"
	"image"
	_ "image/jpeg" // register the JPEG decoder for image.Decode
	_ "image/png"  // register the PNG decoder for image.Decode
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MaxImagePixels bounds the width×height of an image in an image folder; a
// larger one (or a header claiming one) is refused before it is decoded.
const MaxImagePixels = 1 << 26

type folderItem struct {
	path  string
	label int
}

func loadFolder(dir string, opt Options) (train, test *Dataset, err error) {
	size := opt.ImageSize
	if size == 0 {
		size = 32
	}
	if size < 0 || size > MaxImageSize {
		return nil, nil, fmt.Errorf("data: folder dataset %s: image size %d, expected 1..%d (0 for the default 32)", dir, opt.ImageSize, MaxImageSize)
	}
	ch := opt.Channels
	if ch == 0 {
		ch = 3
	}
	if ch != 1 && ch != 3 {
		return nil, nil, fmt.Errorf("data: folder dataset %s: %d channels requested, expected 1 or 3 (0 for the default 3)", dir, opt.Channels)
	}
	trainDir, testDir := filepath.Join(dir, "train"), filepath.Join(dir, "test")
	trainClasses, err := classDirs(trainDir)
	if err != nil {
		return nil, nil, err
	}
	if len(trainClasses) == 0 {
		return nil, nil, fmt.Errorf("data: folder dataset %s: no class sub-folders, expected train/<class>/*.png|jpg|jpeg", trainDir)
	}
	testClasses, err := classDirs(testDir)
	if err != nil {
		return nil, nil, err
	}
	if err := sameClasses(trainDir, testDir, trainClasses, testClasses); err != nil {
		return nil, nil, err
	}
	if train, err = readFolderSplit(trainDir, trainClasses, size, ch, true); err != nil {
		return nil, nil, err
	}
	if test, err = readFolderSplit(testDir, trainClasses, size, ch, false); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// classDirs returns the sorted names of the visible sub-folders of dir.
func classDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data: folder dataset split %s: %v", dir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		isDir := e.IsDir()
		if !isDir && e.Type()&os.ModeSymlink != 0 {
			if st, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && st.IsDir() {
				isDir = true
			}
		}
		if isDir {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

func sameClasses(trainDir, testDir string, train, test []string) error {
	inTrain, inTest := map[string]bool{}, map[string]bool{}
	for _, c := range train {
		inTrain[c] = true
	}
	for _, c := range test {
		inTest[c] = true
	}
	var missing, extra []string
	for _, c := range train {
		if !inTest[c] {
			missing = append(missing, c)
		}
	}
	for _, c := range test {
		if !inTrain[c] {
			extra = append(extra, c)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return nil
	}
	msg := fmt.Sprintf("data: folder dataset: the class sub-folders of %s differ from those of %s, expected the same set %q", testDir, trainDir, train)
	if len(missing) > 0 {
		msg += fmt.Sprintf("; missing from test: %q", missing)
	}
	if len(extra) > 0 {
		msg += fmt.Sprintf("; not in train: %q", extra)
	}
	return fmt.Errorf("%s", msg)
}

func isImageName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

func readFolderSplit(splitDir string, classes []string, size, ch int, needEach bool) (*Dataset, error) {
	var items []folderItem
	for label, c := range classes {
		cdir := filepath.Join(splitDir, c)
		entries, err := os.ReadDir(cdir)
		if err != nil {
			return nil, fmt.Errorf("data: folder dataset class %s: %v", cdir, err)
		}
		k := 0
		for _, e := range entries { // os.ReadDir sorts by name
			if e.IsDir() || !isImageName(e.Name()) {
				continue
			}
			items = append(items, folderItem{filepath.Join(cdir, e.Name()), label})
			k++
		}
		if k == 0 && needEach {
			return nil, fmt.Errorf("data: folder dataset class %s: no .png, .jpg or .jpeg files, expected at least one training image per class", cdir)
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("data: folder dataset split %s: no .png, .jpg or .jpeg files in any class folder, expected at least one image", splitDir)
	}
	per := ch * size * size
	if uint64(len(items))*uint64(per) > math.MaxInt32*8 {
		return nil, fmt.Errorf("data: folder dataset split %s: %d images of %d×%d×%d would need %d float32 values, expected at most %d; use a smaller image size",
			splitDir, len(items), ch, size, size, uint64(len(items))*uint64(per), uint64(math.MaxInt32)*8)
	}
	d := &Dataset{
		Images:  make([]float32, len(items)*per),
		Labels:  make([]int, len(items)),
		N:       len(items),
		C:       ch,
		H:       size,
		W:       size,
		Classes: classes,
	}
	for i, it := range items {
		d.Labels[i] = it.label
		if err := readImageFile(it.path, ch, size, d.Images[i*per:(i+1)*per]); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// readImageFile decodes path and writes it, converted and resampled, into
// dst (ch×size×size).
func readImageFile(path string, ch, size int, dst []float32) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("data: image %s: %v", path, err)
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("data: image %s: cannot decode it as PNG or JPEG: %v", path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return fmt.Errorf("data: image %s: %s of %d×%d pixels, expected 1 to %d pixels", path, format, cfg.Width, cfg.Height, MaxImagePixels)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return fmt.Errorf("data: image %s: %v", path, err)
	}
	img, format, err := image.Decode(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("data: image %s: cannot decode it as %s: %v", path, strings.ToUpper(format), err)
	}
	if err := ImageToCHW(img, ch, size, dst); err != nil {
		return fmt.Errorf("data: image %s: %s", path, strings.TrimPrefix(err.Error(), "data: ImageToCHW: "))
	}
	return nil
}

// toPlanes writes the pixels of img inside r as ch planes of r's size into
// dst, scaled to [0,1] (see the package notes on conversion).
func toPlanes(img image.Image, r image.Rectangle, ch int, dst []float32) {
	at := rgbaFunc(img)
	w, h := r.Dx(), r.Dy()
	plane := w * h
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			cr, cg, cb := at(r.Min.X+x, r.Min.Y+y)
			o := y*w + x
			if ch == 3 {
				dst[o] = float32(cr) / 65535
				dst[plane+o] = float32(cg) / 65535
				dst[2*plane+o] = float32(cb) / 65535
				continue
			}
			if cr == cg && cg == cb {
				dst[o] = float32(cr) / 65535
				continue
			}
			l := (0.299*float64(cr) + 0.587*float64(cg) + 0.114*float64(cb)) / 65535
			dst[o] = float32(min(max(l, 0), 1))
		}
	}
}

// rgbaFunc returns a reader of 16-bit premultiplied R, G, B, with fast paths
// (no per-pixel interface allocation) for the types the PNG and JPEG decoders
// produce most often.
func rgbaFunc(img image.Image) func(x, y int) (r, g, b uint32) {
	switch m := img.(type) {
	case *image.Gray:
		return func(x, y int) (uint32, uint32, uint32) {
			v, _, _, _ := m.GrayAt(x, y).RGBA()
			return v, v, v
		}
	case *image.YCbCr:
		return func(x, y int) (uint32, uint32, uint32) {
			r, g, b, _ := m.YCbCrAt(x, y).RGBA()
			return r, g, b
		}
	case *image.RGBA:
		return func(x, y int) (uint32, uint32, uint32) {
			r, g, b, _ := m.RGBAAt(x, y).RGBA()
			return r, g, b
		}
	case *image.NRGBA:
		return func(x, y int) (uint32, uint32, uint32) {
			r, g, b, _ := m.NRGBAAt(x, y).RGBA()
			return r, g, b
		}
	}
	return func(x, y int) (uint32, uint32, uint32) {
		r, g, b, _ := img.At(x, y).RGBA()
		return r, g, b
	}
}

// tap is one input pixel's weight in an output pixel.
type tap struct {
	i int
	w float32
}

// resampleWeights gives, for each of the dst output positions, the input
// positions (of src) and weights that make it: area averaging when
// shrinking, linear interpolation between pixel centres when growing. Each
// output's weights sum to 1.
func resampleWeights(src, dst int) [][]tap {
	out := make([][]tap, dst)
	scale := float64(src) / float64(dst)
	for i := range out {
		var taps []tap
		if dst <= src {
			lo, hi := float64(i)*scale, float64(i+1)*scale
			sum := 0.0
			var ws []float64
			j0 := int(math.Floor(lo))
			for j := j0; j < src && float64(j) < hi; j++ {
				ov := math.Min(hi, float64(j+1)) - math.Max(lo, float64(j))
				if ov <= 1e-9 {
					ov = 0
				}
				ws = append(ws, ov)
				sum += ov
			}
			for k, wt := range ws {
				if wt > 0 {
					taps = append(taps, tap{j0 + k, float32(wt / sum)})
				}
			}
		} else {
			c := (float64(i)+0.5)*scale - 0.5
			j := int(math.Floor(c))
			f := c - float64(j)
			a, b := clampInt(j, 0, src-1), clampInt(j+1, 0, src-1)
			if a == b || f == 0 {
				taps = []tap{{a, 1}}
			} else {
				taps = []tap{{a, float32(1 - f)}, {b, float32(f)}}
			}
		}
		out[i] = taps
	}
	return out
}

func clampInt(v, lo, hi int) int { return min(max(v, lo), hi) }

// resample maps ch planes of s×s in src to ch planes of n×n in dst,
// separably (rows first, then columns), with resampleWeights.
func resample(src []float32, ch, s, n int, dst []float32) {
	wt := resampleWeights(s, n)
	tmp := make([]float32, s*n) // s rows of n
	for c := 0; c < ch; c++ {
		in := src[c*s*s : (c+1)*s*s]
		for y := 0; y < s; y++ {
			row := in[y*s : (y+1)*s]
			for x, taps := range wt {
				var v float32
				for _, t := range taps {
					v += t.w * row[t.i]
				}
				tmp[y*n+x] = v
			}
		}
		out := dst[c*n*n : (c+1)*n*n]
		for y, taps := range wt {
			for x := 0; x < n; x++ {
				var v float32
				for _, t := range taps {
					v += t.w * tmp[t.i*n+x]
				}
				out[y*n+x] = min(max(v, 0), 1)
			}
		}
	}
}
