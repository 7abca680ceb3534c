package model

import (
	"encoding/json"
	"fmt"
	"image"
	"math"
	"runtime"
	"sort"
	"strconv"
	"sync"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/ops"
	"github.com/vitgo/vit/train/data"
)

// Metadata keys that a training checkpoint carries beside the config
// (train.MetaClasses and train.MetaNorm name the same keys).
const (
	MetaClasses       = "classes"       // JSON list of class names, index = class
	MetaNormalization = "normalization" // JSON {"Mean": [...], "Std": [...]}, one value per channel
)

// Class is one class of a prediction.
type Class struct {
	Index int     `json:"class"`
	Label string  `json:"label"`
	Prob  float32 `json:"prob"`
}

// Prediction is the classifier's answer for one image.
type Prediction struct {
	Probs []float32 // softmax of the logits, one per class
	Top   []Class   // the most probable classes, most probable first (ties: lower index first)
}

// Explanation is a prediction together with what the model attended to.
type Explanation struct {
	Prediction
	// Input is the image as the model sees it before normalisation:
	// C×H×W values in [0,1] (converted, centre-cropped and resized).
	Input []float32
	// Attention holds every block's attention probabilities, block by
	// block, each Heads×T×T row-major (T = patches + 1, token 0 the class
	// token, patches row-major): row i is what token i attends to.
	Attention [][]float32
	Heads     int
	Tokens    int
}

// ClassifierOption changes how LoadClassifier builds a classifier.
type ClassifierOption func(*classifierOptions)

type classifierOptions struct {
	batch, workers, topK int
}

// WithBatchSize sets how many images one forward pass takes (default 16).
// Every graph is built for this batch; a shorter last batch is padded.
func WithBatchSize(n int) ClassifierOption { return func(o *classifierOptions) { o.batch = n } }

// WithWorkers sets how many forward passes may run at once (default
// DefaultWorkers()): the size of the pool of graphs, each with its own tape
// machine and activations, that concurrent callers share.
func WithWorkers(n int) ClassifierOption { return func(o *classifierOptions) { o.workers = n } }

// DefaultWorkers is GOMAXPROCS, at most 4: each graph holds a batch's
// activations (every block's attention included), and the matrix products
// of one pass already use several cores on large inputs.
func DefaultWorkers() int { return min(runtime.GOMAXPROCS(0), 4) }

// WithTopK sets how many classes Prediction.Top lists (default 5; at most
// the number of classes).
func WithTopK(k int) ClassifierOption { return func(o *classifierOptions) { o.topK = k } }

// Classifier classifies images with a model loaded once from a checkpoint.
//
// It is safe for concurrent use. A Gorgonia graph and its tape machine are
// not, so the classifier keeps a pool of them: WithWorkers graphs over the
// same weight tensors (read-only, shared, not copied), all built by
// LoadClassifier. Each call takes one graph from the pool for its whole
// duration, so concurrent calls run in parallel up to the pool size and
// wait beyond it.
type Classifier struct {
	cfg     Config
	classes []string
	norm    data.Normalization
	notes   []string
	batch   int
	topK    int
	pos     []float32 // the positional embedding, T×D

	pool chan *runner // the graphs not in use

	mu     sync.Mutex
	closed bool
}

// runner is one graph and machine for a fixed batch.
type runner struct {
	xbuf []float32
	out  *Outputs
	vm   G.VM
}

// LoadClassifier loads a checkpoint written by train.Run.Save (or plain
// weights written by SaveWeights) and prepares a classifier: the config
// from the "vit.config" metadata, the class names from "classes", the
// per-channel normalisation from "normalization". A file without class
// names gets "0", "1", …; one without normalisation gets mean 0 and std 1;
// each such fallback is described in Notes.
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
	st, meta, err := readSafetensors(path)
	if err != nil {
		return nil, err
	}
	cfg, err := ConfigFromMeta(meta)
	if err != nil {
		return nil, errors.Wrapf(err, "model: %s", path)
	}
	c := &Classifier{cfg: cfg, batch: o.batch, topK: min(o.topK, cfg.NumClasses), pool: make(chan *runner, o.workers)}
	if c.classes, err = classesFromMeta(path, meta, cfg.NumClasses, &c.notes); err != nil {
		return nil, err
	}
	if c.norm, err = normFromMeta(path, meta, cfg.Channels, &c.notes); err != nil {
		return nil, err
	}
	if err := CheckFits(cfg, st); err != nil {
		return nil, errors.Wrapf(err, "model: %s", path)
	}
	m, err := New(G.NewGraph(), cfg)
	if err != nil {
		return nil, err
	}
	if err := m.LoadTensors(st); err != nil {
		return nil, errors.Wrapf(err, "model: load %s", path)
	}
	c.pos = append([]float32(nil), m.PosEmbed.Value().Data().([]float32)...)
	// Every graph is built now, before any runs: building a tape machine
	// writes to the (shared) parameter tensors' engine field, which must not
	// happen while another machine reads them.
	for i := 0; i < o.workers; i++ {
		mi := m
		if i > 0 {
			if mi, err = New(G.NewGraph(), cfg, SharingWeights(m)); err != nil {
				return nil, err
			}
		}
		r, err := c.newRunner(mi)
		if err != nil {
			return nil, err
		}
		c.pool <- r
	}
	return c, nil
}

func classesFromMeta(path string, meta map[string]string, k int, notes *[]string) ([]string, error) {
	s, ok := meta[MetaClasses]
	if !ok {
		names := make([]string, k)
		for i := range names {
			names[i] = strconv.Itoa(i)
		}
		*notes = append(*notes, fmt.Sprintf("%s has no %q metadata (plain weights, not a training checkpoint): classes are named 0..%d", path, MetaClasses, k-1))
		return names, nil
	}
	var names []string
	if err := json.Unmarshal([]byte(s), &names); err != nil {
		return nil, errors.Errorf("model: %s: %q metadata is not a JSON list of names: %v", path, MetaClasses, err)
	}
	if len(names) != k {
		return nil, errors.Errorf("model: %s: %q metadata lists %d names, expected %d (the model's classes)", path, MetaClasses, len(names), k)
	}
	return names, nil
}

func normFromMeta(path string, meta map[string]string, ch int, notes *[]string) (data.Normalization, error) {
	s, ok := meta[MetaNormalization]
	if !ok {
		n := data.Normalization{Mean: make([]float32, ch), Std: make([]float32, ch)}
		for i := range n.Std {
			n.Std[i] = 1
		}
		*notes = append(*notes, fmt.Sprintf("%s has no %q metadata: pixels in [0,1] go in unnormalised (mean 0, std 1)", path, MetaNormalization))
		return n, nil
	}
	var n data.Normalization
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		return n, errors.Errorf("model: %s: %q metadata is not JSON {\"Mean\": [...], \"Std\": [...]}: %v", path, MetaNormalization, err)
	}
	if len(n.Mean) != ch || len(n.Std) != ch {
		return n, errors.Errorf("model: %s: %q metadata has %d means and %d stds, expected %d of each (the model's channels)", path, MetaNormalization, len(n.Mean), len(n.Std), ch)
	}
	for i := 0; i < ch; i++ {
		m, sd := float64(n.Mean[i]), float64(n.Std[i])
		if math.IsNaN(m) || math.IsInf(m, 0) || !(sd > 0) || math.IsInf(sd, 0) {
			return n, errors.Errorf("model: %s: %q metadata has mean %v and std %v for channel %d, expected a finite mean and a finite positive std", path, MetaNormalization, m, sd, i)
		}
	}
	return n, nil
}

// newRunner builds the forward pass of m, with dropout off, for a batch.
func (c *Classifier) newRunner(m *ViT) (*runner, error) {
	m.SetTraining(false)
	cfg := c.cfg
	shape := []int{c.batch, cfg.Channels, cfg.ImageSize, cfg.ImageSize}
	r := &runner{xbuf: make([]float32, c.batch*c.chw())}
	x := G.NewTensor(m.Graph(), tensor.Float32, 4, G.WithShape(shape...), G.WithName("images"),
		G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(r.xbuf))))
	var err error
	if r.out, err = m.ForwardAll(x); err != nil {
		return nil, err
	}
	// Intermediate results share buffers; everything the classifier
	// reads after a run is kept.
	keep := append(G.Nodes{r.out.Logits, r.out.Features, r.out.Tokens}, r.out.Attention...)
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

// acquire takes a graph from the pool, waiting while all are in use.
func (c *Classifier) acquire() (*runner, error) {
	r := <-c.pool
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		c.pool <- r // let other waiters see the closed state too
		return nil, errors.New("model: the classifier is closed")
	}
	return r, nil
}

func (c *Classifier) release(r *runner) { c.pool <- r }

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
	rs := make([]*runner, cap(c.pool))
	for i := range rs {
		rs[i] = <-c.pool
		rs[i].vm.Close()
	}
	for _, r := range rs {
		c.pool <- r
	}
}

// Config returns the model's config.
func (c *Classifier) Config() Config { return c.cfg }

// Classes returns the class names, index = class (a copy).
func (c *Classifier) Classes() []string { return append([]string(nil), c.classes...) }

// Normalization returns the per-channel mean and std applied to pixels in
// [0,1] (a copy).
func (c *Classifier) Normalization() data.Normalization {
	return data.Normalization{Mean: append([]float32(nil), c.norm.Mean...), Std: append([]float32(nil), c.norm.Std...)}
}

// Notes describes the fallbacks LoadClassifier used for metadata the file
// did not have (empty for a training checkpoint).
func (c *Classifier) Notes() []string { return append([]string(nil), c.notes...) }

// BatchSize returns the number of images one forward pass takes.
func (c *Classifier) BatchSize() int { return c.batch }

// PositionalEmbedding returns a copy of the learnt positional embedding,
// Tokens×Dim row-major, row 0 the class token's, then the patches
// row-major.
func (c *Classifier) PositionalEmbedding() (pe []float32, tokens, dim int) {
	return append([]float32(nil), c.pos...), c.cfg.Tokens(), c.cfg.Dim
}

func (c *Classifier) chw() int { return c.cfg.Channels * c.cfg.ImageSize * c.cfg.ImageSize }

// Pixels converts img to the model's C×H×W input in [0,1], before
// normalisation, as the trainer's image-folder reader does
// (data.ImageToCHW): gray ↔ RGB, centred square crop, resized to ImageSize.
func (c *Classifier) Pixels(img image.Image) ([]float32, error) {
	x := make([]float32, c.chw())
	if err := data.ImageToCHW(img, c.cfg.Channels, c.cfg.ImageSize, x); err != nil {
		return nil, errors.Wrap(err, "model: image")
	}
	return x, nil
}

// Normalize applies the classifier's normalisation, in place, to n images
// of C×H×W pixels in [0,1]: (x − mean[c]) / std[c], as in training.
func (c *Classifier) Normalize(x []float32) error {
	if len(x)%c.chw() != 0 {
		return errors.Errorf("model: %d values are not a whole number of %d×%d×%d images", len(x), c.cfg.Channels, c.cfg.ImageSize, c.cfg.ImageSize)
	}
	plane := c.cfg.ImageSize * c.cfg.ImageSize
	for i := 0; i < len(x); i += plane {
		ch := (i / plane) % c.cfg.Channels
		m, s := c.norm.Mean[ch], c.norm.Std[ch]
		for j := i; j < i+plane; j++ {
			x[j] = (x[j] - m) / s
		}
	}
	return nil
}

// Classify converts, normalises and classifies images, in batches.
func (c *Classifier) Classify(imgs []image.Image) ([]Prediction, error) {
	x := make([]float32, len(imgs)*c.chw())
	for i, img := range imgs {
		if err := data.ImageToCHW(img, c.cfg.Channels, c.cfg.ImageSize, x[i*c.chw():(i+1)*c.chw()]); err != nil {
			return nil, errors.Wrapf(err, "model: image %d", i)
		}
	}
	if err := c.Normalize(x); err != nil {
		return nil, err
	}
	return c.ClassifyTensor(x, len(imgs))
}

// ClassifyTensor classifies n images that are already converted and
// normalised: n×C×H×W values in the model's geometry.
func (c *Classifier) ClassifyTensor(x []float32, n int) ([]Prediction, error) {
	if n < 0 || len(x) != n*c.chw() {
		return nil, errors.Errorf("model: ClassifyTensor: %d values for %d images, expected %d (%d×%d×%d each)",
			len(x), n, max(n, 0)*c.chw(), c.cfg.Channels, c.cfg.ImageSize, c.cfg.ImageSize)
	}
	if n == 0 {
		return nil, nil
	}
	r, err := c.acquire()
	if err != nil {
		return nil, err
	}
	defer c.release(r)
	preds := make([]Prediction, 0, n)
	k := c.cfg.NumClasses
	for start := 0; start < n; start += c.batch {
		b := min(c.batch, n-start)
		copy(r.xbuf, x[start*c.chw():(start+b)*c.chw()])
		clear(r.xbuf[b*c.chw():]) // padding of a short last batch; its outputs are not read
		if err := r.run(); err != nil {
			return nil, err
		}
		logits := r.out.Logits.Value().Data().([]float32)
		for i := 0; i < b; i++ {
			p, err := c.predict(logits[i*k : (i+1)*k])
			if err != nil {
				return nil, errors.Wrapf(err, "model: image %d", start+i)
			}
			preds = append(preds, p)
		}
	}
	return preds, nil
}

// predict turns one row of logits into probabilities and the top classes.
func (c *Classifier) predict(logits []float32) (Prediction, error) {
	mx := math.Inf(-1)
	for j, v := range logits {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return Prediction{}, errors.Errorf("the model gave logit %v for class %d, expected finite logits (are the weights finite?)", v, j)
		}
		mx = math.Max(mx, f)
	}
	var sum float64
	e := make([]float64, len(logits))
	for j, v := range logits {
		e[j] = math.Exp(float64(v) - mx)
		sum += e[j]
	}
	p := Prediction{Probs: make([]float32, len(logits))}
	idx := make([]int, len(logits))
	for j := range e {
		p.Probs[j] = float32(e[j] / sum)
		idx[j] = j
	}
	sort.SliceStable(idx, func(a, b int) bool { return e[idx[a]] > e[idx[b]] })
	for _, j := range idx[:c.topK] {
		p.Top = append(p.Top, Class{Index: j, Label: c.classes[j], Prob: p.Probs[j]})
	}
	return p, nil
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
	r, err := c.acquire()
	if err != nil {
		return nil, err
	}
	defer c.release(r)
	copy(r.xbuf, x)
	clear(r.xbuf[len(x):])
	if err := r.run(); err != nil {
		return nil, err
	}
	k := c.cfg.NumClasses
	p, err := c.predict(r.out.Logits.Value().Data().([]float32)[:k])
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
