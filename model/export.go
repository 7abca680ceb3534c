package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/model/preprocess"
)

// Namings of Export.
const (
	NamingTimm        = namingTimm        // timm's VisionTransformer
	NamingTorchvision = namingTorchvision // torchvision.models.VisionTransformer
	NamingHuggingFace = namingHuggingFace // transformers' ViTForImageClassification
)

// ExportInfo is what an exported file says beside the weights: the class
// names and the preprocessing, in the metadata (MetaClasses,
// MetaPreprocess, MetaNormalization; this package reads them back, PyTorch
// ignores them) and, for Hugging Face, in config.json's id2label and
// preprocessor_config.json. Either may be empty.
type ExportInfo struct {
	Classes   []string
	Transform preprocess.Transform
}

// Export writes the model's weights, and nothing else (no optimizer
// state), for PyTorch:
//
//   - NamingTimm: one safetensors file in timm's names, as SaveWeights
//     writes them (its metadata lets this package rebuild the model);
//   - NamingTorchvision: one file that
//     torchvision.models.VisionTransformer(...).load_state_dict(...,
//     strict=True) accepts (a model without qkv bias gets zero biases; a
//     conv stem is conv_proj.conv_bn_relu_{i} and conv_proj.conv_last, the
//     VisionTransformer built with conv_stem_configs whose norm_layer is a
//     LayerNorm over channels and activation_layer nn.GELU, as
//     testdata/parity/make_stem.py does);
//   - NamingHuggingFace: path is a directory, which receives
//     model.safetensors in ViTForImageClassification's names (q, k and v
//     apart), config.json (the architecture and id2label) and
//     preprocessor_config.json (resize to the input size, bilinear, and
//     the normalisation), as transformers' from_pretrained reads them.
//
// What a naming cannot express is refused: mean pooling and the tanh GELU
// or an epsilon other than 1e-6 in torchvision's model, mean pooling and a
// conv stem in Hugging Face's.
func (m *ViT) Export(path, naming string, info ExportInfo) error {
	c := m.Config
	if len(info.Classes) != 0 && len(info.Classes) != c.NumClasses {
		return errors.Errorf("model: export: %d class names for a model of %d classes", len(info.Classes), c.NumClasses)
	}
	meta := map[string]string{}
	if len(info.Classes) > 0 {
		meta[MetaClasses] = jsonString(info.Classes)
	}
	if info.Transform.Size != 0 {
		if err := info.Transform.Check(); err != nil {
			return errors.Wrap(err, "model: export")
		}
		meta[MetaPreprocess] = jsonString(info.Transform)
		meta[MetaNormalization] = jsonString(info.Transform.Norm)
	}
	switch naming {
	case NamingTimm:
		return m.SaveCheckpoint(path, nil, meta)
	case NamingTorchvision:
		if c.MeanPool() || c.GELU == GELUTanh || c.LayerNormEps() != 1e-6 {
			return errors.Errorf("model: export: torchvision's VisionTransformer has class-token pooling, exact GELU and LayerNorm eps 1e-6; this model has %v", c)
		}
		names, st := m.exportTensors(toTorchvisionName)
		for i := 0; c.NoQKVBias && i < c.Depth; i++ { // torchvision always has one: zeros are the same model
			n := fmt.Sprintf("encoder.layers.encoder_layer_%d.self_attention.in_proj_bias", i)
			names, st[n] = append(names, n), Tensor{Shape: []int{3 * c.Dim}, Data: make([]float64, 3*c.Dim)}
		}
		meta[MetaFormat], meta[MetaConfig] = "pt", c.marshal()
		return writeSafetensors(path, names, st, "F32", meta)
	case NamingHuggingFace:
		if c.MeanPool() || c.ConvStem() {
			return errors.Errorf("model: export: Hugging Face's ViTForImageClassification pools the class token and embeds patches with one projection; this model has %v", c)
		}
		return m.exportHF(path, info, meta)
	}
	return errors.Errorf("model: export naming %q, expected %q, %q or %q", naming, NamingTimm, NamingTorchvision, NamingHuggingFace)
}

// exportTensors renames the state dict with rename, which may split one
// tensor into several (Hugging Face's q, k, v), and returns the names in
// the order of the model's parameters.
func (m *ViT) exportTensors(rename func(name string, t Tensor, c Config) ([]string, []Tensor)) ([]string, map[string]Tensor) {
	timm, st := m.stateDict()
	var names []string
	out := make(map[string]Tensor, len(st))
	for _, n := range timm {
		ns, ts := rename(n, st[n], m.Config)
		for i := range ns {
			names = append(names, ns[i])
			out[ns[i]] = ts[i]
		}
	}
	return names, out
}

// invert returns a map's inverse, leaving out the keys skip names (so that
// the values left are distinct: torchvision's old MLP names map to the
// same timm names as its new ones).
func invert(m map[string]string, skip func(k string) bool) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if _, dup := out[v]; !dup && !skip(k) {
			out[v] = k
		}
	}
	return out
}

var (
	timmToTV      = invert(tvTopLevel, func(k string) bool { return strings.Contains(k, "conv_last") })
	timmToTVBlock = invert(tvBlock, func(k string) bool { return strings.Contains(k, "linear_") })
	timmToTVStem  = invert(tvStem, func(string) bool { return false })
	timmToHF      = invert(hfTopLevel, func(string) bool { return false })
	timmToHFBlock = invert(hfBlock, func(string) bool { return false })
)

func toTorchvisionName(name string, t Tensor, c Config) ([]string, []Tensor) {
	if i, rest, ok := splitLayerIndex(name, "patch_embed.stem."); ok {
		return []string{fmt.Sprintf("conv_proj.conv_bn_relu_%d.%s", i, timmToTVStem[rest])}, []Tensor{t}
	}
	if c.ConvStem() && strings.HasPrefix(name, "patch_embed.proj.") {
		return []string{"conv_proj.conv_last." + strings.TrimPrefix(name, "patch_embed.proj.")}, []Tensor{t}
	}
	if n, ok := timmToTV[name]; ok {
		return []string{n}, []Tensor{t}
	}
	i, rest, _ := splitLayerIndex(name, "blocks.")
	return []string{fmt.Sprintf("encoder.layers.encoder_layer_%d.%s", i, timmToTVBlock[rest])}, []Tensor{t}
}

func toHFName(name string, t Tensor, c Config) ([]string, []Tensor) {
	if n, ok := timmToHF[name]; ok {
		if !strings.HasPrefix(n, "classifier.") { // the head is outside "vit."
			n = "vit." + n
		}
		return []string{n}, []Tensor{t}
	}
	i, rest, _ := splitLayerIndex(name, "blocks.")
	prefix := fmt.Sprintf("vit.encoder.layer.%d.", i)
	if kind, ok := strings.CutPrefix(rest, "attn.qkv."); ok {
		// (3D, …) → query, key, value (D, …) each.
		per := len(t.Data) / 3
		var names []string
		var parts []Tensor
		for j, p := range []string{"query", "key", "value"} {
			shape := append([]int{c.Dim}, t.Shape[1:]...)
			names = append(names, prefix+"attention.attention."+p+"."+kind)
			parts = append(parts, Tensor{Shape: shape, Data: t.Data[j*per : (j+1)*per]})
		}
		return names, parts
	}
	return []string{prefix + timmToHFBlock[rest]}, []Tensor{t}
}

// exportHF writes a Hugging Face model directory.
func (m *ViT) exportHF(dir string, info ExportInfo, meta map[string]string) error {
	c := m.Config
	names, st := m.exportTensors(toHFName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrap(err, "model: export")
	}
	act := "gelu"
	if c.GELU == GELUTanh {
		act = "gelu_pytorch_tanh"
	}
	id2label, label2id := map[string]string{}, map[string]int{}
	for i := 0; i < c.NumClasses; i++ {
		name := fmt.Sprintf("LABEL_%d", i)
		if len(info.Classes) > 0 {
			name = info.Classes[i]
		}
		id2label[fmt.Sprint(i)], label2id[name] = name, i
	}
	config := map[string]any{
		"architectures": []string{"ViTForImageClassification"}, "model_type": "vit",
		"image_size": c.ImageSize, "patch_size": c.PatchSize, "num_channels": c.Channels,
		"hidden_size": c.Dim, "num_hidden_layers": c.Depth, "num_attention_heads": c.Heads,
		"intermediate_size": c.MLPDim, "hidden_act": act, "layer_norm_eps": c.LayerNormEps(),
		"qkv_bias": !c.NoQKVBias, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
		"id2label": id2label, "label2id": label2id,
	}
	processor := hfProcessorFor(info.Transform, c)
	meta[MetaFormat], meta[MetaConfig] = "pt", c.marshal()
	if err := writeSafetensors(filepath.Join(dir, "model.safetensors"), names, st, "F32", meta); err != nil {
		return err
	}
	for name, v := range map[string]any{hfConfigName: config, hfProcessorName: processor} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return errors.Wrap(err, "model: export")
		}
		if err := writeFileAtomic(filepath.Join(dir, name), append(b, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic writes a small file through a temporary file and a
// rename, so that a failure never leaves half a file.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return errors.Wrap(err, "model: write")
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return errors.Wrapf(err, "model: write %s", path)
	}
	return nil
}

// ExportFile reads weights as LoadClassifier does (heads for plain weights
// without a config, 0 for width/64) and exports them with Export, with
// their class names and the normalisation of their preprocessing.
func ExportFile(src, dst, naming string, heads int) error {
	f, err := ReadFile(src)
	if err != nil {
		return err
	}
	f.Heads = heads
	m, err := f.NewModel(G.NewGraph())
	if err != nil {
		return err
	}
	classes, _, err := f.Classes(m.Config.NumClasses)
	if err != nil {
		return err
	}
	tr, _, err := f.Transform(m.Config)
	if err != nil {
		return err
	}
	return m.Export(dst, naming, ExportInfo{Classes: classes, Transform: tr})
}

// jsonString is v in JSON, for values that cannot fail to marshal (names,
// numbers).
func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// hfProcessorFor is the Hugging Face preprocessor_config.json closest to t:
// the same resize, crop, filter and normalisation for the evaluation
// transforms; for the training pipeline (a centred square, area or linear
// resampling, which Hugging Face's processors do not have) a bilinear
// resize to the input size with its normalisation.
func hfProcessorFor(t preprocess.Transform, c Config) map[string]any {
	norm := t.Norm
	if len(norm.Mean) == 0 {
		norm = preprocess.Identity(c.Channels)
	}
	p := map[string]any{
		"image_processor_type": "ViTImageProcessor", "do_resize": true,
		"size": map[string]int{"height": c.ImageSize, "width": c.ImageSize}, "resample": int(preprocess.Bilinear),
		"do_rescale": true, "rescale_factor": 1.0 / 255, "do_normalize": true,
		"image_mean": norm.Mean, "image_std": norm.Std,
	}
	if t.Resize == 0 {
		return p
	}
	p["resample"] = int(t.Filter)
	if !t.ResizeExact {
		p["size"] = map[string]int{"shortest_edge": t.Resize}
	}
	if t.Crop > 0 {
		p["do_center_crop"], p["crop_size"] = true, map[string]int{"height": t.Crop, "width": t.Crop}
	}
	return p
}
