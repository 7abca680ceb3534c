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
// -serve ADDR serves the model over HTTP (POST /v1/classify, GET /v1/model,
// /healthz, /metrics) with dynamic batching, until SIGINT or SIGTERM; see
// docs/serving.md and package model/serve.
//
// -pos-similarity, -attention and -curves draw PNG pictures: the
// positional-embedding similarity grid, attention rollout over the first
// image, and the training curves from a metrics file. See docs/insight.md.
package main

import (
	"encoding/json"
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
	if o.export != "" {
		if err := model.ExportFile(o.model, o.export, o.names, o.heads); err != nil {
			return 1, err
		}
		fmt.Fprintf(stderr, "infer: exported %s in %s's names to %s\n", o.model, o.names, o.export)
		if len(o.inputs) == 0 && o.dataDir == "" && o.posSim == "" {
			return 0, nil
		}
	}
	if o.serve.addr != "" {
		if err := runServer(o, stderr); err != nil {
			return 1, err
		}
		return 0, nil
	}
	opts, err := o.classifierOptions()
	if err != nil {
		return 2, err
	}
	c, err := model.LoadClassifier(o.model, opts...)
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
