package model

import (
	"image"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/layers/ops"
	"github.com/vitgo/vit/model/preprocess"
)

// ClassifierOption changes how LoadClassifier builds a classifier.
type ClassifierOption func(*classifierOptions)

type classifierOptions struct {
	batch, workers, topK, heads int
	exact                       bool
	classes                     []string
	spec                        preprocess.Spec
}

// WithBatchSize sets how many images one forward pass takes (default 16).
// Every graph is built for this batch; a shorter last batch is padded.
func WithBatchSize(n int) ClassifierOption { return func(o *classifierOptions) { o.batch = n } }

// WithExactBatches builds, beside each graph for the batch size, graphs for
// every power of two below it, so that fewer images than a batch run
// without padding: 11 images on a batch of 16 run as 8, 2 and 1. It suits a
// server, whose batches are as large as the requests waiting; without it a
// short batch is padded to the full size.
func WithExactBatches() ClassifierOption { return func(o *classifierOptions) { o.exact = true } }

// WithWorkers sets how many forward passes may run at once (default
// DefaultWorkers()): the size of the pool of graphs, each with its own tape
// machine and activations.
func WithWorkers(n int) ClassifierOption { return func(o *classifierOptions) { o.workers = n } }

// DefaultWorkers is GOMAXPROCS, at most 4: each graph holds a batch's
// activations (every block's attention included), and the matrix products
// of one pass already use several cores on large inputs.
func DefaultWorkers() int { return min(runtime.GOMAXPROCS(0), 4) }

// WithHeads sets the number of attention heads of plain weights whose
// architecture is read from their shapes (default: width/64).
func WithHeads(n int) ClassifierOption { return func(o *classifierOptions) { o.heads = n } }

// WithClassNames names the classes, index = class, instead of the names the
// weights come with.
func WithClassNames(names []string) ClassifierOption {
	return func(o *classifierOptions) { o.classes = append([]string(nil), names...) }
}

// WithPreprocess changes the preprocessing the weights come with
// (File.Transform): another standard transform, filter, crop fraction or
// normalisation.
func WithPreprocess(s preprocess.Spec) ClassifierOption {
	return func(o *classifierOptions) { o.spec = s }
}

// WithTopK sets how many classes Prediction.Top lists (default 5; at most
// the number of classes).
func WithTopK(k int) ClassifierOption { return func(o *classifierOptions) { o.topK = k } }

// Classifier classifies images with a model loaded once from a checkpoint.
//
// It is safe for concurrent use. A Gorgonia graph and its tape machine are
// not, so the classifier keeps a pool of them: WithWorkers graphs over the
// same weight tensors (read-only, shared, not copied), all built by
// LoadClassifier. One call on many images spreads its batches over every
// free graph of the pool; concurrent calls share the pool.
type Classifier struct {
	cfg     Config
	classes []string
	tr      preprocess.Transform
	notes   []string
	batch   int
	topK    int
	pos     []float32 // the positional embedding, T×D

	pool       chan *worker // the graphs not in use
	busy, peak atomic.Int32 // graphs in use now, and at most so far

	mu     sync.Mutex
	closed bool
}

// worker is one entry of the pool: a graph for the batch size and, with
// WithExactBatches, graphs for the powers of two below it; runs is sorted
// by batch size, the full batch last.
type worker struct{ runs []*runner }

// pick returns the graph for the next part of n images: the largest that
// is not larger than n, or the smallest (padded) if all are larger.
func (w *worker) pick(n int) *runner {
	best := w.runs[0]
	for _, r := range w.runs[1:] {
		if r.n <= n {
			best = r
		}
	}
	return best
}

// runner is one graph and machine for a fixed batch of n images.
type runner struct {
	n    int
	xbuf []float32
	out  *Outputs
	vm   G.VM
}

// LoadClassifier loads a checkpoint written by train.Run.Save, weights
// written by SaveWeights, or published weights in timm's, torchvision's or
// Hugging Face's names (a Hugging Face model directory's
// model.safetensors, config.json and preprocessor_config.json are read
// together), and prepares a classifier: the model from File.NewModel, the
// class names from File.Classes, the preprocessing from File.Transform.
// Notes describes what was inferred or taken by default.
func LoadClassifier(path string, opts ...ClassifierOption) (*Classifier, error) {
	o := classifierOptions{batch: 16, workers: DefaultWorkers(), topK: 5}
	for _, f := range opts {
		f(&o)
	}
	if o.batch < 1 {
		return nil, errors.Errorf("model: classifier batch size %d, expected at least 1", o.batch)
	}
	if o.workers < 1 {
		return nil, errors.Errorf("model: classifier workers %d, expected at least 1", o.workers)
	}
	if o.topK < 1 {
		return nil, errors.Errorf("model: classifier top-k %d, expected at least 1", o.topK)
	}
	f, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	f.Heads = o.heads
	m, err := f.NewModel(G.NewGraph())
	if err != nil {
		return nil, err
	}
	cfg := m.Config
	c := &Classifier{cfg: cfg, batch: o.batch, topK: min(o.topK, cfg.NumClasses), pool: make(chan *worker, o.workers)}
	var notes [3]string
	if f.Source() != FromMetadata {
		notes[0] = describeSource(cfg, f.Source(), f.naming)
	}
	if c.classes = o.classes; c.classes == nil {
		if c.classes, notes[1], err = f.Classes(cfg.NumClasses); err != nil {
			return nil, err
		}
	} else if len(c.classes) != cfg.NumClasses {
		return nil, errors.Errorf("model: %d class names for a model of %d classes", len(c.classes), cfg.NumClasses)
	}
	if c.tr, notes[2], err = f.Transform(cfg); err != nil {
		return nil, err
	}
	if c.tr, err = o.spec.Apply(c.tr); err != nil {
		return nil, errors.Wrapf(err, "model: %s", path)
	}
	for _, n := range notes {
		if n != "" {
			c.notes = append(c.notes, n)
		}
	}
	c.pos = append([]float32(nil), m.PosEmbed.Value().Data().([]float32)...)
	// Every graph is built now, before any runs: building a tape machine
	// writes to the (shared) parameter tensors' engine field, which must not
	// happen while another machine reads them.
	sizes := []int{o.batch}
	if o.exact {
		sizes = sizes[:0]
		for s := 1; s < o.batch; s *= 2 {
			sizes = append(sizes, s)
		}
		sizes = append(sizes, o.batch)
	}
	first := true
	var graphs []*G.ExprGraph
	for i := 0; i < o.workers; i++ {
		w := &worker{}
		for _, n := range sizes {
			mi := m
			if !first {
				if mi, err = New(G.NewGraph(), cfg, SharingWeights(m)); err != nil {
					return nil, err
				}
			}
			first = false
			r, err := newRunner(mi, n, len(w.runs) == 0)
			if err != nil {
				return nil, err
			}
			w.runs = append(w.runs, r)
			graphs = append(graphs, mi.Graph())
		}
		c.pool <- w
	}
	// The weights never change: each is packed for the matrix products
	// once, shared by every graph, not at every forward pass.
	ops.FreezeWeights(graphs...)
	return c, nil
}

// newRunner builds the forward pass of m, with dropout off, for n images.
// The attention probabilities stay readable after a run only with
// attention (the smallest graph of a worker, which Explain uses); in the
// others their buffers are reused.
func newRunner(m *ViT, n int, attention bool) (*runner, error) {
	m.SetTraining(false)
	r := &runner{n: n}
	x, err := m.NewInput(n, "images")
	if err != nil {
		return nil, err
	}
	r.xbuf = x.Value().Data().([]float32)
	if r.out, err = m.ForwardAll(x); err != nil {
		return nil, err
	}
	// Intermediate results share buffers; what the classifier reads after
	// a run is kept.
	keep := G.Nodes{r.out.Logits}
	if attention {
		keep = append(keep, r.out.Attention...)
	}
	if _, err := ops.ShareBuffers(m.Graph(), keep...); err != nil {
		return nil, err
	}
	r.vm = G.NewTapeMachine(m.Graph())
	return r, nil
}

// run runs the graph on r.xbuf. A panic inside Gorgonia becomes an error.
func (r *runner) run() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errors.Errorf("model: forward pass failed: %v", p)
		}
	}()
	r.vm.Reset()
	return errors.Wrap(r.vm.RunAll(), "model: forward pass")
}

// acquire takes a worker from the pool, waiting while all are in use.
func (c *Classifier) acquire() (*worker, error) {
	r := <-c.pool
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		c.pool <- r // let other waiters see the closed state too
		return nil, errors.New("model: the classifier is closed")
	}
	b := c.busy.Add(1)
	for p := c.peak.Load(); b > p && !c.peak.CompareAndSwap(p, b); p = c.peak.Load() {
	}
	return r, nil
}

func (c *Classifier) release(r *worker) {
	c.busy.Add(-1)
	c.pool <- r
}

// Close waits for calls in progress to finish and releases the tape
// machines. Calls after Close return an error.
func (c *Classifier) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	rs := make([]*worker, cap(c.pool))
	for i := range rs {
		rs[i] = <-c.pool
		for _, r := range rs[i].runs {
			r.vm.Close()
		}
	}
	for _, r := range rs {
		c.pool <- r
	}
}

// Config returns the model's config.
func (c *Classifier) Config() Config { return c.cfg }

// BatchSize returns the number of images one forward pass takes at most.
func (c *Classifier) BatchSize() int { return c.batch }

// Workers returns the number of forward passes that may run at once.
func (c *Classifier) Workers() int { return cap(c.pool) }

// Classes returns the class names, index = class (a copy).
func (c *Classifier) Classes() []string { return append([]string(nil), c.classes...) }

// Normalization returns the per-channel mean and std applied to pixels in
// [0,1] (a copy).
func (c *Classifier) Normalization() preprocess.Normalization { return c.tr.Norm.Clone() }

// Transform returns the preprocessing: how an image becomes the model's
// input.
func (c *Classifier) Transform() preprocess.Transform {
	t := c.tr
	t.Norm = t.Norm.Clone()
	return t
}

// Notes describes the fallbacks LoadClassifier used for metadata the file
// did not have (empty for a training checkpoint).
func (c *Classifier) Notes() []string { return append([]string(nil), c.notes...) }

// PositionalEmbedding returns a copy of the learnt positional embedding,
// Tokens×Dim row-major, row 0 the class token's, then the patches
// row-major.
func (c *Classifier) PositionalEmbedding() (pe []float32, tokens, dim int) {
	return append([]float32(nil), c.pos...), c.cfg.Tokens(), c.cfg.Dim
}

func (c *Classifier) chw() int { return c.cfg.Channels * c.cfg.ImageSize * c.cfg.ImageSize }

// Pixels converts img to the model's C×H×W input in [0,1], before
// normalisation, with the classifier's Transform: for this package's
// checkpoints as the trainer's image-folder reader does (gray ↔ RGB,
// centred square crop, resized to ImageSize), for published weights as
// their evaluation transform does.
func (c *Classifier) Pixels(img image.Image) ([]float32, error) {
	x := make([]float32, c.chw())
	if err := c.tr.Pixels(img, x); err != nil {
		return nil, errors.Wrap(err, "model: image")
	}
	return x, nil
}

// Normalize applies the classifier's normalisation, in place, to n images
// of C×H×W pixels in [0,1]: (x − mean[c]) / std[c], as in training.
func (c *Classifier) Normalize(x []float32) error {
	return errors.Wrap(c.tr.Norm.Apply(x, c.cfg.ImageSize*c.cfg.ImageSize), "model")
}

// Classify converts, normalises and classifies images, in batches spread
// over the pool's graphs.
func (c *Classifier) Classify(imgs []image.Image) ([]Prediction, error) {
	x := make([]float32, len(imgs)*c.chw())
	for i, img := range imgs {
		if err := c.tr.Pixels(img, x[i*c.chw():(i+1)*c.chw()]); err != nil {
			return nil, errors.Wrapf(err, "model: image %d", i)
		}
	}
	if err := c.Normalize(x); err != nil {
		return nil, err
	}
	return c.ClassifyTensor(x, len(imgs))
}

// ClassifyPixels classifies n images converted to the model's geometry
// (Pixels, preprocess.ToCHW) but not normalised: n×C×H×W values in [0,1].
// x is left as it is; a normalised copy is classified.
func (c *Classifier) ClassifyPixels(x []float32, n int) ([]Prediction, error) {
	xn := append([]float32(nil), x...)
	if err := c.Normalize(xn); err != nil {
		return nil, err
	}
	return c.ClassifyTensor(xn, n)
}

// ClassifyTensor classifies n images that are already converted and
// normalised: n×C×H×W values in the model's geometry. The batches run in
// parallel on every graph of the pool that is free (and on the others as
// they come free); the result does not depend on which graph ran which.
func (c *Classifier) ClassifyTensor(x []float32, n int) ([]Prediction, error) {
	if n < 0 || len(x) != n*c.chw() {
		return nil, errors.Errorf("model: ClassifyTensor: %d values for %d images, expected %d (%d×%d×%d each)",
			len(x), n, max(n, 0)*c.chw(), c.cfg.Channels, c.cfg.ImageSize, c.cfg.ImageSize)
	}
	if n == 0 {
		return nil, nil
	}
	preds := make([]Prediction, n)
	batches := (n + c.batch - 1) / c.batch
	workers := min(cap(c.pool), batches)
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			errs[w] = c.runBatches(x, preds, &next, batches)
		}(w)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return preds, nil
}

// afterAcquire, if set (by tests), runs when runBatches has taken a graph.
var afterAcquire func()

// runBatches takes one graph and runs batches next, next+1, … of x on it
// until none is left, writing their predictions.
func (c *Classifier) runBatches(x []float32, preds []Prediction, next *atomic.Int64, batches int) error {
	w, err := c.acquire()
	if err != nil {
		return err
	}
	defer c.release(w)
	if afterAcquire != nil {
		afterAcquire()
	}
	chw, k := c.chw(), c.cfg.NumClasses
	for {
		bi := int(next.Add(1)) - 1
		if bi >= batches {
			return nil
		}
		end := min((bi+1)*c.batch, len(preds))
		for start := bi * c.batch; start < end; {
			r := w.pick(end - start)
			b := min(r.n, end-start)
			copy(r.xbuf, x[start*chw:(start+b)*chw])
			clear(r.xbuf[b*chw:]) // padding of a short batch; its outputs are not read
			if err := r.run(); err != nil {
				return err
			}
			logits := r.out.Logits.Value().Data().([]float32)
			for i := 0; i < b; i++ {
				if preds[start+i], err = c.predict(logits[i*k : (i+1)*k]); err != nil {
					return errors.Wrapf(err, "model: image %d", start+i)
				}
			}
			start += b
		}
	}
}

// Explain classifies one image and returns, with the prediction, the input
// as the model saw it and every block's attention probabilities.
func (c *Classifier) Explain(img image.Image) (*Explanation, error) {
	in, err := c.Pixels(img)
	if err != nil {
		return nil, err
	}
	x := append([]float32(nil), in...)
	if err := c.Normalize(x); err != nil {
		return nil, err
	}
	w, err := c.acquire()
	if err != nil {
		return nil, err
	}
	defer c.release(w)
	r := w.runs[0]
	copy(r.xbuf, x)
	clear(r.xbuf[len(x):])
	if err := r.run(); err != nil {
		return nil, err
	}
	p, err := c.predict(r.out.Logits.Value().Data().([]float32)[:c.cfg.NumClasses])
	if err != nil {
		return nil, errors.Wrap(err, "model: image")
	}
	t := c.cfg.Tokens()
	per := c.cfg.Heads * t * t
	ex := &Explanation{Prediction: p, Input: in, Heads: c.cfg.Heads, Tokens: t}
	for _, a := range r.out.Attention {
		ex.Attention = append(ex.Attention, append([]float32(nil), a.Value().Data().([]float32)[:per]...))
	}
	return ex, nil
}
