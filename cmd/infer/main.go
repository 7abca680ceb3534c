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
	"fmt"
	"image"
	"io"
	"strings"

	"github.com/vitgo/vit/cmd/internal/cli"
	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/preprocess"
	"github.com/vitgo/vit/train/data"
)

func main() { cli.Main("infer", run) }

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
	o := &options{}
	fs := cli.NewFlagSet("infer", "usage: go run ./cmd/infer -model FILE [flags] IMAGE_OR_DIR ...\n\n"+
		"Classifies PNG and JPEG images (a directory: every .png/.jpg/.jpeg in it), evaluates on a dataset\n"+
		"(-data) and draws pictures of what the model learnt. Flags may come before or after the images.\n\n", stderr)
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
			return nil, err
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
	o.set = fs.Set()
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
	if err != nil {
		return cli.Status(err)
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
	files, errs := preprocess.ListImages(o.inputs)
	for _, e := range errs {
		fmt.Fprintln(stderr, "infer:", e)
	}
	failed = len(errs)
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	attentionDone := o.attention == ""
	for start := 0; start < len(files); start += classifyChunk {
		chunk := files[start:min(start+classifyChunk, len(files))]
		imgs := make([]image.Image, len(chunk))
		errs := make([]error, len(chunk))
		var x []float32
		n := 0 // images converted
		for i, f := range chunk {
			if imgs[i], errs[i] = preprocess.DecodeFile(f); errs[i] != nil {
				continue
			}
			// Convert here, so that an image the model cannot take is
			// reported with its name.
			px, err := c.Pixels(imgs[i])
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", f, err)
				continue
			}
			x = append(x, px...)
			n++
		}
		if !attentionDone {
			attentionDone = true
			if errs[0] != nil {
				return failed + 1, fmt.Errorf("-attention: %w", errs[0])
			}
			if err := drawAttention(c, o, chunk[0], imgs[0]); err != nil {
				return failed, err
			}
		}
		preds, err := c.ClassifyPixels(x, n)
		if err != nil {
			return failed, err
		}
		for i, f := range chunk {
			if errs[i] != nil {
				failed++
				fmt.Fprintln(stderr, "infer:", errs[i])
				if o.json {
					_ = enc.Encode(imageResult{File: f, Error: errs[i].Error()})
				}
				continue
			}
			p := preds[0]
			preds = preds[1:]
			if err := printPrediction(stdout, enc, o.json, f, p); err != nil {
				return failed, err
			}
		}
	}
	return failed, nil
}

// printPrediction prints one image's top classes, as text or as JSON.
func printPrediction(w io.Writer, enc *json.Encoder, asJSON bool, file string, p model.Prediction) error {
	if asJSON {
		return enc.Encode(imageResult{File: file, Top: p.Top})
	}
	fmt.Fprintln(w, file)
	width := 0
	for _, cl := range p.Top {
		width = max(width, len(cl.Label))
	}
	for _, cl := range p.Top {
		fmt.Fprintf(w, "  %-*s %6.2f%%\n", width, cl.Label, 100*cl.Prob)
	}
	return nil
}

// evaluation is what -data -json prints.
type evaluation struct {
	Data   string `json:"data"`
	Format string `json:"format"`
	*model.Evaluation
}

func evaluate(c *model.Classifier, o *options, stdout, stderr io.Writer) error {
	cfg := c.Config()
	_, test, format, err := data.Load(o.dataDir, data.Options{Format: o.format, Coarse: o.coarse, ImageSize: cfg.ImageSize, Channels: cfg.Channels})
	if err != nil {
		return err
	}
	if len(test.Classes) != cfg.NumClasses {
		return fmt.Errorf("-data %s has %d classes, the model has %d outputs", o.dataDir, len(test.Classes), cfg.NumClasses)
	}
	if test.N == 0 {
		return fmt.Errorf("-data %s: the test split is empty", o.dataDir)
	}
	if names := c.Classes(); strings.Join(names, "\x00") != strings.Join(test.Classes, "\x00") {
		fmt.Fprintf(stderr, "infer: note: the dataset names its classes %q, the checkpoint %q; labels are matched by index\n", test.Classes, names)
	}
	if test.C != cfg.Channels || test.H != cfg.ImageSize || test.W != cfg.ImageSize {
		fmt.Fprintf(stderr, "infer: note: the test images are %d×%d×%d (C×H×W), the model takes %d×%d×%d: each is converted as an image file would be\n",
			test.C, test.H, test.W, cfg.Channels, cfg.ImageSize, cfg.ImageSize)
		if test, err = test.Convert(cfg.Channels, cfg.ImageSize); err != nil {
			return fmt.Errorf("-data: %w", err)
		}
	}
	ev, err := c.Evaluate(test.Images, test.Labels)
	if err != nil {
		return fmt.Errorf("-data: %w", err)
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(evaluation{Data: o.dataDir, Format: format, Evaluation: ev})
	}
	fmt.Fprintf(stdout, "data: %s (%s): %d test images, %d classes\n", o.dataDir, format, ev.Images, len(ev.Classes))
	ev.WriteText(stdout)
	return nil
}
