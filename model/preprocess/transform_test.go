package preprocess

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"io/fs"
	"math"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vitgo/vit/model/vittest"
)

// transformFixture is one entry of testdata/published/transforms.json:
// what PIL and torchvision's transforms give for a photo.
type transformFixture struct {
	Photo        string    `json:"photo"`
	Transform    string    `json:"transform"`
	Size         int       `json:"size"`
	Mean         []float32 `json:"mean"`
	Std          []float32 `json:"std"`
	ChannelMeans []float64 `json:"channel_means"`
}

// fixtureTransform is the transform of ours that stands for a fixture's.
func fixtureTransform(t *testing.T, f transformFixture) Transform {
	t.Helper()
	norm := Normalization{Mean: f.Mean, Std: f.Std}
	var tr Transform
	var err error
	switch f.Transform {
	case "timm":
		tr, err = TimmEval(f.Size, 0.9, Bicubic, norm)
	case "torchvision":
		tr = TorchvisionEval(f.Size, norm)
	case "hf":
		tr, err = parseHFProcessor([]byte(`{"do_resize": true, "size": {"height": 224, "width": 224}, "resample": 2,
			"do_rescale": true, "rescale_factor": 0.00392156862745098, "do_normalize": true,
			"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}`), f.Size)
	default:
		t.Fatalf("unknown transform %q", f.Transform)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestTransformsMatchPIL: the timm, torchvision and Hugging Face evaluation
// transforms give, on real photographs (PNG and JPEG, not square, larger
// than the input), the tensor PIL + torchvision.transforms give: exactly
// for a PNG, within a mean absolute difference of 0.01 (normalised units)
// for a JPEG, whose decoders differ.
func TestTransformsMatchPIL(t *testing.T) {
	dir := "../../testdata/published"
	var fixtures map[string]transformFixture
	vittest.ReadJSON(t, filepath.Join(dir, "transforms.json"), &fixtures)
	if len(fixtures) != 12 {
		t.Fatalf("%d fixtures, expected 12 (4 photos × 3 transforms)", len(fixtures))
	}
	for name, f := range fixtures {
		tr := fixtureTransform(t, f)
		img, err := DecodeFile(filepath.Join("../../testdata/photos", f.Photo))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, 3*f.Size*f.Size)
		if err := tr.Pixels(img, got); err != nil {
			t.Fatal(err)
		}
		ref, err := DecodeFile(filepath.Join(dir, "transforms", name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := FromImage(ref, 3)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, len(got))
		if err := m.Floats(want); err != nil {
			t.Fatal(err)
		}
		plane := f.Size * f.Size
		for _, x := range [][]float32{got, want} {
			if err := tr.Norm.Apply(x, plane); err != nil {
				t.Fatal(err)
			}
		}
		var sum, worst float64
		for i := range got {
			d := math.Abs(float64(got[i] - want[i]))
			sum += d
			worst = math.Max(worst, d)
		}
		mad := sum / float64(len(got))
		t.Logf("%s (%s): mean |diff| %.2e, max %.3f (normalised units)", name, tr, mad, worst)
		limit := 0.01
		if strings.HasSuffix(f.Photo, ".png") {
			limit = 0 // same pixels in, PIL's arithmetic here: the same pixels out
		}
		if mad > limit {
			t.Errorf("%s: mean |diff| %.4f from PIL + torchvision, expected at most %g", name, mad, limit)
		}
		for c, cm := range f.ChannelMeans {
			var s float64
			for _, v := range want[c*plane : (c+1)*plane] {
				s += float64(v)
			}
			if math.Abs(s/float64(plane)-cm) > 1e-5 {
				t.Errorf("%s: channel %d mean %v from the PNG, torchvision's tensor has %v", name, c, s/float64(plane), cm)
			}
		}
	}
}

// TestFromImageAsPIL: an RGBA PNG becomes PIL's convert("RGB") (alpha
// dropped, not composited) and convert("L") (PIL's fixed-point luma).
func TestFromImageAsPIL(t *testing.T) {
	img, err := DecodeFile("../../testdata/photos/chelsea-small.png")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := img.(*image.NRGBA); !ok {
		t.Fatalf("chelsea-small.png decodes as %T, expected an image with alpha", img)
	}
	ref, err := DecodeFile("../../testdata/published/decoded/chelsea-small-gray.png")
	if err != nil {
		t.Fatal(err)
	}
	gray, err := FromImage(img, 1)
	if err != nil {
		t.Fatal(err)
	}
	if g := ref.(*image.Gray); string(gray.Pix) != string(g.Pix) {
		t.Errorf("FromImage(·, 1) differs from PIL's convert(\"L\")")
	}
}

// TestJPEGChromaAsLibjpeg: JPEG colour is upsampled and converted as
// libjpeg (PIL's decoder) does it, for 4:2:2 and 4:2:0 chroma: far closer to
// PIL's pixels than the standard library's nearest chroma sample and
// colour conversion, within a tenth of a level on average (the rest is the
// decoders' inverse DCTs).
func TestJPEGChromaAsLibjpeg(t *testing.T) {
	for _, c := range []struct {
		jpeg, png string
		ratio     image.YCbCrSubsampleRatio
	}{
		{"chelsea-422.jpg", "chelsea-422.png", image.YCbCrSubsampleRatio422},
		{"coffee.jpg", "coffee-corner.png", image.YCbCrSubsampleRatio420},
	} {
		img, err := DecodeFile(filepath.Join("../../testdata/photos", c.jpeg))
		if err != nil {
			t.Fatal(err)
		}
		y, ok := img.(*image.YCbCr)
		if !ok || y.SubsampleRatio != c.ratio {
			t.Fatalf("%s: %T, expected a %v JPEG", c.jpeg, img, c.ratio)
		}
		ref, err := DecodeFile(filepath.Join("../../testdata/published/decoded", c.png))
		if err != nil {
			t.Fatal(err)
		}
		want, err := FromImage(ref, 3)
		if err != nil {
			t.Fatal(err)
		}
		got, err := FromImage(img, 3)
		if err != nil {
			t.Fatal(err)
		}
		var fancy, nearest float64
		w, h, plane := want.W, want.H, want.W*want.H
		for py := 0; py < h; py++ {
			for px := 0; px < w; px++ {
				yc := y.YCbCrAt(px, py)
				r, g, b := color.YCbCrToRGB(yc.Y, yc.Cb, yc.Cr)
				for ch, v := range []uint8{r, g, b} {
					wv := float64(want.Pix[ch*plane+py*w+px])
					fancy += math.Abs(float64(got.Pix[ch*got.W*got.H+py*got.W+px]) - wv)
					nearest += math.Abs(float64(v) - wv)
				}
			}
		}
		n := float64(3 * plane)
		t.Logf("%s: mean |diff| from PIL %.3f levels, %.3f with the standard library's conversion", c.jpeg, fancy/n, nearest/n)
		if fancy/n > 0.1 || fancy >= nearest {
			t.Errorf("%s: mean |diff| from PIL %.3f levels (standard library: %.3f), expected at most 0.1 and less than the standard library's", c.jpeg, fancy/n, nearest/n)
		}
	}
}

func TestHFProcessorConfigs(t *testing.T) {
	for _, c := range []struct {
		json, want string // want: the transform's String, or the error
	}{
		{`{"size": 224}`, "hf: resize square to 224 (bilinear, antialiased), mean [0.5 0.5 0.5] std [0.5 0.5 0.5]"},
		{`{"size": {"shortest_edge": 256}, "do_center_crop": true, "crop_size": {"height": 224, "width": 224}, "resample": 3,
			"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}`,
			"hf: resize shorter side to 256 (bicubic, antialiased), centre crop 224, mean [0.485 0.456 0.406] std [0.229 0.224 0.225]"},
		{`{"size": 224, "do_normalize": false}`, "hf: resize square to 224 (bilinear, antialiased), mean [0 0 0] std [1 1 1]"},
		{`{"size": 224, "resample": 1}`, "resample 1, expected 2 (bilinear) or 3 (bicubic)"},
		{`{"size": {"height": 224, "width": 160}}`, "224×160, expected a square"},
		{`{"size": 192}`, "gives 192×192 images"},
		{`{"size": 224, "rescale_factor": 0.5}`, "rescale other than by 1/255"},
		{`{"size": 224, "image_mean": [0.5], "image_std": [0.5]}`, "1 means and 1 stds, expected 3"},
		{`[1, 2]`, "not a JSON preprocessor config"},
	} {
		tr, err := parseHFProcessor([]byte(c.json), 224)
		got := tr.String()
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, expected %q", c.json, got, c.want)
		}
	}
	if _, err := HFProcessor("../../testdata/absent/preprocessor_config.json", 224); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing config: %v is not fs.ErrNotExist", err)
	}
}

// TestSpecKeepsWeights: another kind of transform resizes differently but
// keeps the weights' channels and normalisation unless told otherwise.
func TestSpecKeepsWeights(t *testing.T) {
	base := TrainTransform(32, 1, Normalization{Mean: []float32{0.3}, Std: []float32{0.4}})
	for _, kind := range []string{"train", "timm", "torchvision", "hf"} {
		tr, err := Spec{Kind: kind}.Apply(base)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Channels != 1 || tr.Norm.Mean[0] != 0.3 || tr.Norm.Std[0] != 0.4 || tr.Name != kind {
			t.Errorf("%s: %v (channels %d), expected 1 channel and the weights' normalisation", kind, tr, tr.Channels)
		}
		dst := make([]float32, 32*32)
		if err := tr.Pixels(vittest.RandRGB(1, 50, 40, 1), dst); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
	}
	half := Half.Clone()
	if tr, err := (Spec{Kind: "timm", Norm: &half}).Apply(TrainTransform(32, 3, ImageNet)); err != nil || tr.Norm.Mean[0] != 0.5 {
		t.Errorf("timm with Norm half: %v, %v", tr, err)
	}
}

// TestResizeCropIsResizeThenCrop: computing only the window gives the
// samples of resizing the whole image and cropping, bit for bit.
func TestResizeCropIsResizeThenCrop(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 40; i++ {
		src, err := FromImage(vittest.RandRGB(int64(i), 5+rng.Intn(60), 5+rng.Intn(60), 1), 3)
		if err != nil {
			t.Fatal(err)
		}
		w, h := 2+rng.Intn(70), 2+rng.Intn(70)
		if i%5 == 0 {
			w = src.W // one side unchanged
		}
		cw, ch := 1+rng.Intn(w), 1+rng.Intn(h)
		f := []Filter{Bilinear, Bicubic}[i%2]
		full, err := src.Resize(w, h, f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := full.CenterCrop(cw, ch)
		if err != nil {
			t.Fatal(err)
		}
		got, err := src.ResizeCrop(w, h, cw, ch, f)
		if err != nil {
			t.Fatal(err)
		}
		if got.W != want.W || got.H != want.H || !bytes.Equal(got.Pix, want.Pix) {
			t.Fatalf("%d×%d → %d×%d, crop %d×%d, filter %v: the window differs from resize + crop", src.W, src.H, w, h, cw, ch, f)
		}
	}
	if _, err := (&Image8{W: 4, H: 4, C: 1, Pix: make([]uint8, 16)}).ResizeCrop(8, 8, 9, 4, Bilinear); err == nil {
		t.Error("a crop wider than the resized image was accepted")
	}
}
