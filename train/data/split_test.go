package data

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/vitgo/vit/model/preprocess"
)

// labeledSet is a Dataset of n tiny images whose labels follow counts
// (class c has counts[c] images, interleaved), pixel values = index.
func labeledSet(counts []int) *Dataset {
	d := &Dataset{C: 1, H: 2, W: 2}
	left := slices.Clone(counts)
	for more := true; more; {
		more = false
		for c := range left {
			if left[c] > 0 {
				left[c]--
				more = true
				d.Labels = append(d.Labels, c)
				for p := 0; p < 4; p++ {
					d.Images = append(d.Images, float32(d.N)+float32(p)/10)
				}
				d.N++
			}
		}
	}
	for c := range counts {
		d.Classes = append(d.Classes, string(rune('a'+c)))
	}
	return d
}

// TestSplitValidation: the held-out images are n, stratified (each class
// within one image of its proportional share), disjoint from and together
// with the training ones all the images, in order, the same for a seed and
// another for another seed; views read the source's images and labels.
func TestSplitValidation(t *testing.T) {
	counts := []int{600, 300, 97, 3}
	d := labeledSet(counts)
	for _, n := range []int{1, 10, 100, 333, 999} {
		tr, val, err := SplitValidation(d, n, 7)
		if err != nil {
			t.Fatal(err)
		}
		if val.Len() != n || tr.Len()+val.Len() != d.N {
			t.Fatalf("n=%d: %d held out and %d kept of %d", n, val.Len(), tr.Len(), d.N)
		}
		all := append(slices.Clone(tr.Indices()), val.Indices()...)
		slices.Sort(all)
		for i, v := range all {
			if v != i {
				t.Fatalf("n=%d: the two parts are not a partition (index %d is %d)", n, i, v)
			}
		}
		if !slices.IsSorted(tr.Indices()) || !slices.IsSorted(val.Indices()) {
			t.Fatalf("n=%d: parts not in the source's order", n)
		}
		per := make([]int, len(counts))
		for i := 0; i < val.Len(); i++ {
			per[val.Label(i)]++
		}
		for c, k := range per {
			share := float64(n) * float64(counts[c]) / float64(d.N)
			if float64(k) < share-1 || float64(k) > share+1 {
				t.Errorf("n=%d: class %d has %d held out, its share is %.2f", n, c, k, share)
			}
		}
		again, _, _ := SplitValidation(d, n, 7)
		if !slices.Equal(again.Indices(), tr.Indices()) {
			t.Fatalf("n=%d: the same seed gave another split", n)
		}
		if n >= 10 {
			other, _, _ := SplitValidation(d, n, 8)
			if slices.Equal(other.Indices(), tr.Indices()) {
				t.Fatalf("n=%d: another seed gave the same split", n)
			}
		}
		// A view's batch is the source's batch of the mapped images.
		norm := preprocess.Normalization{Mean: []float32{0}, Std: []float32{1}}
		idx := []int{val.Len() - 1, 0}
		got, gotL := make([]float32, 8), make([]int, 2)
		if err := val.ReadBatch(got, gotL, idx, norm, nil, nil); err != nil {
			t.Fatal(err)
		}
		want, wantL := make([]float32, 8), make([]int, 2)
		d.Batch(want, wantL, []int{val.Indices()[idx[0]], val.Indices()[idx[1]]}, norm, nil, nil)
		if !slices.Equal(got, want) || !slices.Equal(gotL, wantL) {
			t.Fatalf("n=%d: view batch %v %v, source %v %v", n, got, gotL, want, wantL)
		}
	}
	for _, n := range []int{0, -1, d.N, d.N + 1} {
		if _, _, err := SplitValidation(d, n, 1); err == nil {
			t.Errorf("a split of %d of %d images was accepted", n, d.N)
		}
	}
	_, val, _ := SplitValidation(d, 10, 1)
	if err := val.ReadBatch(make([]float32, 4), make([]int, 1), []int{10}, preprocess.Normalization{Mean: []float32{0}, Std: []float32{1}}, nil, nil); err == nil {
		t.Error("a view read an image past its end")
	}
	if _, err := NewView(d, []int{0, d.N}); err == nil {
		t.Error("a view of an index past the source was accepted")
	}
}

// TestComputeNormalizationOf: over some images it is ComputeNormalization
// of a dataset of just those images.
func TestComputeNormalizationOf(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	d := &Dataset{N: 20, C: 3, H: 4, W: 5, Labels: make([]int, 20), Classes: []string{"x"}}
	d.Images = make([]float32, 20*3*4*5)
	for i := range d.Images {
		d.Images[i] = rng.Float32()
	}
	idx := []int{3, 7, 8, 15, 19}
	sub := &Dataset{N: len(idx), C: 3, H: 4, W: 5}
	for _, i := range idx {
		sub.Images = append(sub.Images, d.Image(i)...)
	}
	got, want := ComputeNormalizationOf(d, idx), ComputeNormalization(sub)
	if !slices.Equal(got.Mean, want.Mean) || !slices.Equal(got.Std, want.Std) {
		t.Fatalf("over %v: %v, of the subset %v", idx, got, want)
	}
}
