// Command infer classifies images with a trained Vision Transformer,
// evaluates it on a dataset's test split, and draws what it learnt.
//
//	go run ./cmd/infer -model FILE [flags] IMAGE_OR_DIR ...
//
// The model, its class names and its normalisation come from the checkpoint
// alone (cmd/train writes them). Images are PNG or JPEG; a directory means
// every .png, .jpg and .jpeg file in it, sorted by name. Each image is
// converted as the trainer's image-folder reader converts files (gray ↔ RGB,
// centre square, resized), normalised as in training, and classified in
// batches; the top -topk classes are printed, or with -json one JSON object
// per image.
//
// -data DIR evaluates on a dataset's test split (any format cmd/train
// reads): accuracy, per-class accuracy and the confusion matrix.
//
// -pos-similarity, -attention and -curves draw PNG pictures: the
// positional-embedding similarity grid, attention rollout over the first
// image, and the training curves from a metrics file. See docs/insight.md.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	_ "image/jpeg" // register the JPEG decoder
	_ "image/png"  // register the PNG decoder
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/insight"
	"github.com/vitgo/vit/train/data"
)

func main() {
	code, err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "infer:", strings.TrimPrefix(err.Error(), "infer: "))
	}
	os.Exit(code)
}

// errFlag is a mistake on the command line (unknown flag, bad value): one
// line, exit status 2. The flag list is printed only for -h.
type errFlag struct{ error }

func (e errFlag) Unwrap() error { return e.error }

type options struct {
	model                string
	topK, batch, workers int
	json                 bool
	dataDir, format      string
	coarse               bool
	posSim, attention    string
	attentionLayers      bool
	curves, metrics      string
	inputs               []string
	set                  map[string]bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{set: map[string]bool{}}
	fs := flag.NewFlagSet("infer", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned as one line; the flag list is printed for -h only
	fs.Usage = func() {}
	usage := func() {
		fmt.Fprintf(stderr, "usage: go run ./cmd/infer -model FILE [flags] IMAGE_OR_DIR ...\n\n"+
			"Classifies PNG and JPEG images (a directory: every .png/.jpg/.jpeg in it), evaluates on a dataset\n"+
			"(-data) and draws pictures of what the model learnt. Flags may come before or after the images.\n\n")
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	fs.StringVar(&o.model, "model", "", "checkpoint `file` written by cmd/train (or plain weights written by model.SaveWeights)")
	fs.IntVar(&o.topK, "topk", 5, "classes to print per image")
	fs.BoolVar(&o.json, "json", false, "print JSON: one object per image ({\"file\", \"top\"}), and one for -data")
	fs.IntVar(&o.batch, "batch", 16, "images per forward pass")
	fs.IntVar(&o.workers, "workers", model.DefaultWorkers(), "forward passes run in parallel (each holds a batch's activations)")
	fs.StringVar(&o.dataDir, "data", "", "evaluate on the test split of the dataset in `dir` (CIFAR-10/100 binary, IDX, or image folders)")
	fs.StringVar(&o.format, "format", "", "-data format: cifar10, cifar100, idx or folder (default: detected)")
	fs.BoolVar(&o.coarse, "coarse", false, "-data CIFAR-100: the 20 coarse labels")
	fs.StringVar(&o.posSim, "pos-similarity", "", "draw the cosine similarity of the positional embeddings to this PNG `file`")
	fs.StringVar(&o.attention, "attention", "", "draw the attention rollout over the first image to this PNG `file`")
	fs.BoolVar(&o.attentionLayers, "attention-layers", false, "with -attention, also draw each block's own class-token attention")
	fs.StringVar(&o.curves, "curves", "", "draw loss and accuracy per epoch (from -metrics) to this PNG `file`")
	fs.StringVar(&o.metrics, "metrics", "", "training metrics `file` (JSON lines) for -curves (default: beside -model, NAME.metrics.jsonl)")
	// Flags may follow the images: parse, take one positional argument,
	// parse the rest again. After "--" everything is an image.
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, err
			}
			return nil, errFlag{err}
		}
		consumed := len(rest) - fs.NArg()
		if fs.NArg() == 0 {
			break
		}
		if consumed > 0 && rest[consumed-1] == "--" {
			o.inputs = append(o.inputs, fs.Args()...)
			break
		}
		o.inputs = append(o.inputs, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, o.check()
}

// check refuses contradictory or useless settings.
func (o *options) check() error {
	if o.topK < 1 {
		return fmt.Errorf("-topk %d, expected at least 1", o.topK)
	}
	if o.batch < 1 {
		return fmt.Errorf("-batch %d, expected at least 1", o.batch)
	}
	if o.workers < 1 {
		return fmt.Errorf("-workers %d, expected at least 1", o.workers)
	}
	if o.attentionLayers && o.attention == "" {
		return errors.New("-attention-layers needs -attention OUT.png")
	}
	if o.set["metrics"] && o.curves == "" {
		return errors.New("-metrics is read by -curves; add -curves OUT.png")
	}
	if (o.set["format"] || o.coarse) && o.dataDir == "" {
		return errors.New("-format and -coarse apply to -data; add -data DIR")
	}
	if len(o.inputs) == 0 && o.dataDir == "" && o.posSim == "" && o.attention == "" && o.curves == "" {
		return errors.New("nothing to do: give images or directories, -data DIR, -pos-similarity OUT.png, -attention OUT.png or -curves OUT.png (see -h)")
	}
	if o.attention != "" && len(o.inputs) == 0 {
		return errors.New("-attention draws the first image argument, and none was given")
	}
	if o.model == "" && (len(o.inputs) > 0 || o.dataDir != "" || o.posSim != "" || o.attention != "") {
		return errors.New("no -model: give the checkpoint file written by cmd/train")
	}
	if o.curves != "" && o.metrics == "" {
		if o.model == "" {
			return errors.New("-curves needs -metrics FILE (or -model, to find NAME.metrics.jsonl beside it)")
		}
		base := strings.TrimSuffix(o.model, ".safetensors")
		o.metrics = strings.TrimSuffix(base, ".best") + ".metrics.jsonl"
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) (int, error) {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0, nil
	}
	var bad errFlag
	if errors.As(err, &bad) {
		return 2, fmt.Errorf("%v (run with -h for the list of flags)", bad.error)
	}
	if err != nil {
		return 2, err
	}
	if o.curves != "" {
		if err := drawCurves(o); err != nil {
			return 1, err
		}
	}
	if o.model == "" {
		return 0, nil
	}
	c, err := model.LoadClassifier(o.model, model.WithBatchSize(o.batch), model.WithTopK(o.topK), model.WithWorkers(o.workers))
	if err != nil {
		return 1, err
	}
	defer c.Close()
	for _, n := range c.Notes() {
		fmt.Fprintln(stderr, "infer: note:", n)
	}
	if o.posSim != "" {
		if err := drawPosSimilarity(c, o); err != nil {
			return 1, err
		}
	}
	failed := 0
	if len(o.inputs) > 0 {
		if failed, err = classifyFiles(c, o, stdout, stderr); err != nil {
			return 1, err
		}
	}
	if o.dataDir != "" {
		if err := evaluate(c, o, stdout, stderr); err != nil {
			return 1, err
		}
	}
	if failed == 1 && len(o.inputs) == 1 {
		return 1, nil // its one-line error is printed already
	}
	if failed > 0 {
		return 1, fmt.Errorf("%d of the images could not be classified (see above)", failed)
	}
	return 0, nil
}

// expand turns the arguments into image files: a directory gives its
// .png, .jpg and .jpeg files (any case; not hidden ones), sorted by name.
func expand(args []string) (files []string, errs []error) {
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", a, err))
			continue
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", a, err))
			continue
		}
		n := 0
		for _, e := range entries { // sorted by name
			name := e.Name()
			if e.IsDir() || strings.HasPrefix(name, ".") {
				continue
			}
			switch strings.ToLower(filepath.Ext(name)) {
			case ".png", ".jpg", ".jpeg":
				files = append(files, filepath.Join(a, name))
				n++
			}
		}
		if n == 0 {
			errs = append(errs, fmt.Errorf("%s: no .png, .jpg or .jpeg files in the directory", a))
		}
	}
	return files, errs
}

// decodeFile reads a PNG or JPEG file, refusing one whose header claims
// more than data.MaxImagePixels pixels before decoding it.
func decodeFile(path string) (img image.Image, err error) {
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("%s: the image decoder failed: %v", path, p)
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot decode it as PNG or JPEG: %v", path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > data.MaxImagePixels {
		return nil, fmt.Errorf("%s: %s of %d×%d pixels, expected 1 to %d pixels", path, format, cfg.Width, cfg.Height, data.MaxImagePixels)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	img, format, err = image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot decode it as %s: %v", path, strings.ToUpper(format), err)
	}
	return img, nil
}

// imageResult is what -json prints for one image.
type imageResult struct {
	File  string        `json:"file"`
	Top   []model.Class `json:"top,omitempty"`
	Error string        `json:"error,omitempty"`
}

// classifyChunk bounds the number of decoded images held at once.
const classifyChunk = 256

// classifyFiles classifies the image arguments and prints the results in
// order. Unreadable images are reported and counted, not fatal.
func classifyFiles(c *model.Classifier, o *options, stdout, stderr io.Writer) (failed int, err error) {
	files, errs := expand(o.inputs)
	for _, e := range errs {
		fmt.Fprintln(stderr, "infer:", e)
	}
	failed = len(errs)
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	report := func(file string, e error) {
		failed++
		fmt.Fprintln(stderr, "infer:", e)
		if o.json {
			_ = enc.Encode(imageResult{File: file, Error: e.Error()})
		}
	}
	attentionDone := o.attention == ""
	for start := 0; start < len(files); start += classifyChunk {
		chunk := files[start:min(start+classifyChunk, len(files))]
		imgs := make([]image.Image, len(chunk))
		errs := make([]error, len(chunk))
		chw := c.Config().Channels * c.Config().ImageSize * c.Config().ImageSize
		x := make([]float32, 0, len(chunk)*chw)
		for i, f := range chunk {
			if imgs[i], errs[i] = decodeFile(f); errs[i] != nil {
				continue
			}
			// Convert here, so that an image the model cannot take is
			// reported with its name.
			px, err := c.Pixels(imgs[i])
			if err != nil {
				errs[i] = fmt.Errorf("%s: %v", f, err)
				continue
			}
			x = append(x, px...)
		}
		if !attentionDone {
			attentionDone = true
			if errs[0] != nil {
				return failed + 1, fmt.Errorf("-attention: %v", errs[0])
			}
			if err := drawAttention(c, o, chunk[0], imgs[0]); err != nil {
				return failed, err
			}
		}
		if err := c.Normalize(x); err != nil {
			return failed, err
		}
		n := len(x) / chw
		preds, err := parallel(n, o.workers, c.BatchSize(), func(lo, hi int) ([]model.Prediction, error) {
			return c.ClassifyTensor(x[lo*chw:hi*chw], hi-lo)
		})
		if err != nil {
			return failed, err
		}
		k := 0
		for i, f := range chunk {
			if errs[i] != nil {
				report(f, errs[i])
				continue
			}
			p := preds[k]
			k++
			if o.json {
				if err := enc.Encode(imageResult{File: f, Top: p.Top}); err != nil {
					return failed, err
				}
				continue
			}
			fmt.Fprintln(stdout, f)
			w := 0
			for _, cl := range p.Top {
				w = max(w, len(cl.Label))
			}
			for _, cl := range p.Top {
				fmt.Fprintf(stdout, "  %-*s %6.2f%%\n", w, cl.Label, 100*cl.Prob)
			}
		}
	}
	return failed, nil
}

// parallel runs fn on up to workers contiguous ranges of [0, n), ranges cut
// at multiples of batch, and joins the results in order.
func parallel(n, workers, batch int, fn func(lo, hi int) ([]model.Prediction, error)) ([]model.Prediction, error) {
	if n == 0 {
		return nil, nil
	}
	per := (n + workers - 1) / workers
	per = (per + batch - 1) / batch * batch
	var parts [][]model.Prediction
	var errs []error
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += per {
		parts = append(parts, nil)
		errs = append(errs, nil)
		i, hi := len(parts)-1, min(lo+per, n)
		wg.Add(1)
		go func(lo int) {
			defer wg.Done()
			parts[i], errs[i] = fn(lo, hi)
		}(lo)
	}
	wg.Wait()
	var out []model.Prediction
	for i := range parts {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out = append(out, parts[i]...)
	}
	return out, nil
}

func writePNG(path string, draw func(io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	return draw(f)
}

func drawCurves(o *options) error {
	f, err := os.Open(o.metrics)
	if err != nil {
		return fmt.Errorf("-curves: %v", err)
	}
	defer f.Close()
	epochs, err := insight.ReadMetrics(f)
	if err != nil {
		return fmt.Errorf("%s: %v", o.metrics, err)
	}
	return writePNG(o.curves, func(w io.Writer) error {
		return insight.WriteCurves(w, epochs, "Training curves: "+o.metrics)
	})
}

func drawPosSimilarity(c *model.Classifier, o *options) error {
	pe, tokens, dim := c.PositionalEmbedding()
	sim, grid, err := insight.PosSimilarity(pe, tokens, dim)
	if err != nil {
		return err
	}
	return writePNG(o.posSim, func(w io.Writer) error {
		return insight.WritePosSimilarity(w, sim, grid, "Position embedding similarity: "+o.model)
	})
}

func drawAttention(c *model.Classifier, o *options, file string, img image.Image) error {
	ex, err := c.Explain(img)
	if err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	r, err := insight.Rollout(ex.Attention, ex.Heads, ex.Tokens)
	if err != nil {
		return err
	}
	row, err := insight.ClassRow(r, ex.Tokens)
	if err != nil {
		return err
	}
	cfg := c.Config()
	top := ex.Top[0]
	fig := insight.AttentionFigure{
		Title:    fmt.Sprintf("%s: %s (%.1f%%)", filepath.Base(file), top.Label, 100*top.Prob),
		Image:    ex.Input,
		Channels: cfg.Channels,
		Size:     cfg.ImageSize,
		Grid:     cfg.Grid(),
		Rollout:  row,
	}
	if o.attentionLayers {
		for l, a := range ex.Attention {
			m, err := insight.ClassAttention(a, ex.Heads, ex.Tokens)
			if err != nil {
				return fmt.Errorf("block %d: %v", l+1, err)
			}
			fig.Layers = append(fig.Layers, m)
		}
	}
	return writePNG(o.attention, func(w io.Writer) error { return insight.WriteAttention(w, fig) })
}

// evaluation is what -data -json prints.
type evaluation struct {
	Data      string        `json:"data"`
	Format    string        `json:"format"`
	Images    int           `json:"images"`
	Correct   int           `json:"correct"`
	Accuracy  float64       `json:"accuracy"`
	Classes   []string      `json:"classes"`
	PerClass  []classResult `json:"per_class"`
	Confusion [][]int       `json:"confusion"` // [true][predicted]
}

type classResult struct {
	Class    int      `json:"class"`
	Label    string   `json:"label"`
	Images   int      `json:"images"`
	Correct  int      `json:"correct"`
	Accuracy *float64 `json:"accuracy"` // null for a class without test images
}

// evalChunk is the number of test images normalised and classified at once.
const evalChunk = 1024

func evaluate(c *model.Classifier, o *options, stdout, stderr io.Writer) error {
	cfg := c.Config()
	_, test, format, err := data.Load(o.dataDir, data.Options{Format: o.format, Coarse: o.coarse, ImageSize: cfg.ImageSize, Channels: cfg.Channels})
	if err != nil {
		return err
	}
	k := cfg.NumClasses
	if len(test.Classes) != k {
		return fmt.Errorf("-data %s has %d classes, the model has %d outputs", o.dataDir, len(test.Classes), k)
	}
	if test.N == 0 {
		return fmt.Errorf("-data %s: the test split is empty", o.dataDir)
	}
	names := c.Classes()
	if strings.Join(names, "\x00") != strings.Join(test.Classes, "\x00") {
		fmt.Fprintf(stderr, "infer: note: the dataset names its classes %q, the checkpoint %q; labels are matched by index\n", test.Classes, names)
	}
	convert := test.C != cfg.Channels || test.H != cfg.ImageSize || test.W != cfg.ImageSize
	if convert {
		fmt.Fprintf(stderr, "infer: note: the test images are %d×%d×%d (C×H×W), the model takes %d×%d×%d: each is converted as an image file would be\n",
			test.C, test.H, test.W, cfg.Channels, cfg.ImageSize, cfg.ImageSize)
	}
	chw := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	ev := evaluation{Data: o.dataDir, Format: format, Images: test.N, Classes: names, Confusion: make([][]int, k)}
	for i := range ev.Confusion {
		ev.Confusion[i] = make([]int, k)
	}
	x := make([]float32, min(evalChunk, test.N)*chw)
	for start := 0; start < test.N; start += evalChunk {
		n := min(evalChunk, test.N-start)
		xb := x[:n*chw]
		for i := 0; i < n; i++ {
			dst := xb[i*chw : (i+1)*chw]
			if !convert {
				copy(dst, test.Image(start+i))
				continue
			}
			if err := data.ImageToCHW(datasetImage(test, start+i), cfg.Channels, cfg.ImageSize, dst); err != nil {
				return fmt.Errorf("-data test image %d: %v", start+i, err)
			}
		}
		if err := c.Normalize(xb); err != nil {
			return err
		}
		preds, err := parallel(n, o.workers, c.BatchSize(), func(lo, hi int) ([]model.Prediction, error) {
			return c.ClassifyTensor(xb[lo*chw:hi*chw], hi-lo)
		})
		if err != nil {
			return err
		}
		for i, p := range preds {
			label := test.Labels[start+i]
			if label < 0 || label >= k {
				return fmt.Errorf("-data test image %d has label %d, expected 0..%d", start+i, label, k-1)
			}
			ev.Confusion[label][argmax(p.Probs)]++
		}
	}
	for i := 0; i < k; i++ {
		r := classResult{Class: i, Label: names[i], Correct: ev.Confusion[i][i]}
		for _, v := range ev.Confusion[i] {
			r.Images += v
		}
		if r.Images > 0 {
			a := float64(r.Correct) / float64(r.Images)
			r.Accuracy = &a
		}
		ev.Correct += r.Correct
		ev.PerClass = append(ev.PerClass, r)
	}
	ev.Accuracy = float64(ev.Correct) / float64(ev.Images)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(ev)
	}
	printEvaluation(stdout, &ev)
	return nil
}

func argmax(p []float32) int {
	best := 0
	for j, v := range p {
		if v > p[best] {
			best = j
		}
	}
	return best
}

// datasetImage turns image i of d (pixels in [0,1], from 8-bit files) back
// into an 8-bit image, so that it converts exactly as an image file would.
func datasetImage(d *data.Dataset, i int) image.Image {
	px := d.Image(i)
	plane := d.H * d.W
	b := func(v float32) uint8 { return uint8(min(max(v*255+0.5, 0), 255)) }
	if d.C == 1 {
		g := image.NewGray(image.Rect(0, 0, d.W, d.H))
		for j := range g.Pix {
			g.Pix[j] = b(px[j])
		}
		return g
	}
	img := image.NewNRGBA(image.Rect(0, 0, d.W, d.H))
	for j := 0; j < plane; j++ {
		img.Pix[4*j] = b(px[j])
		img.Pix[4*j+1] = b(px[min(1, d.C-1)*plane+j])
		img.Pix[4*j+2] = b(px[min(2, d.C-1)*plane+j])
		img.Pix[4*j+3] = 255
	}
	return img
}

func printEvaluation(w io.Writer, ev *evaluation) {
	fmt.Fprintf(w, "data: %s (%s): %d test images, %d classes\n", ev.Data, ev.Format, ev.Images, len(ev.Classes))
	fmt.Fprintf(w, "accuracy: %.2f%% (%d/%d)\n\n", 100*ev.Accuracy, ev.Correct, ev.Images)
	nw := len("class")
	for _, n := range ev.Classes {
		nw = max(nw, len(n))
	}
	fmt.Fprintf(w, "%3s  %-*s  %8s  %s\n", "#", nw, "class", "accuracy", "correct/images")
	for _, r := range ev.PerClass {
		acc := "       -"
		if r.Accuracy != nil {
			acc = fmt.Sprintf("%7.2f%%", 100**r.Accuracy)
		}
		fmt.Fprintf(w, "%3d  %-*s  %s  %d/%d\n", r.Class, nw, r.Label, acc, r.Correct, r.Images)
	}
	cw := 3
	for _, row := range ev.Confusion {
		for _, v := range row {
			cw = max(cw, len(fmt.Sprint(v)))
		}
	}
	fmt.Fprintf(w, "\nconfusion matrix (rows: true class, columns: predicted class)\n%3s  %-*s", "#", nw, "")
	for j := range ev.Classes {
		fmt.Fprintf(w, " %*d", cw, j)
	}
	fmt.Fprintln(w)
	for i, row := range ev.Confusion {
		fmt.Fprintf(w, "%3d  %-*s", i, nw, ev.Classes[i])
		for _, v := range row {
			fmt.Fprintf(w, " %*d", cw, v)
		}
		fmt.Fprintln(w)
	}
}
