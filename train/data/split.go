package data

import (
	"math/rand"
	"slices"
	"sort"

	"github.com/pkg/errors"

	"github.com/vitgo/vit/model/preprocess"
)

// Labeled is a Source whose labels can be read without reading images.
type Labeled interface {
	Source
	Label(i int) int
}

var (
	_ Labeled = (*Dataset)(nil)
	_ Labeled = (*Folder)(nil)
	_ Labeled = (*View)(nil)
)

// Label is d.Labels[i].
func (d *Dataset) Label(i int) int { return d.Labels[i] }

// Label is the label of image i (its class folder).
func (f *Folder) Label(i int) int { return f.items[i].label }

// View is a Source made of some images of another, in a given order: a
// training split without its held-out validation images, or those images.
type View struct {
	src Labeled
	idx []int
	buf []int // mapped indices of a batch
}

// NewView returns the images idx of src (each in range; repeats allowed).
func NewView(src Labeled, idx []int) (*View, error) {
	for k, i := range idx {
		if i < 0 || i >= src.Len() {
			return nil, errors.Errorf("data: view index %d (position %d) out of range, expected 0..%d", i, k, src.Len()-1)
		}
	}
	return &View{src: src, idx: slices.Clone(idx)}, nil
}

// Indices are the source's indices of the view's images, in order.
func (v *View) Indices() []int { return v.idx }

// Source is the Source the view reads from.
func (v *View) Source() Labeled { return v.src }

// Len is the number of images in the view.
func (v *View) Len() int { return len(v.idx) }

// Shape is the source's.
func (v *View) Shape() (c, h, w int) { return v.src.Shape() }

// ClassNames are the source's.
func (v *View) ClassNames() []string { return v.src.ClassNames() }

// Label is the label of the view's image i.
func (v *View) Label(i int) int { return v.src.Label(v.idx[i]) }

// ReadBatch reads the view's images idx from the source. A View is for
// one goroutine at a time (as the trainer reads batches).
func (v *View) ReadBatch(dst []float32, labels []int, idx []int, norm preprocess.Normalization, aug *Augment, rng *rand.Rand) error {
	mapped, err := v.mapped(idx)
	if err != nil {
		return err
	}
	return v.src.ReadBatch(dst, labels, mapped, norm, aug, rng)
}

func (v *View) mapped(idx []int) ([]int, error) {
	if cap(v.buf) < len(idx) {
		v.buf = make([]int, len(idx))
	}
	out := v.buf[:len(idx)]
	for k, i := range idx {
		if i < 0 || i >= len(v.idx) {
			return nil, errors.Errorf("data: index %d (position %d) out of range, expected 0..%d", i, k, len(v.idx)-1)
		}
		out[k] = v.idx[i]
	}
	return out, nil
}

// SplitValidation holds out n images of src for validation, stratified:
// each class gives its share of n in proportion to its count (largest
// remainders first, ties to the lower label), the images chosen at random
// from the seed. It returns the remaining training images and the held-out
// ones, each in src's order. The split depends only on src's labels, n and
// seed, so a resumed run holds out the same images. n must leave at least
// one training image.
func SplitValidation(src Labeled, n int, seed int64) (train, val *View, err error) {
	total := src.Len()
	if n <= 0 || n >= total {
		return nil, nil, errors.Errorf("data: validation split of %d images, expected 1..%d (the training split has %d)", n, total-1, total)
	}
	k := len(src.ClassNames())
	byClass := make([][]int, k)
	for i := 0; i < total; i++ {
		l := src.Label(i)
		if l < 0 || l >= k {
			return nil, nil, errors.Errorf("data: image %d has label %d, expected 0..%d", i, l, k-1)
		}
		byClass[l] = append(byClass[l], i)
	}
	// Quotas: floor of the proportional share, then one more for the
	// classes with the largest remainders until n is reached.
	quota := make([]int, k)
	type rem struct{ class, num int } // remainder num/total
	var rems []rem
	given := 0
	for c, imgs := range byClass {
		q := n * len(imgs)
		quota[c] = q / total
		given += quota[c]
		rems = append(rems, rem{c, q % total})
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].num > rems[b].num })
	for i := 0; given < n; i++ {
		quota[rems[i].class]++
		given++
	}
	held := make([]bool, total)
	rng := rand.New(rand.NewSource(seed*1_000_033 + 17))
	for c, imgs := range byClass {
		for _, j := range rng.Perm(len(imgs))[:quota[c]] {
			held[imgs[j]] = true
		}
	}
	var trainIdx, valIdx []int
	for i, h := range held {
		if h {
			valIdx = append(valIdx, i)
		} else {
			trainIdx = append(trainIdx, i)
		}
	}
	return &View{src: src, idx: trainIdx}, &View{src: src, idx: valIdx}, nil
}
