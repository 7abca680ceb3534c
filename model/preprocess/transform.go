package preprocess

import (
	"cmp"
	"encoding/json"
	"fmt"
	"image"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// Normalisations of published weights.
var (
	// ImageNet is the mean and std of ImageNet's pixels, used by
	// torchvision's models and by timm's DeiT and ResNets.
	ImageNet = Normalization{Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}
	// Half maps [0,1] to [−1,1] (mean 0.5, std 0.5), as the original ViT
	// weights (Google's, timm's "augreg", Hugging Face's google/vit-*)
	// expect.
	Half = Normalization{Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.5, 0.5, 0.5}}
)

// Transform turns a decoded image into a model's input: C×Size×Size values
// in [0,1], normalised afterwards by Norm. Two kinds exist:
//
//   - Square (Resize and Crop zero): the training pipeline of this package
//     (ToCHW: the centred square, area averaging or linear interpolation);
//   - the evaluation transforms of published weights, as PIL and
//     torchvision compute them: the image as 8-bit RGB (FromImage), resized
//     with Filter (Image8.Resize: PIL's antialiased resampling) — either
//     its shorter side to Resize (ResizeExact false: timm's and
//     torchvision's Resize(int)) or to exactly Resize×Resize (ResizeExact:
//     Hugging Face's ViTImageProcessor) — then centre-cropped to Crop×Crop
//     (Crop 0: no crop), then scaled by 1/255.
type Transform struct {
	Name        string        `json:"name"`             // what the transform is, for messages: "train", "timm", "torchvision", "hf"
	Size        int           `json:"size"`             // the model's input side
	Channels    int           `json:"channels"`         // 1 or 3
	Resize      int           `json:"resize,omitempty"` // 0: the training pipeline
	ResizeExact bool          `json:"resize_exact,omitempty"`
	Filter      Filter        `json:"filter,omitempty"`
	Crop        int           `json:"crop,omitempty"`
	Norm        Normalization `json:"normalization"`
}

// TrainTransform is the pipeline cmd/train trains with: ToCHW, then norm.
func TrainTransform(size, channels int, norm Normalization) Transform {
	return Transform{Name: "train", Size: size, Channels: channels, Norm: norm}
}

// TimmEval is timm's evaluation transform (transforms_imagenet_eval) for an
// input of size: the shorter side resized to ⌊size/cropPct⌋ with filter,
// then the centre size×size crop. timm's ViTs use cropPct 0.9 and bicubic.
func TimmEval(size int, cropPct float64, f Filter, norm Normalization) (Transform, error) {
	if !(cropPct > 0 && cropPct <= 1) {
		return Transform{}, errors.Errorf("preprocess: crop fraction %v, expected a value in (0, 1]", cropPct)
	}
	return Transform{Name: "timm", Size: size, Channels: 3, Resize: int(math.Floor(float64(size) / cropPct)), Filter: f, Crop: size, Norm: norm}, nil
}

// TorchvisionEval is torchvision's evaluation transform of its ViTs
// (ImageClassification): the shorter side resized to size·256/224
// (truncated), bilinear, then the centre size×size crop, ImageNet
// normalisation unless norm says otherwise.
func TorchvisionEval(size int, norm Normalization) Transform {
	return Transform{Name: "torchvision", Size: size, Channels: 3, Resize: size * 256 / 224, Filter: Bilinear, Crop: size, Norm: norm}
}

// HFDefault is what Hugging Face's ViTImageProcessor does with its
// defaults: resize to size×size, bilinear, no crop, mean and std 0.5.
func HFDefault(size int) Transform {
	return Transform{Name: "hf", Size: size, Channels: 3, Resize: size, ResizeExact: true, Filter: Bilinear, Norm: Half}
}

// hfProcessor is the part of a Hugging Face preprocessor_config.json that
// an image classifier's processor (ViTImageProcessor and the like) uses.
type hfProcessor struct {
	DoResize      *bool           `json:"do_resize"`
	Size          json.RawMessage `json:"size"`
	Resample      *int            `json:"resample"`
	DoCenterCrop  bool            `json:"do_center_crop"`
	CropSize      json.RawMessage `json:"crop_size"`
	DoRescale     *bool           `json:"do_rescale"`
	RescaleFactor *float64        `json:"rescale_factor"`
	DoNormalize   *bool           `json:"do_normalize"`
	ImageMean     []float32       `json:"image_mean"`
	ImageStd      []float32       `json:"image_std"`
}

// hfSize reads a size entry: a number, or {"height": h, "width": w}, or
// {"shortest_edge": s}. It returns the side and whether it is the shortest
// edge (aspect kept) rather than an exact square.
func hfSize(raw json.RawMessage, what string) (side int, shortest bool, err error) {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n, false, nil
	}
	var m struct {
		H *int `json:"height"`
		W *int `json:"width"`
		S *int `json:"shortest_edge"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return 0, false, errors.Errorf("%s is %s, expected a number or {\"height\", \"width\"}", what, raw)
	}
	switch {
	case m.H != nil && m.W != nil && *m.H == *m.W:
		return *m.H, false, nil
	case m.H != nil && m.W != nil:
		return 0, false, errors.Errorf("%s is %d×%d, expected a square (the model takes square images)", what, *m.H, *m.W)
	case m.S != nil:
		return *m.S, true, nil
	}
	return 0, false, errors.Errorf("%s is %s, expected a number, {\"height\", \"width\"} or {\"shortest_edge\"}", what, raw)
}

// HFProcessor reads a Hugging Face preprocessor_config.json and returns the
// transform it describes for a model of the given input size: resize
// (do_resize, size, resample: PIL's filter numbers, 2 bilinear and 3
// bicubic), centre crop (do_center_crop, crop_size), rescale
// (do_rescale with rescale_factor 1/255) and normalise (do_normalize,
// image_mean, image_std).
func HFProcessor(path string, size int) (Transform, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Transform{}, errors.Wrap(err, "preprocess")
	}
	t, err := parseHFProcessor(b, size)
	return t, errors.Wrapf(err, "preprocess: %s", path)
}

func parseHFProcessor(b []byte, size int) (Transform, error) {
	var p hfProcessor
	if err := json.Unmarshal(b, &p); err != nil {
		return Transform{}, errors.Wrap(err, "not a JSON preprocessor config")
	}
	t := Transform{Name: "hf", Size: size, Channels: 3, Filter: Bilinear, Norm: Identity(3)}
	if p.Resample != nil {
		t.Filter = Filter(*p.Resample)
		if t.Filter != Bilinear && t.Filter != Bicubic {
			return t, errors.Errorf("resample %d, expected 2 (bilinear) or 3 (bicubic)", *p.Resample)
		}
	}
	if p.DoResize == nil || *p.DoResize {
		side, shortest, err := hfSize(p.Size, "size")
		if err != nil {
			return t, err
		}
		t.Resize, t.ResizeExact = side, !shortest
	}
	if p.DoCenterCrop {
		side, _, err := hfSize(p.CropSize, "crop_size")
		if err != nil {
			return t, err
		}
		t.Crop = side
	}
	if p.DoRescale != nil && !*p.DoRescale || p.RescaleFactor != nil && math.Abs(*p.RescaleFactor*255-1) > 1e-6 {
		return t, errors.New("rescale other than by 1/255 is not supported")
	}
	if p.DoNormalize == nil || *p.DoNormalize {
		t.Norm = Normalization{Mean: p.ImageMean, Std: p.ImageStd}
		if len(p.ImageMean) == 0 && len(p.ImageStd) == 0 {
			t.Norm = Half // ViTImageProcessor's defaults
		}
	}
	return t, t.Check()
}

// Check refuses a transform that does not produce Size×Size images or
// whose normalisation does not fit.
func (t Transform) Check() error {
	if t.Size < 1 || t.Size > MaxSize || (t.Channels != 1 && t.Channels != 3) {
		return errors.Errorf("preprocess: transform %q for %d channels of %d×%d, expected 1 or 3 channels and a size of 1..%d", t.Name, t.Channels, t.Size, t.Size, MaxSize)
	}
	if t.Resize != 0 {
		out := t.Crop
		if out == 0 && t.ResizeExact {
			out = t.Resize
		}
		if out != t.Size {
			return errors.Errorf("preprocess: transform %q gives %d×%d images (resize %d, crop %d), the model takes %d×%d", t.Name, out, out, t.Resize, t.Crop, t.Size, t.Size)
		}
		if t.Crop > t.Resize {
			return errors.Errorf("preprocess: transform %q crops %d from %d", t.Name, t.Crop, t.Resize)
		}
	}
	return t.Norm.Check(t.Channels)
}

// String describes the transform in one line.
func (t Transform) String() string {
	if t.Resize == 0 {
		return fmt.Sprintf("%s: centred square resized to %d (area/linear), mean %v std %v", t.Name, t.Size, t.Norm.Mean, t.Norm.Std)
	}
	how := "shorter side"
	if t.ResizeExact {
		how = "square"
	}
	crop := ""
	if t.Crop > 0 {
		crop = fmt.Sprintf(", centre crop %d", t.Crop)
	}
	return fmt.Sprintf("%s: resize %s to %d (%v, antialiased)%s, mean %v std %v", t.Name, how, t.Resize, t.Filter, crop, t.Norm.Mean, t.Norm.Std)
}

// Pixels converts img as the transform says into dst: C×Size×Size values
// in [0,1], before normalisation.
func (t Transform) Pixels(img image.Image, dst []float32) error {
	if t.Resize == 0 {
		return ToCHW(img, t.Channels, t.Size, dst)
	}
	m, err := FromImage(img, t.Channels)
	if err != nil {
		return err
	}
	w, h := t.Resize, t.Resize
	if !t.ResizeExact {
		w, h = m.shorterTo(t.Resize)
	}
	if t.Crop > 0 {
		m, err = m.ResizeCrop(w, h, t.Crop, t.Crop, t.Filter) // only the pixels the crop keeps
	} else {
		m, err = m.Resize(w, h, t.Filter)
	}
	if err != nil {
		return err
	}
	return m.Floats(dst)
}

// Spec changes the transform that weights come with (a Transform built
// once the model's input size is known). Zero fields keep what there is.
type Spec struct {
	// Kind replaces how images are resized: "train", "timm", "torchvision"
	// or "hf", each with its own filter and crop; the channels and the
	// normalisation stay the weights' (Norm changes the latter); "" keeps it.
	Kind    string
	CropPct float64        // timm: the crop fraction (default 0.9)
	Filter  Filter         // the resampling filter of an evaluation transform
	Norm    *Normalization // the normalisation
}

// Apply returns base changed as the spec says.
func (s Spec) Apply(base Transform) (Transform, error) {
	t := base
	var err error
	switch s.Kind {
	case "":
		if s.CropPct != 0 && t.Name == "timm" {
			t, err = TimmEval(t.Size, s.CropPct, t.Filter, t.Norm)
		}
	case "train":
		t = TrainTransform(t.Size, t.Channels, t.Norm)
	case "timm":
		t, err = TimmEval(t.Size, cmp.Or(s.CropPct, 0.9), Bicubic, t.Norm)
	case "torchvision":
		t = TorchvisionEval(t.Size, t.Norm)
	case "hf":
		t = HFDefault(t.Size)
	default:
		return t, errors.Errorf("preprocess: transform %q, expected train, timm, torchvision or hf", s.Kind)
	}
	if err != nil {
		return t, err
	}
	// The kind changes how images are resized, not what the model takes:
	// its channels and normalisation stay the weights' (Norm changes that).
	t.Channels, t.Norm = base.Channels, base.Norm
	if s.CropPct != 0 && t.Name != "timm" {
		return t, errors.Errorf("preprocess: a crop fraction is for timm's transform, not %s's", t.Name)
	}
	if s.Filter != 0 {
		if t.Resize == 0 {
			return t, errors.New("preprocess: the training pipeline has no resampling filter to choose")
		}
		t.Filter = s.Filter
	}
	if s.Norm != nil {
		t.Norm = *s.Norm
	}
	return t, t.Check()
}

// ParseFilter reads a filter's name: "bilinear" or "bicubic".
func ParseFilter(s string) (Filter, error) {
	for _, f := range []Filter{Bilinear, Bicubic} {
		if s == f.String() {
			return f, nil
		}
	}
	return 0, errors.Errorf("preprocess: filter %q, expected bilinear or bicubic", s)
}

// ParseNorm reads a normalisation: "imagenet", "half" (0.5, 0.5), or
// "m1,m2,m3/s1,s2,s3" (one mean and one std per channel).
func ParseNorm(s string) (Normalization, error) {
	switch s {
	case "imagenet":
		return ImageNet.Clone(), nil
	case "half":
		return Half.Clone(), nil
	}
	means, stds, ok := strings.Cut(s, "/")
	var n Normalization
	for i, part := range []string{means, stds} {
		for _, f := range strings.Split(part, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 32)
			if err != nil || !ok {
				return Normalization{}, errors.Errorf("preprocess: normalisation %q, expected imagenet, half or MEAN,…/STD,… (e.g. 0.5,0.5,0.5/0.5,0.5,0.5)", s)
			}
			if i == 0 {
				n.Mean = append(n.Mean, float32(v))
			} else {
				n.Std = append(n.Std, float32(v))
			}
		}
	}
	return n, n.Check(len(n.Mean))
}
