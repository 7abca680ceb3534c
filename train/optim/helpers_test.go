package optim

import (
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers"
	"github.com/vitgo/vit/model/vittest"
)

// testVG is a minimal G.ValueGrad whose gradient the test writes directly.
type testVG struct {
	v, g    *tensor.Dense
	gradErr error
}

func (t *testVG) Value() G.Value { return t.v }
func (t *testVG) Grad() (G.Value, error) {
	if t.gradErr != nil {
		return nil, t.gradErr
	}
	return t.g, nil
}

// newDense returns a tensor of dtype dt holding data (rounded to float32 for
// Float32).
func newDense(dt tensor.Dtype, shape []int, data []float64) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if data == nil {
		data = make([]float64, n)
	}
	if dt == tensor.Float32 {
		f := make([]float32, n)
		for i := range f {
			f[i] = float32(data[i])
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(f))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), data...)))
}

// param is a parameter node plus the test's ValueGrad for it.
type param struct {
	p  *layers.Param
	vg *testVG
}

func newParam(g *G.ExprGraph, name string, dt tensor.Dtype, shape []int, data []float64, decay bool) param {
	v := newDense(dt, shape, data)
	n := G.NewTensor(g, dt, len(shape), G.WithShape(shape...), G.WithValue(v), G.WithName(name))
	return param{
		p:  &layers.Param{Name: name, Node: n, Decay: decay},
		vg: &testVG{v: v, g: newDense(dt, shape, nil)},
	}
}

func paramsOf(ps []param) ([]*layers.Param, []G.ValueGrad) {
	var pp []*layers.Param
	var vgs []G.ValueGrad
	for _, p := range ps {
		pp = append(pp, p.p)
		vgs = append(vgs, p.vg)
	}
	return pp, vgs
}

// setData overwrites a tensor's data from float64 values.
func setData(t *testing.T, d *tensor.Dense, vals []float64) {
	t.Helper()
	switch x := d.Data().(type) {
	case []float64:
		if len(x) != len(vals) {
			t.Fatalf("setData: %d values for %d elements", len(vals), len(x))
		}
		copy(x, vals)
	case []float32:
		if len(x) != len(vals) {
			t.Fatalf("setData: %d values for %d elements", len(vals), len(x))
		}
		for i, v := range vals {
			x[i] = float32(v)
		}
	}
}

func wantErr(t *testing.T, err error, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error containing %q, got nil", contains)
	}
	if !strings.HasPrefix(err.Error(), "optim: ") {
		t.Errorf("error %q does not start with \"optim: \"", err)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Errorf("error %q does not contain %q", err, contains)
	}
}

type fixture struct {
	TorchVersion  string `json:"torch_version"`
	PythonVersion string `json:"python_version"`
	Config        struct {
		LR          float64 `json:"lr"`
		Beta1       float64 `json:"beta1"`
		Beta2       float64 `json:"beta2"`
		Eps         float64 `json:"eps"`
		WeightDecay float64 `json:"weight_decay"`
		Steps       int     `json:"steps"`
	} `json:"config"`
	AdamW []struct {
		Dtype string                 `json:"dtype"`
		Init  map[string][]float64   `json:"init"`
		Grads []map[string][]float64 `json:"grads"`
		After []map[string][]float64 `json:"after"`
	} `json:"adamw"`
	Clip []struct {
		Name    string               `json:"name"`
		Dtype   string               `json:"dtype"`
		MaxNorm float64              `json:"max_norm"`
		Grads   map[string][]float64 `json:"grads"`
		Shapes  map[string][]int     `json:"shapes"`
		Norm    float64              `json:"norm"`
		Clipped map[string][]float64 `json:"clipped"`
	} `json:"clip"`
}

func loadFixture(t *testing.T) *fixture {
	t.Helper()
	var f fixture
	vittest.ReadJSON(t, "testdata/adamw_fixture.json", &f)
	if len(f.AdamW) != 2 || len(f.Clip) == 0 || f.Config.Steps != 5 {
		t.Fatalf("fixture: unexpected layout (%d adamw cases, %d clip cases, %d steps)", len(f.AdamW), len(f.Clip), f.Config.Steps)
	}
	return &f
}

func dtypeOf(t *testing.T, s string) tensor.Dtype {
	t.Helper()
	switch s {
	case "float64":
		return tensor.Float64
	case "float32":
		return tensor.Float32
	}
	t.Fatalf("fixture: unknown dtype %q", s)
	return tensor.Dtype{}
}
