package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vitgo/vit/cmd/internal/cli"
	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/preprocess"
	"github.com/vitgo/vit/train/data"
)

type options struct {
	model                       string
	topK, batch, workers, heads int
	classes                     string
	preprocess, interp, norm    string
	cropPct                     float64
	json                        bool
	dataDir, format             string
	coarse                      bool
	posSim, attention           string
	attentionLayers             bool
	curves, metrics             string
	export, names               string
	inputs                      []string
	set                         map[string]bool
	serve                       serveOptions
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := cli.NewFlagSet("infer", "usage: go run ./cmd/infer -model FILE [flags] IMAGE_OR_DIR ...\n\n"+
		"Classifies PNG and JPEG images (a directory: every .png/.jpg/.jpeg in it), evaluates on a dataset\n"+
		"(-data) and draws pictures of what the model learnt. Flags may come before or after the images.\n\n", stderr)
	fs.StringVar(&o.model, "model", "", "checkpoint `file` written by cmd/train, or published weights (timm, torchvision, or a Hugging Face directory's model.safetensors)")
	fs.IntVar(&o.heads, "heads", 0, "attention heads of published weights without a config (default: width/64)")
	fs.StringVar(&o.classes, "classes", "", "class names `file`, one per line in class order (default: the weights', id2label, or ImageNet's for 1000 classes)")
	fs.StringVar(&o.preprocess, "preprocess", "", "preprocessing: train, timm, torchvision or hf (default: the weights' own)")
	fs.Float64Var(&o.cropPct, "crop-pct", 0, "timm's centre-crop fraction (default 0.9)")
	fs.StringVar(&o.interp, "interpolation", "", "resampling of timm/torchvision/hf preprocessing: bilinear or bicubic")
	fs.StringVar(&o.norm, "norm", "", "normalisation: imagenet, half (0.5/0.5) or MEAN,MEAN,MEAN/STD,STD,STD (default: the weights')")
	fs.IntVar(&o.topK, "topk", 5, "classes to print per image")
	fs.BoolVar(&o.json, "json", false, "print JSON: one object per image ({\"file\", \"top\"}), and one for -data")
	fs.IntVar(&o.batch, "batch", 16, "images per forward pass (with -serve: at most, the batches of concurrent requests)")
	fs.IntVar(&o.workers, "workers", model.DefaultWorkers(), "forward passes run in parallel (each holds a batch's activations)")
	fs.StringVar(&o.dataDir, "data", "", "evaluate on the test split of the dataset in `dir` (CIFAR-10/100 binary, IDX, or image folders)")
	fs.StringVar(&o.format, "format", "", "-data format: cifar10, cifar100, idx or folder (default: detected)")
	fs.BoolVar(&o.coarse, "coarse", false, "-data CIFAR-100: the 20 coarse labels")
	fs.StringVar(&o.posSim, "pos-similarity", "", "draw the cosine similarity of the positional embeddings to this PNG `file`")
	fs.StringVar(&o.attention, "attention", "", "draw the attention rollout over the first image to this PNG `file`")
	fs.BoolVar(&o.attentionLayers, "attention-layers", false, "with -attention, also draw each block's own class-token attention")
	fs.StringVar(&o.curves, "curves", "", "draw loss and accuracy per epoch (from -metrics) to this PNG `file`")
	fs.StringVar(&o.metrics, "metrics", "", "training metrics `file` (JSON lines) for -curves (default: beside -model, NAME.metrics.jsonl); several, comma-separated, draw their test curves side by side")
	fs.StringVar(&o.export, "export", "", "write -model's weights for PyTorch to this `path` (a directory for -names hf)")
	fs.StringVar(&o.names, "names", "timm", "-export naming: timm, torchvision or hf")
	so := &o.serve
	fs.StringVar(&so.addr, "serve", "", "serve the model over HTTP on this `address` (e.g. 127.0.0.1:8080) until SIGINT or SIGTERM; see docs/serving.md")
	fs.BoolVar(&so.batching, "batching", true, "-serve: run the images of concurrent requests in one forward pass (up to -batch)")
	fs.DurationVar(&so.maxWait, "max-wait", 2*time.Millisecond, "-serve: how long a batch may wait for requests already being decoded")
	fs.IntVar(&so.queue, "queue", 64, "-serve: images waiting for a forward pass at most; beyond, 503 with Retry-After")
	fs.IntVar(&so.maxImages, "max-images", 32, "-serve: images in one multipart request at most")
	fs.IntVar(&so.maxRequests, "max-requests", 256, "-serve: classification requests handled at once at most; beyond, 503")
	fs.Float64Var(&so.maxBodyMiB, "max-body", 16, "-serve: request body size limit in `MiB`; beyond, 413")
	fs.Int64Var(&so.maxPixels, "max-pixels", 4096*4096, "-serve: width×height limit of an image, checked from its header; beyond, 413")
	fs.DurationVar(&so.readTimeout, "read-timeout", 10*time.Second, "-serve: time to read a request, headers and body; beyond, 408")
	fs.DurationVar(&so.writeTimeout, "write-timeout", time.Minute, "-serve: time from a request's headers to the end of its answer")
	fs.DurationVar(&so.idleTimeout, "idle-timeout", time.Minute, "-serve: time a keep-alive connection may wait for its next request")
	fs.DurationVar(&so.shutdownTimeout, "shutdown-timeout", 30*time.Second, "-serve: time given to requests in flight after SIGINT or SIGTERM")
	fs.StringVar(&so.logFormat, "log", "text", "-serve: request log format on stderr, text or json")
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
	switch o.preprocess {
	case "", "train", "timm", "torchvision", "hf":
	default:
		return fmt.Errorf("-preprocess %q, expected train, timm, torchvision or hf", o.preprocess)
	}
	if o.heads < 0 || o.cropPct < 0 || o.cropPct > 1 {
		return fmt.Errorf("-heads %d, -crop-pct %v: expected heads ≥ 0 and a fraction in (0, 1]", o.heads, o.cropPct)
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
	if err := o.checkServe(); err != nil {
		return err
	}
	if len(o.inputs) == 0 && o.dataDir == "" && o.posSim == "" && o.attention == "" && o.curves == "" && o.export == "" && o.serve.addr == "" {
		return errors.New("nothing to do: give images or directories, -data DIR, -pos-similarity OUT.png, -attention OUT.png, -curves OUT.png, -export PATH or -serve ADDR (see -h)")
	}
	if o.attention != "" && len(o.inputs) == 0 {
		return errors.New("-attention draws the first image argument, and none was given")
	}
	if o.set["names"] && o.export == "" {
		return errors.New("-names is the naming of -export; add -export PATH")
	}
	switch o.names {
	case "timm", "torchvision":
	case "hf":
		o.names = model.NamingHuggingFace
	default:
		return fmt.Errorf("-names %q, expected timm, torchvision or hf", o.names)
	}
	if o.model == "" && (len(o.inputs) > 0 || o.dataDir != "" || o.posSim != "" || o.attention != "" || o.export != "" || o.serve.addr != "") {
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

// serveFlags are the flags that apply to -serve only.
var serveFlags = []string{"batching", "max-wait", "queue", "max-images", "max-requests", "max-body", "max-pixels",
	"read-timeout", "write-timeout", "idle-timeout", "shutdown-timeout", "log"}

// checkServe refuses -serve flags without -serve, and -serve with work
// of another kind.
func (o *options) checkServe() error {
	if o.serve.addr == "" {
		for _, f := range serveFlags {
			if o.set[f] {
				return fmt.Errorf("-%s applies to -serve; add -serve ADDR", f)
			}
		}
		return nil
	}
	if len(o.inputs) > 0 || o.dataDir != "" || o.posSim != "" || o.attention != "" || o.curves != "" || o.export != "" || o.json {
		return errors.New("-serve runs a server and does nothing else: drop the images, -data, -json and the drawing and -export flags")
	}
	return o.serve.check()
}

// classifierOptions turns the flags into the classifier's options.
func (o *options) classifierOptions() ([]model.ClassifierOption, error) {
	spec := preprocess.Spec{Kind: o.preprocess, CropPct: o.cropPct}
	var err error
	if o.interp != "" {
		if spec.Filter, err = preprocess.ParseFilter(o.interp); err != nil {
			return nil, fmt.Errorf("-interpolation: %w", err)
		}
	}
	if o.norm != "" {
		n, err := preprocess.ParseNorm(o.norm)
		if err != nil {
			return nil, fmt.Errorf("-norm: %w", err)
		}
		spec.Norm = &n
	}
	opts := []model.ClassifierOption{model.WithBatchSize(o.batch), model.WithTopK(o.topK), model.WithWorkers(o.workers),
		model.WithHeads(o.heads), model.WithPreprocess(spec)}
	if o.classes != "" {
		names, err := data.ReadClassNames(o.classes, 0)
		if err != nil {
			return nil, fmt.Errorf("-classes: %w", err)
		}
		opts = append(opts, model.WithClassNames(names))
	}
	return opts, nil
}
