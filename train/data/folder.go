package data

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/pkg/errors"

	"github.com/vitgo/vit/model/preprocess"
)

type folderItem struct {
	path  string
	label int
}

func loadFolder(dir string, opt Options) (train, test *Dataset, err error) {
	l, err := openLayout(dir, opt)
	if err != nil {
		return nil, nil, err
	}
	if train, err = readFolderSplit(l.trainDir, l.classes, l.size, l.ch, true); err != nil {
		return nil, nil, err
	}
	if test, err = readFolderSplit(l.testDir, l.classes, l.size, l.ch, false); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// layout is an image folder's splits and classes, and the geometry its
// images are read at.
type layout struct {
	size, ch          int
	trainDir, testDir string
	classes           []string
}

func openLayout(dir string, opt Options) (l layout, err error) {
	if l.size, l.ch, err = folderGeometry(dir, opt); err != nil {
		return l, err
	}
	l.trainDir, l.testDir, l.classes, err = folderClasses(dir)
	return l, err
}

// folderGeometry is the size and channels images are read at.
func folderGeometry(dir string, opt Options) (size, ch int, err error) {
	size, ch = opt.ImageSize, opt.Channels
	if size == 0 {
		size = 32
	}
	if size < 0 || size > preprocess.MaxSize {
		return 0, 0, errors.Errorf("data: folder dataset %s: image size %d, expected 1..%d (0 for the default 32)", dir, opt.ImageSize, preprocess.MaxSize)
	}
	if ch == 0 {
		ch = 3
	}
	if ch != 1 && ch != 3 {
		return 0, 0, errors.Errorf("data: folder dataset %s: %d channels requested, expected 1 or 3 (0 for the default 3)", dir, opt.Channels)
	}
	return size, ch, nil
}

// folderClasses returns the split folders and the classes: the class
// sub-folders of train/, which test/ must have too.
func folderClasses(dir string) (trainDir, testDir string, classes []string, err error) {
	trainDir, testDir = filepath.Join(dir, "train"), filepath.Join(dir, "test")
	if classes, err = classDirs(trainDir); err != nil {
		return "", "", nil, err
	}
	if len(classes) == 0 {
		return "", "", nil, errors.Errorf("data: folder dataset %s: no class sub-folders, expected train/<class>/*.png|jpg|jpeg", trainDir)
	}
	testClasses, err := classDirs(testDir)
	if err != nil {
		return "", "", nil, err
	}
	return trainDir, testDir, classes, sameClasses(trainDir, testDir, classes, testClasses)
}

// classDirs returns the sorted names of the visible sub-folders of dir.
func classDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, errors.Wrapf(err, "data: folder dataset split %s", dir)
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
	return errors.Errorf("%s", msg)
}

func readFolderSplit(splitDir string, classes []string, size, ch int, needEach bool) (*Dataset, error) {
	items, err := listFolderSplit(splitDir, classes, needEach)
	if err != nil {
		return nil, err
	}
	per := ch * size * size
	if uint64(len(items))*uint64(per) > math.MaxInt32*8 {
		return nil, errors.Errorf("data: folder dataset split %s: %d images of %d×%d×%d would need %d float32 values, expected at most %d; use a smaller image size or read the folder lazily",
			splitDir, len(items), ch, size, size, uint64(len(items))*uint64(per), uint64(math.MaxInt32)*8)
	}
	f := &Folder{items: items, classes: classes, ch: ch, size: size, workers: runtime.GOMAXPROCS(0)}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	pix, err := f.read(idx) // GOMAXPROCS goroutines decode; no cache
	if err != nil {
		return nil, err
	}
	d := &Dataset{Images: pix, Labels: make([]int, len(items)), N: len(items), C: ch, H: size, W: size, Classes: classes}
	for i, it := range items {
		d.Labels[i] = it.label
	}
	return d, nil
}

// listFolderSplit lists the image files of a split, class by class in
// label order, files in name order.
func listFolderSplit(splitDir string, classes []string, needEach bool) ([]folderItem, error) {
	var items []folderItem
	for label, c := range classes {
		cdir := filepath.Join(splitDir, c)
		entries, err := os.ReadDir(cdir)
		if err != nil {
			return nil, errors.Wrapf(err, "data: folder dataset class %s", cdir)
		}
		k := 0
		for _, e := range entries { // os.ReadDir sorts by name
			if e.IsDir() || !preprocess.IsImageName(e.Name()) {
				continue
			}
			items = append(items, folderItem{filepath.Join(cdir, e.Name()), label})
			k++
		}
		if k == 0 && needEach {
			return nil, errors.Errorf("data: folder dataset class %s: no .png, .jpg or .jpeg files, expected at least one training image per class", cdir)
		}
	}
	if len(items) == 0 {
		return nil, errors.Errorf("data: folder dataset split %s: no .png, .jpg or .jpeg files in any class folder, expected at least one image", splitDir)
	}
	return items, nil
}

// readImageFile decodes path and writes it, converted and resampled, into
// dst (ch×size×size).
func readImageFile(path string, ch, size int, dst []float32) error {
	img, err := preprocess.DecodeFile(path)
	if err != nil {
		return errors.Wrap(err, "data")
	}
	return errors.Wrapf(preprocess.ToCHW(img, ch, size, dst), "data: image %s", path)
}
