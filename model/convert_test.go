package model

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// Synthetic model dimensions for the conversion tests.
const (
	cvDepth   = 2
	cvD       = 4 // embedding width
	cvC       = 3 // image channels
	cvP       = 2 // patch size
	cvGrid    = 4 // grid tokens (2x2)
	cvHidden  = 8 // MLP width
	cvClasses = 5
)

// cvTimmShapes is the expected timm state dict of the synthetic model.
func cvTimmShapes() map[string][]int {
	s := map[string][]int{
		"cls_token":               {1, 1, cvD},
		"pos_embed":               {1, cvGrid + 1, cvD},
		"patch_embed.proj.weight": {cvD, cvC, cvP, cvP},
		"patch_embed.proj.bias":   {cvD},
		"norm.weight":             {cvD},
		"norm.bias":               {cvD},
		"head.weight":             {cvClasses, cvD},
		"head.bias":               {cvClasses},
	}
	for i := 0; i < cvDepth; i++ {
		b := fmt.Sprintf("blocks.%d.", i)
		s[b+"norm1.weight"] = []int{cvD}
		s[b+"norm1.bias"] = []int{cvD}
		s[b+"attn.qkv.weight"] = []int{3 * cvD, cvD}
		s[b+"attn.qkv.bias"] = []int{3 * cvD}
		s[b+"attn.proj.weight"] = []int{cvD, cvD}
		s[b+"attn.proj.bias"] = []int{cvD}
		s[b+"norm2.weight"] = []int{cvD}
		s[b+"norm2.bias"] = []int{cvD}
		s[b+"mlp.fc1.weight"] = []int{cvHidden, cvD}
		s[b+"mlp.fc1.bias"] = []int{cvHidden}
		s[b+"mlp.fc2.weight"] = []int{cvD, cvHidden}
		s[b+"mlp.fc2.bias"] = []int{cvD}
	}
	return s
}

// cvFilled returns a tensor of the given shape whose values all differ from
// those of any other tensor made with a different tag.
func cvFilled(tag int, shape ...int) Tensor {
	n, err := stNumElements(shape)
	if err != nil {
		panic(err)
	}
	d := make([]float64, n)
	for i := range d {
		d[i] = float64(tag)*1000 + float64(i)
	}
	return Tensor{Shape: shape, Data: d}
}

// cvTorchvisionDict builds a synthetic torchvision state dict and records,
// for each timm name, the torchvision name it should come from.
func cvTorchvisionDict() (map[string]Tensor, map[string]string) {
	in := map[string]Tensor{}
	src := map[string]string{}
	tag := 0
	add := func(tv, timm string, shape ...int) {
		tag++
		in[tv] = cvFilled(tag, shape...)
		src[timm] = tv
	}
	add("class_token", "cls_token", 1, 1, cvD)
	add("encoder.pos_embedding", "pos_embed", 1, cvGrid+1, cvD)
	add("conv_proj.weight", "patch_embed.proj.weight", cvD, cvC, cvP, cvP)
	add("conv_proj.bias", "patch_embed.proj.bias", cvD)
	add("encoder.ln.weight", "norm.weight", cvD)
	add("encoder.ln.bias", "norm.bias", cvD)
	add("heads.head.weight", "head.weight", cvClasses, cvD)
	add("heads.head.bias", "head.bias", cvClasses)
	for i := 0; i < cvDepth; i++ {
		l := fmt.Sprintf("encoder.layers.encoder_layer_%d.", i)
		b := fmt.Sprintf("blocks.%d.", i)
		add(l+"ln_1.weight", b+"norm1.weight", cvD)
		add(l+"ln_1.bias", b+"norm1.bias", cvD)
		add(l+"self_attention.in_proj_weight", b+"attn.qkv.weight", 3*cvD, cvD)
		add(l+"self_attention.in_proj_bias", b+"attn.qkv.bias", 3*cvD)
		add(l+"self_attention.out_proj.weight", b+"attn.proj.weight", cvD, cvD)
		add(l+"self_attention.out_proj.bias", b+"attn.proj.bias", cvD)
		add(l+"ln_2.weight", b+"norm2.weight", cvD)
		add(l+"ln_2.bias", b+"norm2.bias", cvD)
		add(l+"mlp.0.weight", b+"mlp.fc1.weight", cvHidden, cvD)
		add(l+"mlp.0.bias", b+"mlp.fc1.bias", cvHidden)
		add(l+"mlp.3.weight", b+"mlp.fc2.weight", cvD, cvHidden)
		add(l+"mlp.3.bias", b+"mlp.fc2.bias", cvD)
	}
	return in, src
}

// cvHFDict builds a synthetic Hugging Face ViTForImageClassification state
// dict (prefix "vit.") or ViTModel one (prefix "", no classifier). For the
// packed qkv tensors, src records the three sources joined by "+".
func cvHFDict(prefix string, classifier bool) (map[string]Tensor, map[string]string) {
	in := map[string]Tensor{}
	src := map[string]string{}
	tag := 0
	add := func(hf, timm string, shape ...int) {
		tag++
		in[hf] = cvFilled(tag, shape...)
		if timm != "" {
			src[timm] = hf
		}
	}
	add(prefix+"embeddings.cls_token", "cls_token", 1, 1, cvD)
	add(prefix+"embeddings.position_embeddings", "pos_embed", 1, cvGrid+1, cvD)
	add(prefix+"embeddings.patch_embeddings.projection.weight", "patch_embed.proj.weight", cvD, cvC, cvP, cvP)
	add(prefix+"embeddings.patch_embeddings.projection.bias", "patch_embed.proj.bias", cvD)
	add(prefix+"layernorm.weight", "norm.weight", cvD)
	add(prefix+"layernorm.bias", "norm.bias", cvD)
	add(prefix+"pooler.dense.weight", "", cvD, cvD) // must be dropped
	add(prefix+"pooler.dense.bias", "", cvD)
	if classifier {
		add("classifier.weight", "head.weight", cvClasses, cvD)
		add("classifier.bias", "head.bias", cvClasses)
	}
	for i := 0; i < cvDepth; i++ {
		l := fmt.Sprintf("%sencoder.layer.%d.", prefix, i)
		b := fmt.Sprintf("blocks.%d.", i)
		add(l+"layernorm_before.weight", b+"norm1.weight", cvD)
		add(l+"layernorm_before.bias", b+"norm1.bias", cvD)
		for _, wb := range []string{"weight", "bias"} {
			var parts []string
			for _, p := range []string{"query", "key", "value"} {
				name := l + "attention.attention." + p + "." + wb
				if wb == "weight" {
					add(name, "", cvD, cvD)
				} else {
					add(name, "", cvD)
				}
				parts = append(parts, name)
			}
			src[b+"attn.qkv."+wb] = strings.Join(parts, "+")
		}
		add(l+"attention.output.dense.weight", b+"attn.proj.weight", cvD, cvD)
		add(l+"attention.output.dense.bias", b+"attn.proj.bias", cvD)
		add(l+"layernorm_after.weight", b+"norm2.weight", cvD)
		add(l+"layernorm_after.bias", b+"norm2.bias", cvD)
		add(l+"intermediate.dense.weight", b+"mlp.fc1.weight", cvHidden, cvD)
		add(l+"intermediate.dense.bias", b+"mlp.fc1.bias", cvHidden)
		add(l+"output.dense.weight", b+"mlp.fc2.weight", cvD, cvHidden)
		add(l+"output.dense.bias", b+"mlp.fc2.bias", cvD)
	}
	return in, src
}

// cvExpectedValues concatenates the source tensors' values ("a+b+c" means
// a, then b, then c: q, k, v order for the packed projections).
func cvExpectedValues(in map[string]Tensor, src string) []float64 {
	var v []float64
	for _, s := range strings.Split(src, "+") {
		v = append(v, in[s].Data...)
	}
	return v
}

func TestToTimmNames(t *testing.T) {
	tv, tvSrc := cvTorchvisionDict()
	hf, hfSrc := cvHFDict("vit.", true)
	hfModel, hfModelSrc := cvHFDict("", false)

	timm := map[string]Tensor{}
	timmSrc := map[string]string{}
	for i, name := range cvSortedKeys(cvTimmShapes()) {
		timm[name] = cvFilled(i+1, cvTimmShapes()[name]...)
		timmSrc[name] = name
	}

	withoutHead := cvTimmShapes()
	delete(withoutHead, "head.weight")
	delete(withoutHead, "head.bias")

	for _, tc := range []struct {
		name       string
		in         map[string]Tensor
		src        map[string]string
		want       map[string][]int
		convention string
	}{
		{"torchvision", tv, tvSrc, cvTimmShapes(), "torchvision"},
		{"huggingface ViTForImageClassification", hf, hfSrc, cvTimmShapes(), "huggingface"},
		{"huggingface ViTModel", hfModel, hfModelSrc, withoutHead, "huggingface"},
		{"timm", timm, timmSrc, cvTimmShapes(), "timm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, conv, err := toTimmNames(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if conv != tc.convention {
				t.Errorf("convention %q, want %q", conv, tc.convention)
			}
			if err := checkTensors(tc.want, got); err != nil {
				t.Error(err)
			}
			if !reflect.DeepEqual(cvSortedKeys(got), cvSortedKeys(tc.want)) {
				t.Errorf("names %v,\nwant %v", cvSortedKeys(got), cvSortedKeys(tc.want))
			}
			for name := range tc.want {
				if want := cvExpectedValues(tc.in, tc.src[name]); !reflect.DeepEqual(got[name].Data, want) {
					t.Errorf("%s: values %v, want those of %s: %v", name, got[name].Data, tc.src[name], want)
				}
			}
		})
	}
}

// TestToTimmNamesQKVOrder spells out the q, k, v row order of the packed
// projection for one layer.
func TestToTimmNamesQKVOrder(t *testing.T) {
	in := map[string]Tensor{
		"vit.encoder.layer.0.attention.attention.query.weight": {Shape: []int{1, 2}, Data: []float64{1, 2}},
		"vit.encoder.layer.0.attention.attention.key.weight":   {Shape: []int{1, 2}, Data: []float64{3, 4}},
		"vit.encoder.layer.0.attention.attention.value.weight": {Shape: []int{1, 2}, Data: []float64{5, 6}},
		"vit.encoder.layer.0.attention.attention.value.bias":   {Shape: []int{1}, Data: []float64{-3}},
		"vit.encoder.layer.0.attention.attention.query.bias":   {Shape: []int{1}, Data: []float64{-1}},
		"vit.encoder.layer.0.attention.attention.key.bias":     {Shape: []int{1}, Data: []float64{-2}},
	}
	got, _, err := toTimmNames(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Tensor{
		"blocks.0.attn.qkv.weight": {Shape: []int{3, 2}, Data: []float64{1, 2, 3, 4, 5, 6}},
		"blocks.0.attn.qkv.bias":   {Shape: []int{3}, Data: []float64{-1, -2, -3}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestToTimmNamesPassThroughAndErrors(t *testing.T) {
	one := Tensor{Shape: []int{1}, Data: []float64{1}}
	for _, tc := range []struct {
		name      string
		in        map[string]Tensor
		wantNames []string // exact output names, when no error
		wantConv  string
		wantErr   []string
	}{
		{"unknown names pass through (torchvision)",
			map[string]Tensor{"class_token": one, "heads.pre_logits.weight": one, "encoder.layers.encoder_layer_0.weird": one, "encoder.layers.encoder_layer_01.ln_1.bias": one, "foo": one},
			[]string{"cls_token", "encoder.layers.encoder_layer_0.weird", "encoder.layers.encoder_layer_01.ln_1.bias", "foo", "heads.pre_logits.weight"}, "torchvision", nil},
		{"old torchvision MLP names",
			map[string]Tensor{"encoder.layers.encoder_layer_3.mlp.linear_1.weight": one, "encoder.layers.encoder_layer_3.mlp.linear_2.bias": one},
			[]string{"blocks.3.mlp.fc1.weight", "blocks.3.mlp.fc2.bias"}, "torchvision", nil},
		{"unknown names pass through (huggingface)",
			map[string]Tensor{"vit.embeddings.cls_token": one, "vit.embeddings.mask_token": one, "vit.pooler.dense.bias": one},
			[]string{"cls_token", "vit.embeddings.mask_token"}, "huggingface", nil},
		{"incomplete q/k/v passes through",
			map[string]Tensor{
				"vit.encoder.layer.1.attention.attention.query.weight": one,
				"vit.encoder.layer.1.attention.attention.key.weight":   one,
				"vit.encoder.layer.1.attention.attention.query.bias":   one,
				"vit.encoder.layer.1.attention.attention.key.bias":     one,
				"vit.encoder.layer.1.attention.attention.value.bias":   one,
			},
			[]string{"blocks.1.attn.qkv.bias", "vit.encoder.layer.1.attention.attention.key.weight", "vit.encoder.layer.1.attention.attention.query.weight"}, "huggingface", nil},
		{"timm with fc_norm", map[string]Tensor{"fc_norm.weight": one, "blocks.0.attn.qkv.weight": one},
			[]string{"blocks.0.attn.qkv.weight", "fc_norm.weight"}, "timm", nil},
		{"empty", map[string]Tensor{}, []string{}, "timm", nil},
		{"mixed conventions", map[string]Tensor{"class_token": one, "vit.embeddings.cls_token": one}, nil, "",
			[]string{"torchvision", "Hugging Face", `"class_token"`, `"vit.embeddings.cls_token"`}},
		{"two names map to one", map[string]Tensor{"class_token": one, "cls_token": one}, nil, "",
			[]string{`"class_token"`, `"cls_token"`, "both map to"}},
		{"with and without vit. prefix", map[string]Tensor{"vit.layernorm.bias": one, "layernorm.bias": one}, nil, "",
			[]string{`"layernorm.bias"`, `"vit.layernorm.bias"`, `"norm.bias"`}},
		{"q/k/v shapes disagree",
			map[string]Tensor{
				"vit.encoder.layer.0.attention.attention.query.weight": {Shape: []int{2, 2}, Data: make([]float64, 4)},
				"vit.encoder.layer.0.attention.attention.key.weight":   {Shape: []int{2, 3}, Data: make([]float64, 6)},
				"vit.encoder.layer.0.attention.attention.value.weight": {Shape: []int{2, 2}, Data: make([]float64, 4)},
			}, nil, "", []string{"key.weight", "[2 3]", "query.weight", "[2 2]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, conv, err := toTimmNames(tc.in)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("no error; got %v", cvSortedKeys(got))
				}
				if !strings.HasPrefix(err.Error(), "model: ") {
					t.Errorf("error %q does not start with \"model: \"", err)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %s", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if conv != tc.wantConv {
				t.Errorf("convention %q, want %q", conv, tc.wantConv)
			}
			if names := cvSortedKeys(got); !reflect.DeepEqual(names, tc.wantNames) {
				t.Errorf("names %q, want %q", names, tc.wantNames)
			}
		})
	}
}

// TestToTimmNamesParityFixtures converts the PyTorch-written torchvision and
// Hugging Face fixtures and compares them with the timm fixture, value for
// value.
func TestToTimmNamesParityFixtures(t *testing.T) {
	timm, _, err := readSafetensors("../testdata/parity/vit_timm.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if conv := cvConvention(t, timm); conv != "timm" {
		t.Errorf("timm fixture detected as %q", conv)
	}
	want := map[string][]int{}
	for name, x := range timm {
		want[name] = x.Shape
	}
	for _, tc := range []struct{ file, convention string }{
		{"vit_torchvision.safetensors", "torchvision"},
		{"vit_hf.safetensors", "huggingface"},
	} {
		t.Run(tc.convention, func(t *testing.T) {
			in, _, err := readSafetensors("../testdata/parity/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			got, conv, err := toTimmNames(in)
			if err != nil {
				t.Fatal(err)
			}
			if conv != tc.convention {
				t.Errorf("convention %q, want %q", conv, tc.convention)
			}
			if err := checkTensors(want, got); err != nil {
				t.Fatal(err)
			}
			for name, w := range timm {
				if !reflect.DeepEqual(got[name].Data, w.Data) {
					t.Errorf("%s: values differ from the timm fixture", name)
				}
			}
		})
	}
}

func cvConvention(t *testing.T, in map[string]Tensor) string {
	t.Helper()
	_, conv, err := toTimmNames(in)
	if err != nil {
		t.Fatal(err)
	}
	return conv
}

func cvSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestCheckTensors(t *testing.T) {
	want := map[string][]int{
		"a": {2, 3},
		"b": {4},
		"c": {1, 1, 8},
		"d": {5},
	}
	tensor := func(shape ...int) Tensor { return cvFilled(0, shape...) }
	for _, tc := range []struct {
		name string
		got  map[string]Tensor
		want string // full error message; "" for nil
	}{
		{"exact match", map[string]Tensor{"a": tensor(2, 3), "b": tensor(4), "c": tensor(1, 1, 8), "d": tensor(5)}, ""},
		{"missing", map[string]Tensor{"a": tensor(2, 3), "c": tensor(1, 1, 8)},
			"model: weights do not match the model: 2 missing, 0 unexpected, 0 with the wrong shape\n" +
				"  missing b: expected shape [4]\n" +
				"  missing d: expected shape [5]"},
		{"unexpected", map[string]Tensor{"a": tensor(2, 3), "b": tensor(4), "c": tensor(1, 1, 8), "d": tensor(5), "z": tensor(7), "e": tensor()},
			"model: weights do not match the model: 0 missing, 2 unexpected, 0 with the wrong shape\n" +
				"  unexpected e: shape []\n" +
				"  unexpected z: shape [7]"},
		{"mis-shaped", map[string]Tensor{"a": tensor(3, 2), "b": tensor(4), "c": tensor(1, 8), "d": tensor(5)},
			"model: weights do not match the model: 0 missing, 0 unexpected, 2 with the wrong shape\n" +
				"  wrong shape a: expected [2 3], found [3 2]\n" +
				"  wrong shape c: expected [1 1 8], found [1 8]"},
		{"all three", map[string]Tensor{"d": tensor(6), "b": tensor(4), "x": tensor(1), "a": tensor(2, 3)},
			"model: weights do not match the model: 1 missing, 1 unexpected, 1 with the wrong shape\n" +
				"  missing c: expected shape [1 1 8]\n" +
				"  unexpected x: shape [1]\n" +
				"  wrong shape d: expected [5], found [6]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkTensors(want, tc.got)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("no error, want:\n%s", tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("error:\n%s\nwant:\n%s", err, tc.want)
			}
		})
	}
	// Many names in each group, given in map order: the listing must still
	// be sorted.
	many := map[string][]int{}
	got := map[string]Tensor{}
	var lines []string
	for _, n := range []string{"m3", "m1", "m9", "m0", "m7", "m2", "m8"} {
		many[n] = []int{1}
	}
	for _, n := range []string{"u5", "u0", "u9", "u3", "u1", "u7"} {
		got[n] = cvFilled(0, 2)
	}
	for _, n := range []string{"m0", "m1", "m2", "m3", "m7", "m8", "m9"} {
		lines = append(lines, "  missing "+n+": expected shape [1]")
	}
	for _, n := range []string{"u0", "u1", "u3", "u5", "u7", "u9"} {
		lines = append(lines, "  unexpected "+n+": shape [2]")
	}
	wantMsg := "model: weights do not match the model: 7 missing, 6 unexpected, 0 with the wrong shape\n" + strings.Join(lines, "\n")
	for i := 0; i < 5; i++ {
		if err := checkTensors(many, got); err == nil || err.Error() != wantMsg {
			t.Fatalf("error:\n%v\nwant:\n%s", err, wantMsg)
		}
	}
	if err := checkTensors(nil, nil); err != nil {
		t.Errorf("empty: %v", err)
	}
}
