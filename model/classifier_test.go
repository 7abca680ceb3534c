package model

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/ops"
	"github.com/vitgo/vit/model/preprocess"
)

var clsConfig = Config{ImageSize: 8, PatchSize: 4, Channels: 3, Dim: 16, Depth: 2, Heads: 2, MLPDim: 32, NumClasses: 4}

var clsNames = []string{"cat", "dog", "emu", "yak"}

var clsNorm = preprocess.Normalization{Mean: []float32{0.5, 0.4, 0.3}, Std: []float32{0.25, 0.2, 0.3}}

// clsModel builds a small model whose head is scaled up so that different
// images get clearly different probabilities.
func clsModel(t *testing.T, cfg Config) *ViT {
	t.Helper()
	m, err := New(G.NewGraph(), cfg, WithSeed(7))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range [][]float32{m.Head.Weight.Value().Data().([]float32), m.PatchEmbed.Weight.Value().Data().([]float32)} {
		for i := range v {
			v[i] *= 60
		}
	}
	return m
}

// clsCheckpoint writes m with the given metadata (classes and
// normalisation, as train.Run.Save writes them) and returns the path.
func clsCheckpoint(t *testing.T, m *ViT, meta map[string]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	if err := m.SaveCheckpoint(path, nil, meta); err != nil {
		t.Fatal(err)
	}
	return path
}

func clsMeta(classes []string, norm preprocess.Normalization) map[string]string {
	c, _ := json.Marshal(classes)
	n, _ := json.Marshal(norm)
	return map[string]string{MetaClasses: string(c), MetaNormalization: string(n)}
}

// mustLoadClassifier loads a classifier that is closed when the test ends.
func mustLoadClassifier(t *testing.T, path string, opts ...ClassifierOption) *Classifier {
	t.Helper()
	c, err := LoadClassifier(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// clsImages returns images of assorted sizes and colour models.
func clsImages(n int, seed int64) []image.Image {
	rng := rand.New(rand.NewSource(seed))
	var out []image.Image
	for i := 0; i < n; i++ {
		w, h := 5+rng.Intn(20), 5+rng.Intn(20)
		switch i % 3 {
		case 0:
			img := image.NewNRGBA(image.Rect(0, 0, w, h))
			rng.Read(img.Pix)
			for j := 3; j < len(img.Pix); j += 4 {
				img.Pix[j] = 255
			}
			out = append(out, img)
		case 1:
			img := image.NewGray(image.Rect(0, 0, w, h))
			rng.Read(img.Pix)
			out = append(out, img)
		default:
			img := image.NewRGBA(image.Rect(3, 2, 3+w, 2+h)) // bounds not at the origin
			for y := img.Rect.Min.Y; y < img.Rect.Max.Y; y++ {
				for x := img.Rect.Min.X; x < img.Rect.Max.X; x++ {
					img.SetRGBA(x, y, color.RGBA{uint8(rng.Intn(256)), uint8(x * 9), uint8(y * 11), 255})
				}
			}
			out = append(out, img)
		}
	}
	return out
}

// referenceProbs runs one image through a graph of its own (model.Open,
// batch 1), normalised here, and returns the softmax of the logits.
func referenceProbs(t *testing.T, path string, img image.Image, norm preprocess.Normalization) []float64 {
	t.Helper()
	g := G.NewGraph()
	m, _, err := Open(g, path)
	if err != nil {
		t.Fatal(err)
	}
	m.SetTraining(false)
	c := m.Config
	x := make([]float32, c.Channels*c.ImageSize*c.ImageSize)
	if err := preprocess.ToCHW(img, c.Channels, c.ImageSize, x); err != nil {
		t.Fatal(err)
	}
	plane := c.ImageSize * c.ImageSize
	for i := range x {
		ch := i / plane
		x[i] = (x[i] - norm.Mean[ch]) / norm.Std[ch]
	}
	in := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, c.Channels, c.ImageSize, c.ImageSize), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(1, c.Channels, c.ImageSize, c.ImageSize), tensor.WithBacking(x))))
	logits, err := m.Forward(in)
	if err != nil {
		t.Fatal(err)
	}
	runGraph(t, g)
	l := logits.Value().Data().([]float32)
	p := make([]float64, len(l))
	var sum float64
	for i, v := range l {
		p[i] = math.Exp(float64(v))
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

func TestClassifierMatchesForward(t *testing.T) {
	path := clsCheckpoint(t, clsModel(t, clsConfig), clsMeta(clsNames, clsNorm))
	c := mustLoadClassifier(t, path, WithBatchSize(4), WithTopK(3))
	if len(c.Notes()) != 0 {
		t.Errorf("notes %q for a checkpoint with classes and normalisation, expected none", c.Notes())
	}
	if got := c.Classes(); strings.Join(got, ",") != strings.Join(clsNames, ",") {
		t.Errorf("classes %q, expected %q", got, clsNames)
	}
	if c.Config() != clsConfig {
		t.Errorf("config %v, expected %v", c.Config(), clsConfig)
	}
	imgs := clsImages(6, 1) // 6 images in batches of 4: the last batch is padded
	preds, err := c.Classify(imgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(preds) != len(imgs) {
		t.Fatalf("%d predictions for %d images", len(preds), len(imgs))
	}
	distinct := map[int]bool{}
	for i, p := range preds {
		want := referenceProbs(t, path, imgs[i], clsNorm)
		for j := range want {
			if math.Abs(float64(p.Probs[j])-want[j]) > 1e-5 {
				t.Fatalf("image %d: probabilities %v, the model's own forward pass gives %v", i, p.Probs, want)
			}
		}
		if len(p.Top) != 3 {
			t.Fatalf("image %d: %d top classes, expected 3", i, len(p.Top))
		}
		for r, cl := range p.Top {
			if cl.Label != clsNames[cl.Index] || cl.Prob != p.Probs[cl.Index] {
				t.Errorf("image %d: top %d is %+v, inconsistent with the classes and probabilities", i, r, cl)
			}
			if r > 0 && cl.Prob > p.Top[r-1].Prob {
				t.Errorf("image %d: top classes not in decreasing probability: %+v", i, p.Top)
			}
		}
		for j, v := range p.Probs {
			if j != p.Top[0].Index && v > p.Top[0].Prob {
				t.Errorf("image %d: class %d has probability %v above the top class's %v", i, j, v, p.Top[0].Prob)
			}
		}
		distinct[p.Top[0].Index] = true
	}
	if len(distinct) < 2 {
		t.Errorf("every image got the same class: the test model does not tell images apart, so the comparison proves little")
	}
}

func TestClassifierPlainWeights(t *testing.T) {
	m := clsModel(t, clsConfig)
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := m.SaveWeights(path); err != nil {
		t.Fatal(err)
	}
	c := mustLoadClassifier(t, path)
	if got := strings.Join(c.Classes(), ","); got != "0,1,2,3" {
		t.Errorf("classes %q, expected 0,1,2,3", got)
	}
	n := c.Normalization()
	for ch := 0; ch < 3; ch++ {
		if n.Mean[ch] != 0 || n.Std[ch] != 1 {
			t.Errorf("channel %d: mean %v std %v, expected 0 and 1", ch, n.Mean[ch], n.Std[ch])
		}
	}
	notes := strings.Join(c.Notes(), "\n")
	if !strings.Contains(notes, MetaClasses) || !strings.Contains(notes, MetaNormalization) {
		t.Errorf("notes %q do not mention both missing metadata keys", notes)
	}
	img := clsImages(1, 3)[0]
	p, err := c.Classify([]image.Image{img})
	if err != nil {
		t.Fatal(err)
	}
	want := referenceProbs(t, path, img, n)
	if math.Abs(float64(p[0].Probs[0])-want[0]) > 1e-5 || len(p[0].Top) != 4 {
		t.Errorf("probabilities %v (top %d), expected %v and the 4 classes", p[0].Probs, len(p[0].Top), want)
	}
}

func wantModelErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, expected one containing %q", parts)
	}
	if !strings.HasPrefix(err.Error(), "model: ") {
		t.Errorf("error %q does not start with \"model: \"", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func TestClassifierBadCheckpoints(t *testing.T) {
	m := clsModel(t, clsConfig)
	good := clsCheckpoint(t, m, clsMeta(clsNames, clsNorm))
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(garbage)
	meta := func(classes, norm string) string {
		mm := clsMeta(clsNames, clsNorm)
		if classes != "" {
			mm[MetaClasses] = classes
		}
		if norm != "" {
			mm[MetaNormalization] = norm
		}
		return clsCheckpoint(t, m, mm)
	}
	for _, tc := range []struct {
		name  string
		path  string
		parts []string
	}{
		{"missing", filepath.Join(dir, "nope.safetensors"), []string{"nope.safetensors"}},
		{"garbage", write("garbage.safetensors", garbage), []string{"garbage.safetensors"}},
		{"truncated", write("short.safetensors", b[:len(b)/2]), []string{"short.safetensors"}},
		{"empty", write("empty.safetensors", nil), []string{"0 bytes"}},
		{"classes not JSON", meta("[cat", ""), []string{MetaClasses, "JSON list"}},
		{"classes count", meta(`["a","b"]`, ""), []string{"2 names", "expected 4"}},
		{"norm not JSON", meta("", "{"), []string{MetaNormalization, "not JSON"}},
		{"norm channels", meta("", `{"Mean":[0.5],"Std":[0.2]}`), []string{"1 means", "expected 3"}},
		{"norm zero std", meta("", `{"Mean":[0,0,0],"Std":[1,0,1]}`), []string{"channel 1", "positive std"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadClassifier(tc.path)
			if c != nil {
				t.Errorf("got a classifier")
			}
			wantModelErr(t, err, tc.parts...)
		})
	}
	// A checkpoint with NaN weights loads, but classifying refuses to
	// return garbage.
	mv := clsModel(t, clsConfig)
	w := mv.Head.Bias.Value().Data().([]float32)
	w[1] = float32(math.NaN())
	c := mustLoadClassifier(t, clsCheckpoint(t, mv, clsMeta(clsNames, clsNorm)))
	_, err = c.Classify(clsImages(1, 1))
	wantModelErr(t, err, "image 0", "finite logits")

	for _, o := range []struct {
		opt  ClassifierOption
		part string
	}{{WithBatchSize(0), "batch size 0"}, {WithWorkers(-1), "workers -1"}, {WithTopK(0), "top-k 0"}} {
		_, err := LoadClassifier(good, o.opt)
		wantModelErr(t, err, o.part)
	}
}

func TestClassifierConvertsImages(t *testing.T) {
	gray := clsConfig
	gray.Channels = 1
	cGray := mustLoadClassifier(t, clsCheckpoint(t, clsModel(t, gray), clsMeta(clsNames, preprocess.Normalization{Mean: []float32{0.5}, Std: []float32{0.5}})))
	cRGB := mustLoadClassifier(t, clsCheckpoint(t, clsModel(t, clsConfig), clsMeta(clsNames, clsNorm)))

	// A colour image of the wrong size into a gray model: BT.601 luma, 8×8.
	rgb := image.NewNRGBA(image.Rect(0, 0, 24, 16)) // 16×16 centre square, shrunk by 2
	for y := 0; y < 16; y++ {
		for x := 0; x < 24; x++ {
			rgb.SetNRGBA(x, y, color.NRGBA{200, 100, 50, 255})
		}
	}
	px, err := cGray.Pixels(rgb)
	if err != nil {
		t.Fatal(err)
	}
	luma := float32((0.299*200 + 0.587*100 + 0.114*50) / 255)
	if len(px) != 64 || math.Abs(float64(px[0]-luma)) > 1e-6 || math.Abs(float64(px[63]-luma)) > 1e-6 {
		t.Errorf("gray model, colour 24×16 image: %d values, first %v last %v, expected 64 values of luma %v", len(px), px[0], px[len(px)-1], luma)
	}
	// A gray image of the wrong size into a colour model: copied to R, G, B.
	g := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range g.Pix {
		g.Pix[i] = uint8(i * 16)
	}
	px, err = cRGB.Pixels(g)
	if err != nil {
		t.Fatal(err)
	}
	if len(px) != 3*64 {
		t.Fatalf("colour model, gray 4×4 image: %d values, expected 192", len(px))
	}
	for i := 0; i < 64; i++ {
		if px[i] != px[64+i] || px[i] != px[128+i] {
			t.Fatalf("colour model, gray image: pixel %d is %v %v %v, expected equal channels", i, px[i], px[64+i], px[128+i])
		}
	}
	if px[0] != 0 || px[63] <= px[0] {
		t.Errorf("colour model, gray ramp grown to 8×8: first %v last %v, expected 0 and a larger value", px[0], px[63])
	}
	for _, c := range []*Classifier{cGray, cRGB} {
		if _, err := c.Classify([]image.Image{rgb, g}); err != nil {
			t.Errorf("%d channels: %v", c.Config().Channels, err)
		}
	}
	// Images that cannot be converted are refused by index, not a panic.
	var none image.Image
	_, err = cRGB.Classify([]image.Image{g, none})
	wantModelErr(t, err, "image 1", "nil image")
	_, err = cRGB.Classify([]image.Image{image.NewRGBA(image.Rect(0, 0, 0, 5))})
	wantModelErr(t, err, "image 0", "0×5")
	_, err = cRGB.ClassifyTensor(make([]float32, 100), 1)
	wantModelErr(t, err, "100 values", "expected 192")
	if p, err := cRGB.Classify(nil); err != nil || len(p) != 0 {
		t.Errorf("no images: %v, %v; expected no predictions and no error", p, err)
	}
}

func TestClassifierExplain(t *testing.T) {
	c := mustLoadClassifier(t, clsCheckpoint(t, clsModel(t, clsConfig), clsMeta(clsNames, clsNorm)), WithBatchSize(3))
	img := clsImages(2, 5)[1]
	ex, err := c.Explain(img)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Classify([]image.Image{img})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ex.Probs) != fmt.Sprint(p[0].Probs) {
		t.Errorf("Explain's probabilities %v differ from Classify's %v", ex.Probs, p[0].Probs)
	}
	T := clsConfig.Tokens()
	if len(ex.Attention) != clsConfig.Depth || ex.Tokens != T || ex.Heads != clsConfig.Heads {
		t.Fatalf("%d attention maps, %d tokens, %d heads; expected %d, %d, %d", len(ex.Attention), ex.Tokens, ex.Heads, clsConfig.Depth, T, clsConfig.Heads)
	}
	for l, a := range ex.Attention {
		if len(a) != clsConfig.Heads*T*T {
			t.Fatalf("block %d: %d values, expected %d", l, len(a), clsConfig.Heads*T*T)
		}
		for row := 0; row < clsConfig.Heads*T; row++ {
			var s float64
			for _, v := range a[row*T : (row+1)*T] {
				s += float64(v)
			}
			if math.Abs(s-1) > 1e-4 {
				t.Fatalf("block %d row %d sums to %v, expected 1", l, row, s)
			}
		}
	}
	want, _ := c.Pixels(img)
	if fmt.Sprint(ex.Input) != fmt.Sprint(want) {
		t.Errorf("Explain's input differs from Pixels")
	}
	pe, tok, dim := c.PositionalEmbedding()
	if tok != T || dim != clsConfig.Dim || len(pe) != T*dim {
		t.Errorf("positional embedding %d values, %d×%d; expected %d×%d", len(pe), tok, dim, T, clsConfig.Dim)
	}
	c.Close()
	_, err = c.Classify([]image.Image{img})
	wantModelErr(t, err, "closed")
}

// samePrediction: bit-identical with this module's SGEMM, whose result for
// an image does not depend on the other images in its batch; within 1e-5
// with OpenBLAS, whose kernels round a row differently depending on where
// it falls in the batch (same top classes in the same order either way).
func samePrediction(a, b Prediction) bool {
	if ops.BLAS == "sgemm" {
		return fmt.Sprint(a) == fmt.Sprint(b)
	}
	if len(a.Probs) != len(b.Probs) || len(a.Top) != len(b.Top) {
		return false
	}
	for i := range a.Probs {
		if math.Abs(float64(a.Probs[i]-b.Probs[i])) > 1e-5 {
			return false
		}
	}
	for i := range a.Top {
		if a.Top[i].Index != b.Top[i].Index {
			return false
		}
	}
	return true
}

// TestClassifierConcurrent classifies from many goroutines at once (run it
// with -race) and expects the serial answers.
func TestClassifierConcurrent(t *testing.T) {
	c := mustLoadClassifier(t, clsCheckpoint(t, clsModel(t, clsConfig), clsMeta(clsNames, clsNorm)), WithBatchSize(2), WithWorkers(3))
	imgs := clsImages(6, 9)
	serial := make([]Prediction, len(imgs))
	for i, img := range imgs {
		p, err := c.Classify([]image.Image{img})
		if err != nil {
			t.Fatal(err)
		}
		serial[i] = p[0]
	}
	const goroutines = 8
	got := make([][]Prediction, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for gi := 0; gi < goroutines; gi++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine classifies a rotation of the images, so that
			// batches differ in content and padding.
			var in []image.Image
			for k := range imgs[:gi%len(imgs)+1] {
				in = append(in, imgs[(gi+k)%len(imgs)])
			}
			got[gi], errs[gi] = c.Classify(in)
		}()
	}
	wg.Wait()
	for gi := range got {
		if errs[gi] != nil {
			t.Fatalf("goroutine %d: %v", gi, errs[gi])
		}
		for k, p := range got[gi] {
			want := serial[(gi+k)%len(imgs)]
			if !samePrediction(p, want) {
				t.Errorf("goroutine %d, image %d: %v, serially %v", gi, (gi+k)%len(imgs), p, want)
			}
		}
	}
}

// TestClassifierFansOut: one call on many images runs its batches on every
// graph of the pool at once, and gives what one graph gives batch by batch.
func TestClassifierFansOut(t *testing.T) {
	path := clsCheckpoint(t, clsModel(t, clsConfig), clsMeta(clsNames, clsNorm))
	one := mustLoadClassifier(t, path, WithBatchSize(2), WithWorkers(1))
	three := mustLoadClassifier(t, path, WithBatchSize(2), WithWorkers(3))
	imgs := clsImages(41, 5) // 21 batches, the last one short
	want, err := one.Classify(imgs)
	if err != nil {
		t.Fatal(err)
	}
	// The first three graphs taken wait for each other (at most a few
	// seconds): they are all busy at once only if one call takes all three.
	var arrived atomic.Int32
	all := make(chan struct{})
	afterAcquire = func() {
		if arrived.Add(1) == 3 {
			close(all)
		}
		select {
		case <-all:
		case <-time.After(3 * time.Second):
		}
	}
	defer func() { afterAcquire = nil }()
	got, err := three.Classify(imgs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if !samePrediction(got[i], want[i]) {
			t.Fatalf("image %d: %v with 3 graphs, %v with one", i, got[i], want[i])
		}
	}
	if p := three.peak.Load(); p != 3 {
		t.Errorf("at most %d of 3 graphs ran at once within one call", p)
	}
	if p := one.peak.Load(); p != 1 {
		t.Errorf("a one-graph classifier had %d graphs busy", p)
	}
}

// TestClassifierExactBatches: with WithExactBatches a short batch runs on
// the graphs for the powers of two below the batch size, not padded, and
// gives the predictions of padded batches.
func TestClassifierExactBatches(t *testing.T) {
	path := clsCheckpoint(t, clsModel(t, clsConfig), clsMeta(clsNames, clsNorm))
	padded := mustLoadClassifier(t, path, WithBatchSize(8), WithWorkers(1))
	exact := mustLoadClassifier(t, path, WithBatchSize(8), WithWorkers(1), WithExactBatches())
	w := <-exact.pool
	var sizes []int
	for _, r := range w.runs {
		sizes = append(sizes, r.n)
	}
	exact.pool <- w
	if fmt.Sprint(sizes) != "[1 2 4 8]" {
		t.Fatalf("graphs for batches %v, expected [1 2 4 8]", sizes)
	}
	for _, n := range []int{1, 3, 7, 8, 19} {
		imgs := clsImages(n, int64(n))
		want, err := padded.Classify(imgs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := exact.Classify(imgs)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			for j := range want[i].Logits {
				if d := math.Abs(float64(got[i].Logits[j] - want[i].Logits[j])); d > 1e-5 {
					t.Fatalf("%d images, image %d logit %d: %v exact, %v padded", n, i, j, got[i].Logits[j], want[i].Logits[j])
				}
			}
		}
	}
}
