package optim

import (
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// clipEps is added to the norm before dividing, as in PyTorch.
const clipEps = 1e-6

// GlobalNorm returns sqrt(Σ g²) over every element of every gradient in
// vgs, accumulated in float64 in a fixed order (so it is deterministic).
// Gradients must be contiguous float32 or float64 *tensor.Dense values;
// their shapes are not checked. NaN and Inf propagate to the result.
// An empty vgs has norm 0.
func GlobalNorm(vgs []G.ValueGrad) (float64, error) {
	var sum float64
	for i := range vgs {
		g32, g64, err := gradData(vgs, i)
		if err != nil {
			return 0, err
		}
		for _, x := range g32 {
			f := float64(x)
			sum += f * f
		}
		for _, f := range g64 {
			sum += f * f
		}
	}
	return math.Sqrt(sum), nil
}

// ClipGlobalNorm scales every gradient in place by maxNorm/(norm+1e-6)
// when that factor is below 1, as torch.nn.utils.clip_grad_norm_ does
// (norm_type 2), and returns the norm from before clipping. The factor is
// below 1 exactly when norm > maxNorm − 1e-6, i.e. for norm > maxNorm up to
// PyTorch's 1e-6 margin. float32 gradients are multiplied by the factor
// rounded to float32.
//
// maxNorm must be positive and finite. A NaN or infinite norm is returned
// with a nil error and the gradients are left untouched; the caller decides
// whether to skip the step.
func ClipGlobalNorm(vgs []G.ValueGrad, maxNorm float64) (norm float64, err error) {
	if !(maxNorm > 0) || math.IsInf(maxNorm, 0) {
		return 0, errors.Errorf("optim: ClipGlobalNorm expected a positive finite maxNorm, found %v", maxNorm)
	}
	norm, err = GlobalNorm(vgs)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm, nil
	}
	scale := maxNorm / (norm + clipEps)
	if !(scale < 1) {
		return norm, nil
	}
	s32 := float32(scale)
	for i := range vgs {
		g32, g64, _ := gradData(vgs, i) // checked by GlobalNorm
		for j := range g32 {
			g32[j] *= s32
		}
		for j := range g64 {
			g64[j] *= scale
		}
	}
	return norm, nil
}

// gradData returns the data of vgs[i]'s gradient (exactly one slice is
// non-nil unless the tensor is empty).
func gradData(vgs []G.ValueGrad, i int) ([]float32, []float64, error) {
	vg := vgs[i]
	if vg == nil {
		return nil, nil, errors.Errorf("optim: value-grad %d expected a ValueGrad, found nil", i)
	}
	if n, ok := vg.(*G.Node); ok && n == nil {
		return nil, nil, errors.Errorf("optim: value-grad %d expected a ValueGrad, found a nil *G.Node", i)
	}
	gv, err := vg.Grad()
	if err != nil {
		return nil, nil, errors.Wrapf(err, "optim: value-grad %d (%s) expected a gradient, found an error", i, vgName(vg))
	}
	d, ok := gv.(*tensor.Dense)
	if !ok || d == nil {
		return nil, nil, errors.Errorf("optim: value-grad %d (%s) gradient expected a *tensor.Dense, found %T", i, vgName(vg), gv)
	}
	dt := d.Dtype()
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, nil, errors.Errorf("optim: value-grad %d (%s) gradient expected dtype float32 or float64, found %v", i, vgName(vg), dt)
	}
	if d.RequiresIterator() {
		return nil, nil, errors.Errorf("optim: value-grad %d (%s) gradient expected a contiguous tensor, found a strided view or masked tensor", i, vgName(vg))
	}
	n := d.Shape().TotalSize()
	if dt == tensor.Float32 {
		s := d.Float32s()
		if len(s) != n {
			return nil, nil, errors.Errorf("optim: value-grad %d (%s) gradient expected %d elements, found %d", i, vgName(vg), n, len(s))
		}
		return s, nil, nil
	}
	s := d.Float64s()
	if len(s) != n {
		return nil, nil, errors.Errorf("optim: value-grad %d (%s) gradient expected %d elements, found %d", i, vgName(vg), n, len(s))
	}
	return nil, s, nil
}

func vgName(vg G.ValueGrad) string {
	if n, ok := vg.(G.Namer); ok {
		return "\"" + n.Name() + "\""
	}
	return "unnamed"
}
