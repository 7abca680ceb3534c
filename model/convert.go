package model

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// Weight-naming conventions recognised by toTimmNames.
const (
	namingTimm        = "timm"
	namingTorchvision = "torchvision"
	namingHuggingFace = "huggingface"
)

// tvTopLevel maps torchvision's non-block names to timm's.
var tvTopLevel = map[string]string{
	"class_token":           "cls_token",
	"encoder.pos_embedding": "pos_embed",
	"conv_proj.weight":      "patch_embed.proj.weight",
	"conv_proj.bias":        "patch_embed.proj.bias",
	// A conv stem's last 1×1 convolution (conv_stem_configs); its
	// convolutions are tvStem's.
	"conv_proj.conv_last.weight": "patch_embed.proj.weight",
	"conv_proj.conv_last.bias":   "patch_embed.proj.bias",
	"encoder.ln.weight":          "norm.weight",
	"encoder.ln.bias":            "norm.bias",
	"heads.head.weight":          "head.weight",
	"heads.head.bias":            "head.bias",
}

// tvStem maps the part of a torchvision conv-stem name after
// "conv_proj.conv_bn_relu_{i}." (Conv2dNormActivation: 0 the convolution,
// 1 the norm) to the part after "patch_embed.stem.{i}.".
var tvStem = map[string]string{
	"0.weight": "conv.weight",
	"1.weight": "norm.weight",
	"1.bias":   "norm.bias",
}

// tvBlock maps the part of a torchvision encoder-layer name after
// "encoder.layers.encoder_layer_{i}." to the part after "blocks.{i}.".
// mlp.linear_{1,2} are the names torchvision used before version 0.13.
var tvBlock = map[string]string{
	"ln_1.weight":                    "norm1.weight",
	"ln_1.bias":                      "norm1.bias",
	"self_attention.in_proj_weight":  "attn.qkv.weight",
	"self_attention.in_proj_bias":    "attn.qkv.bias",
	"self_attention.out_proj.weight": "attn.proj.weight",
	"self_attention.out_proj.bias":   "attn.proj.bias",
	"ln_2.weight":                    "norm2.weight",
	"ln_2.bias":                      "norm2.bias",
	"mlp.0.weight":                   "mlp.fc1.weight",
	"mlp.0.bias":                     "mlp.fc1.bias",
	"mlp.3.weight":                   "mlp.fc2.weight",
	"mlp.3.bias":                     "mlp.fc2.bias",
	"mlp.linear_1.weight":            "mlp.fc1.weight",
	"mlp.linear_1.bias":              "mlp.fc1.bias",
	"mlp.linear_2.weight":            "mlp.fc2.weight",
	"mlp.linear_2.bias":              "mlp.fc2.bias",
}

// hfTopLevel maps Hugging Face names (with any leading "vit." removed) to
// timm's.
var hfTopLevel = map[string]string{
	"embeddings.cls_token":                          "cls_token",
	"embeddings.position_embeddings":                "pos_embed",
	"embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
	"embeddings.patch_embeddings.projection.bias":   "patch_embed.proj.bias",
	"layernorm.weight":                              "norm.weight",
	"layernorm.bias":                                "norm.bias",
	"classifier.weight":                             "head.weight",
	"classifier.bias":                               "head.bias",
}

// hfBlock maps the part of a Hugging Face layer name after
// "encoder.layer.{i}." to the part after "blocks.{i}.". The separate
// query/key/value projections are handled apart (see hfQKV).
var hfBlock = map[string]string{
	"layernorm_before.weight":       "norm1.weight",
	"layernorm_before.bias":         "norm1.bias",
	"attention.output.dense.weight": "attn.proj.weight",
	"attention.output.dense.bias":   "attn.proj.bias",
	"layernorm_after.weight":        "norm2.weight",
	"layernorm_after.bias":          "norm2.bias",
	"intermediate.dense.weight":     "mlp.fc1.weight",
	"intermediate.dense.bias":       "mlp.fc1.bias",
	"output.dense.weight":           "mlp.fc2.weight",
	"output.dense.bias":             "mlp.fc2.bias",
}

// hfQKV gives, for a Hugging Face q/k/v suffix, its position in the packed
// qkv tensor (q, k, v order, as timm and torchvision pack them) and whether
// it is the weight (false) or the bias (true).
var hfQKV = map[string]struct {
	pos  int
	bias bool
}{
	"attention.attention.query.weight": {0, false},
	"attention.attention.key.weight":   {1, false},
	"attention.attention.value.weight": {2, false},
	"attention.attention.query.bias":   {0, true},
	"attention.attention.key.bias":     {1, true},
	"attention.attention.value.bias":   {2, true},
}

// isTorchvisionName reports whether name is specific to torchvision's ViT.
func isTorchvisionName(name string) bool {
	if _, ok := tvTopLevel[name]; ok {
		return true
	}
	return strings.HasPrefix(name, "encoder.layers.encoder_layer_") ||
		strings.HasPrefix(name, "conv_proj.") ||
		strings.HasPrefix(name, "heads.")
}

// isHuggingFaceName reports whether name is specific to Hugging Face's ViT
// (ViTForImageClassification, or ViTModel without the "vit." prefix).
func isHuggingFaceName(name string) bool {
	n := strings.TrimPrefix(name, "vit.")
	if _, ok := hfTopLevel[n]; ok {
		return true
	}
	return strings.HasPrefix(n, "embeddings.") ||
		strings.HasPrefix(n, "encoder.layer.") ||
		strings.HasPrefix(n, "pooler.") ||
		strings.HasPrefix(n, "layernorm.")
}

// splitLayerIndex splits "{prefix}{i}.{rest}" into i and rest. The index must be
// written canonically (decimal, no sign, no leading zeros).
func splitLayerIndex(name, prefix string) (int, string, bool) {
	if !strings.HasPrefix(name, prefix) {
		return 0, "", false
	}
	idx, rest, ok := strings.Cut(name[len(prefix):], ".")
	if !ok || idx == "" {
		return 0, "", false
	}
	for _, c := range idx {
		if c < '0' || c > '9' {
			return 0, "", false
		}
	}
	i, err := strconv.Atoi(idx)
	if err != nil || strconv.Itoa(i) != idx {
		return 0, "", false
	}
	return i, rest, true
}

// toTimmNames renames a state dict to timm's ViT naming and reports which
// convention it was in: "timm", "torchvision" or "huggingface" (detected from
// the names; a dict with neither torchvision- nor Hugging Face-specific names
// is taken to be timm). Hugging Face's separate query/key/value projections
// are concatenated, in q, k, v order along axis 0, into attn.qkv; its pooler
// weights are dropped. Names that belong to no known mapping are passed
// through unchanged, for the caller to report as unexpected. Tensors that are
// only renamed share their data with the input.
//
// It is an error for the names to mix torchvision and Hugging Face names, for
// two input names to map to the same timm name, or for query/key/value
// tensors that cannot be concatenated.
func toTimmNames(in map[string]Tensor) (map[string]Tensor, string, error) {
	names := make([]string, 0, len(in))
	for name := range in {
		names = append(names, name)
	}
	sort.Strings(names)

	var tvExample, hfExample string
	for _, name := range names {
		if tvExample == "" && isTorchvisionName(name) {
			tvExample = name
		}
		if hfExample == "" && isHuggingFaceName(name) {
			hfExample = name
		}
	}
	convention := namingTimm
	switch {
	case tvExample != "" && hfExample != "":
		return nil, "", errors.Errorf("model: tensor names mix torchvision (e.g. %q) and Hugging Face (e.g. %q) conventions", tvExample, hfExample)
	case tvExample != "":
		convention = namingTorchvision
	case hfExample != "":
		convention = namingHuggingFace
	}

	out := make(map[string]Tensor, len(in))
	from := make(map[string]string, len(in)) // timm name -> input name
	put := func(newName, oldName string, t Tensor) error {
		if prev, dup := from[newName]; dup {
			return errors.Errorf("model: tensors %q and %q both map to %q", prev, oldName, newName)
		}
		from[newName] = oldName
		out[newName] = t
		return nil
	}

	// Hugging Face q/k/v parts, per layer, [weight, bias] × [q, k, v].
	type qkvParts struct {
		names [2][3]string
		t     [2][3]Tensor
	}
	var qkv map[int]*qkvParts
	var qkvLayers []int

	for _, name := range names {
		t := in[name]
		newName := name
		switch convention {
		case namingTorchvision:
			if m, ok := tvTopLevel[name]; ok {
				newName = m
			} else if i, rest, ok := splitLayerIndex(name, "encoder.layers.encoder_layer_"); ok {
				if m, ok := tvBlock[rest]; ok {
					newName = fmt.Sprintf("blocks.%d.%s", i, m)
				}
			} else if i, rest, ok := splitLayerIndex(name, "conv_proj.conv_bn_relu_"); ok {
				if m, ok := tvStem[rest]; ok {
					newName = fmt.Sprintf("patch_embed.stem.%d.%s", i, m)
				}
			}
		case namingHuggingFace:
			n := strings.TrimPrefix(name, "vit.")
			if strings.HasPrefix(n, "pooler.") {
				continue // the pooler is not part of a timm ViT
			}
			if m, ok := hfTopLevel[n]; ok {
				newName = m
			} else if i, rest, ok := splitLayerIndex(n, "encoder.layer."); ok {
				if m, ok := hfBlock[rest]; ok {
					newName = fmt.Sprintf("blocks.%d.%s", i, m)
				} else if q, ok := hfQKV[rest]; ok {
					if qkv == nil {
						qkv = make(map[int]*qkvParts)
					}
					p := qkv[i]
					if p == nil {
						p = &qkvParts{}
						qkv[i] = p
						qkvLayers = append(qkvLayers, i)
					}
					wb := 0
					if q.bias {
						wb = 1
					}
					if prev := p.names[wb][q.pos]; prev != "" {
						return nil, "", errors.Errorf("model: tensors %q and %q are the same query/key/value part of layer %d", prev, name, i)
					}
					p.names[wb][q.pos] = name
					p.t[wb][q.pos] = t
					continue
				}
			}
		}
		if err := put(newName, name, t); err != nil {
			return nil, "", err
		}
	}

	sort.Ints(qkvLayers)
	for _, i := range qkvLayers {
		p := qkv[i]
		for wb, suffix := range [2]string{"weight", "bias"} {
			have := 0
			for _, n := range p.names[wb] {
				if n != "" {
					have++
				}
			}
			switch have {
			case 0:
				continue
			case 3:
				cat, err := concatAxis0(p.t[wb][:], p.names[wb][:])
				if err != nil {
					return nil, "", err
				}
				if err := put(fmt.Sprintf("blocks.%d.attn.qkv.%s", i, suffix), strings.Join(p.names[wb][:], "+"), cat); err != nil {
					return nil, "", err
				}
			default:
				// Incomplete: pass the parts through so they are reported
				// as unexpected (and attn.qkv as missing).
				for k, n := range p.names[wb] {
					if n != "" {
						if err := put(n, n, p.t[wb][k]); err != nil {
							return nil, "", err
						}
					}
				}
			}
		}
	}
	return out, convention, nil
}

// concatAxis0 concatenates tensors along their first axis. Their other
// dimensions must agree and each tensor's data must match its shape.
func concatAxis0(ts []Tensor, names []string) (Tensor, error) {
	if len(ts) == 0 {
		return Tensor{}, errors.New("model: nothing to concatenate")
	}
	rest := ts[0].Shape
	if len(rest) == 0 {
		return Tensor{}, errors.Errorf("model: cannot concatenate scalar tensor %q", names[0])
	}
	rest = rest[1:]
	rows, total := 0, 0
	for k, t := range ts {
		if len(t.Shape) != len(rest)+1 || !sameShape(t.Shape[1:], rest) {
			return Tensor{}, errors.Errorf("model: cannot concatenate %q (shape %v) with %q (shape %v): expected shape (*, %v)", names[k], t.Shape, names[0], ts[0].Shape, rest)
		}
		n, err := stNumElements(t.Shape)
		if err != nil || n != len(t.Data) {
			return Tensor{}, errors.Errorf("model: tensor %q has shape %v but %d values", names[k], t.Shape, len(t.Data))
		}
		rows += t.Shape[0]
		total += n
	}
	data := make([]float64, 0, total)
	for _, t := range ts {
		data = append(data, t.Data...)
	}
	shape := append([]int{rows}, rest...)
	return Tensor{Shape: shape, Data: data}, nil
}

func sameShape(a, b []int) bool { return slices.Equal(a, b) }

// checkTensors compares the tensors found against the expected names and
// shapes. It returns nil if they agree exactly, and otherwise one error that
// lists, each group sorted by name, every missing tensor (with the expected
// shape), every unexpected one (with its shape) and every one whose shape
// differs (expected and found).
func checkTensors(want map[string][]int, got map[string]Tensor) error {
	var missing, unexpected, misShaped []string
	for name, shape := range want {
		t, ok := got[name]
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("missing %s: expected shape %v", name, shape))
		case !sameShape(t.Shape, shape):
			misShaped = append(misShaped, fmt.Sprintf("wrong shape %s: expected %v, found %v", name, shape, t.Shape))
		}
	}
	for name, t := range got {
		if _, ok := want[name]; !ok {
			unexpected = append(unexpected, fmt.Sprintf("unexpected %s: shape %v", name, t.Shape))
		}
	}
	if len(missing)+len(unexpected)+len(misShaped) == 0 {
		return nil
	}
	sort.Strings(missing)
	sort.Strings(unexpected)
	sort.Strings(misShaped)
	var b strings.Builder
	fmt.Fprintf(&b, "model: weights do not match the model: %d missing, %d unexpected, %d with the wrong shape",
		len(missing), len(unexpected), len(misShaped))
	for _, group := range [][]string{missing, unexpected, misShaped} {
		for _, line := range group {
			b.WriteString("\n  ")
			b.WriteString(line)
		}
	}
	return errors.New(b.String())
}
