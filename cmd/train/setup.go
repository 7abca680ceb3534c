package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/preprocess"
	"github.com/vitgo/vit/train"
	"github.com/vitgo/vit/train/data"
)

// loadData reads -data, names its classes (-classes), keeps the classes of
// -labels and -per-class images of each, and converts the images to the
// channels of the -pretrained model.
func (o *options) loadData(stdout io.Writer) (trainSet, testSet data.Source, err error) {
	size, ch := folderSize(o), 0
	if o.pretrained != "" {
		if o.pre, err = model.ReadFile(o.pretrained); err != nil {
			return nil, nil, err
		}
		o.pre.Heads = o.heads
		if o.preCfg, err = o.pre.Config(); err != nil {
			return nil, nil, err
		}
		size, ch = o.preCfg.ImageSize, o.preCfg.Channels
	}
	opt := data.Options{Format: o.format, Coarse: o.coarse, ImageSize: size, Channels: ch}
	if tr, te, err := o.lazyFolder(opt); err != nil || tr != nil {
		if err != nil {
			return nil, nil, err
		}
		c, h, w := tr.Shape()
		fmt.Fprintf(stdout, "data: %s (folder, read lazily): %d training and %d test images, %d×%d×%d, %d classes\n",
			o.dataDir, tr.Len(), te.Len(), c, h, w, len(tr.ClassNames()))
		return tr, te, nil
	}
	mTrain, mTest, err := o.loadMemory(opt, stdout)
	return mTrain, mTest, err
}

// lazyFolder opens -data as image folders read lazily when it is one and
// -lazy says so (on, or auto: more than 1 GiB in memory); nil folders
// otherwise.
func (o *options) lazyFolder(opt data.Options) (tr, te *data.Folder, err error) {
	switch o.lazy {
	case "off":
		return nil, nil, nil
	case "on", "auto":
	default:
		return nil, nil, fmt.Errorf("-lazy %q, expected on, off or auto", o.lazy)
	}
	format := o.format
	if format == "" {
		format, _ = data.DetectFormat(o.dataDir) // an error is reported by the reader
	}
	if format != data.FormatFolder {
		if o.lazy == "on" {
			return nil, nil, fmt.Errorf("-lazy on reads image folders; %s is %q data", o.dataDir, format)
		}
		return nil, nil, nil
	}
	if o.labels != "" || o.perClass > 0 || o.classes != "" {
		if o.lazy == "on" {
			return nil, nil, errors.New("-labels, -per-class and -classes change the data in memory; drop -lazy on (an image folder's classes are its sub-folders' names)")
		}
		return nil, nil, nil
	}
	if tr, te, err = data.OpenFolder(o.dataDir, opt, 0); err != nil {
		return nil, nil, err
	}
	tr.CacheBytes, te.CacheBytes = int64(o.cacheMiB)<<20, int64(o.cacheMiB)<<20
	c, h, w := tr.Shape()
	if o.lazy == "auto" && float64(tr.Len()+te.Len())*float64(c*h*w)*4 <= 1<<30 {
		return nil, nil, nil
	}
	return tr, te, nil
}

// loadMemory reads -data into memory and applies -classes, -labels,
// -per-class and the -pretrained weights' channels.
func (o *options) loadMemory(opt data.Options, stdout io.Writer) (trainSet, testSet *data.Dataset, err error) {
	trainSet, testSet, format, err := data.Load(o.dataDir, opt)
	if errors.Is(err, fs.ErrNotExist) && !o.set["data"] {
		return nil, nil, fmt.Errorf("%w; the default data is the sample shipped in the repository: run from the repository's root, or pass -data DIR", err)
	}
	if err != nil {
		return nil, nil, err
	}
	if o.classes != "" {
		names, err := data.ReadClassNames(o.classes, len(trainSet.Classes))
		if err != nil {
			return nil, nil, fmt.Errorf("-classes: %w", err)
		}
		trainSet.Classes, testSet.Classes = names, names
	}
	if o.labels != "" || o.perClass > 0 {
		var labels []int
		for _, f := range strings.Split(o.labels, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			l, err := strconv.Atoi(f)
			if err != nil {
				return nil, nil, fmt.Errorf("-labels %q, expected class numbers such as 0,1,2", o.labels)
			}
			labels = append(labels, l)
		}
		if trainSet, err = trainSet.Subset(labels, o.perClass); err != nil {
			return nil, nil, fmt.Errorf("-labels/-per-class: %w", err)
		}
		if testSet, err = testSet.Subset(labels, 0); err != nil {
			return nil, nil, fmt.Errorf("-labels: %w", err)
		}
	}
	fmt.Fprintf(stdout, "data: %s (%s): %d training and %d test images, %d×%d×%d, %d classes\n",
		o.dataDir, format, trainSet.N, testSet.N, trainSet.C, trainSet.H, trainSet.W, len(trainSet.Classes))
	if o.pre == nil {
		return trainSet, testSet, nil
	}
	// The weights' channels; the data's size if it divides into the
	// weights' patches (the positions are then resized), else the weights'.
	size := trainSet.H
	if trainSet.H != trainSet.W || size%o.preCfg.PatchSize != 0 {
		size = o.preCfg.ImageSize
	}
	if trainSet.C != o.preCfg.Channels || trainSet.H != size || trainSet.W != size {
		fmt.Fprintf(stdout, "the images are converted to the weights' %d channels at %d×%d\n", o.preCfg.Channels, size, size)
		if trainSet, err = trainSet.Convert(o.preCfg.Channels, size); err == nil {
			testSet, err = testSet.Convert(o.preCfg.Channels, size)
		}
	}
	return trainSet, testSet, err
}

// newRun builds the run: -resume, -pretrained or from scratch. It returns
// the exit status of a failure.
func (o *options) newRun(trainSet, testSet data.Source, stdout io.Writer) (*train.Run, int, error) {
	if o.resume != "" {
		stored, err := train.ReadConfig(o.resume)
		if err != nil {
			return nil, 1, err
		}
		if err := o.checkResumeFlags(stored); err != nil {
			return nil, 2, err
		}
		epochs := 0
		if o.set["epochs"] {
			epochs = o.cfg.Epochs
		}
		r, err := train.Resume(o.resume, trainSet, testSet, epochs)
		if err != nil {
			return nil, 1, err
		}
		fmt.Fprintf(stdout, "resumed %s at step %d of %d (epoch %d)\n", o.resume, r.Step, r.TotalSteps(), r.Epoch()+1)
		return r, 0, nil
	}
	if (o.cfg.Freeze != "" || o.cfg.LayerDecay != 0) && o.pre == nil {
		return nil, 2, errors.New("-freeze and -layer-decay fine-tune pretrained weights; add -pretrained FILE")
	}
	mc, err := o.modelConfig(trainSet)
	if err != nil {
		return nil, 2, err
	}
	o.cfg.Model = mc
	norm, err := o.normalization(trainSet)
	if err != nil {
		return nil, 2, err
	}
	if o.pre == nil {
		r, err := train.New(o.cfg, trainSet, testSet, norm)
		return r, 2, err
	}
	r, notes, err := train.FineTune(o.cfg, trainSet, testSet, norm, o.pre)
	if err != nil {
		return nil, 1, err
	}
	fmt.Fprintf(stdout, "pretrained: %s (%s), normalisation mean %v std %v\n", o.pretrained, o.pre.Source(), norm.Mean, norm.Std)
	for _, n := range notes {
		fmt.Fprintln(stdout, "pretrained:", n)
	}
	return r, 0, nil
}

// normalization is -norm's, or the -pretrained weights', or the training
// images' mean and std.
func (o *options) normalization(d data.Source) (preprocess.Normalization, error) {
	switch {
	case o.norm != "" && o.norm != "data":
		n, err := preprocess.ParseNorm(o.norm)
		if err != nil {
			return n, fmt.Errorf("-norm: %w", err)
		}
		return n, nil
	case o.norm == "" && o.pre != nil:
		t, _, err := o.pre.Transform(o.preCfg)
		return t.Norm, err
	}
	if f, ok := d.(*data.Folder); ok {
		return f.Normalization() // of the whole folder, held-out images included
	}
	ds := d.(*data.Dataset)
	if o.cfg.Val > 0 {
		// The images trained on only, not the held-out ones.
		tr, _, err := train.ValidationSplit(ds, o.cfg)
		if err != nil {
			return preprocess.Normalization{}, fmt.Errorf("-val: %w", err)
		}
		return data.ComputeNormalizationOf(ds, tr.Indices()), nil
	}
	return data.ComputeNormalization(ds), nil
}

// modelConfig resolves the preset (or the -pretrained weights'
// architecture) and the overrides, then adapts image size, channels and
// classes to the data.
func (o *options) modelConfig(d data.Source) (model.Config, error) {
	mc := defaultModel
	switch {
	case o.pre != nil:
		mc = o.preCfg
		for _, name := range []string{"preset", "patch", "dim", "depth", "mlp-dim", "pool", "gelu"} {
			if o.set[name] {
				return mc, fmt.Errorf("-pretrained takes the architecture from the weights; drop -%s", name)
			}
		}
	case o.preset != defaultPreset:
		var err error
		if mc, err = model.Preset(o.preset); err != nil {
			return mc, err
		}
	}
	for _, f := range []struct {
		v   int
		dst *int
	}{{o.patch, &mc.PatchSize}, {o.dim, &mc.Dim}, {o.depth, &mc.Depth}, {o.heads, &mc.Heads}, {o.mlpDim, &mc.MLPDim}} {
		if f.v != 0 {
			*f.dst = f.v
		}
	}
	mc.Dropout, mc.AttnDropout, mc.DropPath, mc.Init = o.dropout, o.attnDropout, o.dropPath, o.init
	if o.pre == nil {
		mc.Pool, mc.GELU = model.Pooling(o.pool), model.GELUForm(o.gelu)
		if o.posEmbed != model.PosLearned {
			mc.PosEmbed = o.posEmbed
		}
		if o.stem != model.StemPatch {
			mc.Stem = o.stem
		}
	} else if o.posEmbed != model.PosLearned || o.stem != model.StemPatch {
		return mc, errors.New("-pos-embed and -stem choose the embedding of a model trained from scratch; -pretrained weights bring their own")
	}
	c, h, w := d.Shape()
	if h != w {
		return mc, fmt.Errorf("images are %d×%d; the model needs square images", h, w)
	}
	mc.ImageSize, mc.Channels, mc.NumClasses = h, c, len(d.ClassNames())
	if mc.ImageSize%mc.PatchSize != 0 {
		return mc, fmt.Errorf("the data's %d×%d images do not divide into %d×%d patches; choose -patch", h, w, mc.PatchSize, mc.PatchSize)
	}
	return mc, mc.Validate()
}

// checkResumeFlags refuses flags that contradict the checkpoint's config.
func (o *options) checkResumeFlags(stored train.Config) error {
	var clash []string
	for _, name := range []string{"preset", "patch", "dim", "depth", "heads", "mlp-dim", "dropout", "attn-dropout", "drop-path",
		"pool", "gelu", "init", "pos-embed", "stem", "classes", "pretrained", "freeze", "layer-decay", "norm", "batch", "eval-batch", "lr", "min-lr", "wd", "warmup", "smoothing", "clip", "pad", "no-flip", "seed", "skip-nan", "val", "ema", "augment", "erase", "mixup", "cutmix"} {
		if o.set[name] {
			clash = append(clash, "-"+name)
		}
	}
	if len(clash) > 0 {
		return fmt.Errorf("-resume takes the model and recipe from the checkpoint; drop %s", strings.Join(clash, ", "))
	}
	return nil
}

// folderSize is the image size to resize image folders to.
func folderSize(o *options) int {
	if o.preset == defaultPreset {
		return defaultModel.ImageSize
	}
	if c, err := model.Preset(o.preset); err == nil {
		return c.ImageSize
	}
	return 0
}
