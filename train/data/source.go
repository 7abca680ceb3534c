package data

import (
	"math"
	"math/rand"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/pkg/errors"

	"github.com/vitgo/vit/model/preprocess"
)

// Source is a split that training reads batches from: a Dataset held in
// memory, or a Folder whose files are read as batches need them.
type Source interface {
	// Len is the number of images.
	Len() int
	// Shape is the C, H and W of every image.
	Shape() (c, h, w int)
	// ClassNames are the class names, index = label.
	ClassNames() []string
	// ReadBatch is Dataset.Batch: images idx, normalised and augmented,
	// into dst, their labels into labels. An image that cannot be read is
	// an error.
	ReadBatch(dst []float32, labels []int, idx []int, norm preprocess.Normalization, aug *Augment, rng *rand.Rand) error
}

var _ Source = (*Dataset)(nil)

// Len is d.N.
func (d *Dataset) Len() int { return d.N }

// Shape is d.C, d.H, d.W.
func (d *Dataset) Shape() (c, h, w int) { return d.C, d.H, d.W }

// ClassNames is d.Classes.
func (d *Dataset) ClassNames() []string { return d.Classes }

// ReadBatch is Batch; images in memory cannot fail to read.
func (d *Dataset) ReadBatch(dst []float32, labels []int, idx []int, norm preprocess.Normalization, aug *Augment, rng *rand.Rand) error {
	d.Batch(dst, labels, idx, norm, aug, rng)
	return nil
}

// Folder is an image-folder split read lazily: only the file names are
// held; a batch's files are decoded, converted and resized (as the
// in-memory reader does) by a pool of goroutines when the batch is asked
// for (the trainer asks for the next one during a step). Converted images are kept in a cache
// of at most CacheBytes (the first ones read stay), so memory stays bounded
// by the cache and a few batches whatever the folder's size, and a folder
// that fits in the cache is decoded once. Its batches are the in-memory
// Dataset's, value for value, augmentation included.
type Folder struct {
	// CacheBytes bounds the memory of the converted images kept between
	// reads (DefaultCacheBytes; 0: none kept).
	CacheBytes int64

	items    []folderItem
	classes  []string
	ch, size int
	workers  int

	mu     sync.Mutex
	cache  [][]float32 // converted images kept, by index
	cached int64       // their bytes
}

// DefaultCacheBytes is a Folder's cache of converted images: 512 MiB.
const DefaultCacheBytes = 512 << 20

// Len is the number of image files.
func (f *Folder) Len() int { return len(f.items) }

// Shape is the channels and size the images are read at.
func (f *Folder) Shape() (c, h, w int) { return f.ch, f.size, f.size }

// ClassNames are the class folders' names.
func (f *Folder) ClassNames() []string { return f.classes }

// ReadBatch reads images idx and writes them as Dataset.Batch would. (The
// trainer reads the next step's batch on a goroutine of its own while a
// step runs.)
func (f *Folder) ReadBatch(dst []float32, labels []int, idx []int, norm preprocess.Normalization, aug *Augment, rng *rand.Rand) error {
	pix, err := f.read(idx)
	if err != nil {
		return err
	}
	batch := &Dataset{Images: pix, Labels: make([]int, len(idx)), N: len(idx), C: f.ch, H: f.size, W: f.size, Classes: f.classes}
	order := make([]int, len(idx))
	for k, i := range idx {
		batch.Labels[k], order[k] = f.items[i].label, k
	}
	batch.Batch(dst, labels, order, norm, aug, rng)
	return nil
}

// read decodes images idx, in parallel, into one C×H×W block each.
func (f *Folder) read(idx []int) ([]float32, error) {
	per := f.ch * f.size * f.size
	pix := make([]float32, len(idx)*per)
	errs := make([]error, len(idx))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(f.workers, len(idx)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := int(next.Add(1)) - 1; j < len(idx); j = int(next.Add(1)) - 1 {
				i := idx[j]
				if i < 0 || i >= len(f.items) {
					errs[j] = errors.Errorf("data: image %d of a folder of %d", i, len(f.items))
					continue
				}
				dst := pix[j*per : (j+1)*per]
				if f.fromCache(i, dst) {
					continue
				}
				if errs[j] = readImageFile(f.items[i].path, f.ch, f.size, dst); errs[j] == nil {
					f.toCache(i, dst)
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return pix, nil
}

// fromCache copies image i from the cache into dst, if it is there.
func (f *Folder) fromCache(i int, dst []float32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i < len(f.cache) && f.cache[i] != nil {
		copy(dst, f.cache[i])
		return true
	}
	return false
}

// toCache keeps a copy of image i if the cache has room.
func (f *Folder) toCache(i int, px []float32) {
	size := int64(len(px)) * 4
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cached+size > f.CacheBytes {
		return
	}
	if f.cache == nil {
		f.cache = make([][]float32, len(f.items))
	}
	if f.cache[i] == nil {
		f.cache[i] = slices.Clone(px)
		f.cached += size
	}
}

// Normalization is ComputeNormalization over the folder's images, read in
// batches: the mean and population standard deviation of each channel, in
// float64 (one pass of sums and sums of squares), Std at least MinStd.
func (f *Folder) Normalization() (preprocess.Normalization, error) {
	n := preprocess.Normalization{Mean: make([]float32, f.ch), Std: make([]float32, f.ch)}
	sum, sq := make([]float64, f.ch), make([]float64, f.ch)
	plane := f.size * f.size
	const chunk = 256
	for start := 0; start < len(f.items); start += chunk {
		idx := make([]int, min(chunk, len(f.items)-start))
		for k := range idx {
			idx[k] = start + k
		}
		pix, err := f.read(idx)
		if err != nil {
			return n, err
		}
		for k := range idx {
			for c := 0; c < f.ch; c++ {
				for _, v := range pix[(k*f.ch+c)*plane : (k*f.ch+c+1)*plane] {
					sum[c] += float64(v)
					sq[c] += float64(v) * float64(v)
				}
			}
		}
	}
	count := float64(len(f.items)) * float64(plane)
	for c := range n.Mean {
		n.Std[c] = 1
		if count == 0 {
			continue
		}
		mean := sum[c] / count
		n.Mean[c] = float32(mean)
		n.Std[c] = float32(max(math.Sqrt(max(sq[c]/count-mean*mean, 0)), MinStd))
	}
	return n, nil
}

// OpenFolder is the lazy counterpart of an image-folder Load: dir/train and
// dir/test with the same class sub-folders, files listed (and their
// headers checked) but not decoded. workers is the number of goroutines
// that decode a batch (0: GOMAXPROCS).
func OpenFolder(dir string, opt Options, workers int) (train, test *Folder, err error) {
	l, err := openLayout(dir, opt)
	if err != nil {
		return nil, nil, err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	open := func(split string, needEach bool) (*Folder, error) {
		items, err := listFolderSplit(split, l.classes, needEach)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if err := preprocess.CheckFile(it.path); err != nil {
				return nil, errors.Wrap(err, "data")
			}
		}
		return &Folder{CacheBytes: DefaultCacheBytes, items: items, classes: l.classes, ch: l.ch, size: l.size, workers: workers}, nil
	}
	if train, err = open(l.trainDir, true); err != nil {
		return nil, nil, err
	}
	if test, err = open(l.testDir, false); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}
