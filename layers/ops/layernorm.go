package ops

import (
	"fmt"
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/ops/vec"
)

// LayerNorm normalises x (..., D) over its last axis and applies the
// learnable scale gamma (D) and shift beta (D):
//
//	y = (x − mean) / sqrt(var + eps) · gamma + beta
//
// with the biased variance, as PyTorch's nn.LayerNorm. It is one fused op
// whose backward is analytic; in float32 the forward pass keeps each row's
// mean and 1/σ for the backward pass (float64 recomputes them).
func LayerNorm(x, gamma, beta *G.Node, eps float64) (*G.Node, error) {
	r := x.Dims()
	if r < 1 {
		return nil, errors.Errorf("ops.LayerNorm: want a tensor, got shape %v", x.Shape())
	}
	return G.ApplyOp(layerNormOp{newLN("LayerNorm", r, eps, new(lnStats), r, 1, 1, r)}, x, gamma, beta)
}

type layerNormOp struct{ lnBase }

// lnBase is what LayerNorm and its backward ops are made of: base, the
// epsilon and the statistics the forward pass keeps for the backward ones.
type lnBase struct {
	base
	eps float64
	st  *lnStats
}

// newLN returns the lnBase of an op named kind(r<rank>,eps=<eps>).
func newLN(kind string, rank int, eps float64, st *lnStats, ranks ...int) lnBase {
	return lnBase{newBase(fmt.Sprintf("%s(r%d,eps=%g)", kind, rank, eps), ranks...), eps, st}
}

// lnRows runs a row kernel of LayerNorm, k(st, x, gamma, in[2], out, eps),
// into an output shaped like x.
func lnRows[T float](op lnBase, in []*tensor.Dense, k func(st *lnStats, x, gamma, z, out []T, eps float64)) (G.Value, error) {
	y := output[T](op.base, in[0].Shape())
	k(op.st, sl[T](in[0]), sl[T](in[1]), sl[T](in[2]), sl[T](y), op.eps)
	return y, nil
}

// lnStats holds the row statistics of a float32 forward pass for the
// backward ops of the same LayerNorm (the float64 kernels ignore it and
// recompute them). The backward ops always run after the forward one in the
// same run (they need its output's gradient), so the statistics are current.
type lnStats struct {
	mean, rstd []float32
}

// rows returns the statistics slices for n rows; the forward pass resizes
// them (make), the backward passes find them sized.
func (st *lnStats) rows(n int) (mean, rstd []float32) {
	if st == nil {
		return nil, nil
	}
	if cap(st.mean) < n {
		st.mean, st.rstd = make([]float32, n), make([]float32, n)
	}
	st.mean, st.rstd = st.mean[:n], st.rstd[:n]
	return st.mean, st.rstd
}

// stats returns the kept statistics of row r, or computes them when there
// are none (an op built without them).
func (st *lnStats) stats(row []float32, r int, eps float64) (mean, rstd float32) {
	if st != nil && r < len(st.mean) {
		return st.mean[r], st.rstd[r]
	}
	return vec.MeanRStd(row, float32(eps))
}

func (op layerNormOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, lnShape) }

// lnShape is LayerNorm's shape rule.
func lnShape(s []tensor.Shape) (tensor.Shape, error) {
	d := s[0][len(s[0])-1]
	for i, name := range []string{"scale", "shift"} {
		if p := s[i+1]; p.Dims() != 1 || p[0] != d {
			return nil, errors.Errorf("ops.LayerNorm: %s has shape %v, want (%d) for input %v", name, p, d, s[0])
		}
	}
	return s[0].Clone(), nil
}

func (op layerNormOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, lnDo[float32], lnDo[float64])
}

func lnDo[T float](op layerNormOp, in []*tensor.Dense) (G.Value, error) {
	return lnRows(op.lnBase, in, layerNormFwd[T])
}

// rowStats returns the mean and 1/σ of one row, accumulated in float64.
func rowStats[T float](row []T, eps float64) (mean, rstd float64) {
	var s float64
	for _, v := range row {
		s += float64(v)
	}
	mean = s / float64(len(row))
	var q float64
	for _, v := range row {
		d := float64(v) - mean
		q += d * d
	}
	return mean, 1 / math.Sqrt(q/float64(len(row))+eps)
}

func layerNormFwd[T float](st *lnStats, x, gamma, beta, y []T, eps float64) {
	d := len(gamma)
	if x32, ok := any(x).([]float32); ok {
		g32, b32, y32 := any(gamma).([]float32), any(beta).([]float32), any(y).([]float32)
		means, rstds := st.rows(len(x) / d)
		parallelFor(len(x)/d, d*4, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				row := x32[r*d : (r+1)*d]
				m, s := vec.MeanRStd(row, float32(eps))
				if means != nil {
					means[r], rstds[r] = m, s
				}
				vec.NormAffine(y32[r*d:(r+1)*d], row, g32, b32, m, s)
			}
		})
		return
	}
	parallelFor(len(x)/d, d*8, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row, out := x[r*d:(r+1)*d], y[r*d:(r+1)*d]
			mean, rstd := rowStats(row, eps)
			m, s := T(mean), T(rstd)
			for j, v := range row {
				out[j] = (v-m)*s*gamma[j] + beta[j]
			}
		}
	})
}

func (op layerNormOp) DiffWRT(n int) []bool { return allDiff(n) }

func (op layerNormOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	x, gamma := inputs[0], inputs[1]
	r := x.Dims()
	gx := lnGradX{newLN("LayerNormGradX", r, op.eps, op.st, r, 1, r, r)}
	dx, err := gradNode("ops.LayerNorm backward (input)", gx, x, gamma, grad)
	if err != nil {
		return nil, err
	}
	gg := lnGradGamma{newLN("LayerNormGradScale", r, op.eps, op.st, r, r, 1)}
	dg, err := gradNode("ops.LayerNorm backward (scale)", gg, x, grad)
	if err != nil {
		return nil, err
	}
	return withRowSum("ops.LayerNorm backward (shift)", G.Nodes{dx, dg}, grad)
}

// lnGradX: (x, gamma, dy) → dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·gamma.
type lnGradX struct{ lnBase }

func (op lnGradX) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, likeFirst) }

func (op lnGradX) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, lnGradXDo[float32], lnGradXDo[float64])
}

func lnGradXDo[T float](op lnGradX, in []*tensor.Dense) (G.Value, error) {
	return lnRows(op.lnBase, in, layerNormBwdX[T])
}

func layerNormBwdX[T float](st *lnStats, x, gamma, dy, dx []T, eps float64) {
	d := len(gamma)
	if x32, ok := any(x).([]float32); ok {
		g32, dy32, dx32 := any(gamma).([]float32), any(dy).([]float32), any(dx).([]float32)
		parallelFor(len(x)/d, d*6, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				row, gr := x32[r*d:(r+1)*d], dy32[r*d:(r+1)*d]
				m, s := st.stats(row, r, eps)
				sg, sgx := vec.LNBackwardSums(row, gr, g32, m)
				// dx = s·g − s·mean(g) − x̂·s·mean(g·x̂), g = dy·γ, x̂ = (x−m)·s.
				a, b := sg/float32(d), s*sgx/float32(d)
				vec.LNBackwardOut(dx32[r*d:(r+1)*d], row, gr, g32, m, s, -s*a, -s*s*b)
			}
		})
		return
	}
	parallelFor(len(x)/d, d*12, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row, gr, out := x[r*d:(r+1)*d], dy[r*d:(r+1)*d], dx[r*d:(r+1)*d]
			mean, rstd := rowStats(row, eps)
			var sg, sgx float64
			for j, v := range row {
				g := float64(gr[j]) * float64(gamma[j])
				sg += g
				sgx += g * (float64(v) - mean) * rstd
			}
			sg /= float64(d)
			sgx /= float64(d)
			for j, v := range row {
				xh := (float64(v) - mean) * rstd
				g := float64(gr[j]) * float64(gamma[j])
				out[j] = T(rstd * (g - sg - xh*sgx))
			}
		}
	})
}

// lnGradGamma: (x, dy) → Σ_rows dy·x̂.
type lnGradGamma struct{ lnBase }

func (op lnGradGamma) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, lastAxis) }

func (op lnGradGamma) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, lnGradGammaDo[float32], lnGradGammaDo[float64])
}

func lnGradGammaDo[T float](op lnGradGamma, in []*tensor.Dense) (G.Value, error) {
	d := in[0].Shape()[in[0].Dims()-1]
	dg := zeroed[T](op.base, tensor.Shape{d})
	layerNormBwdGamma(op.st, op.sums(), sl[T](in[0]), sl[T](in[1]), sl[T](dg), op.eps)
	return dg, nil
}

func layerNormBwdGamma[T float](st *lnStats, buf *blockSums, x, dy, dg []T, eps float64) {
	d := len(dg)
	if x32, ok := any(x).([]float32); ok {
		dy32, dg32 := any(dy).([]float32), any(dg).([]float32)
		rows := len(x) / d
		total := rowBlockSums(buf, rows, d, 4*d, func(acc []float32, r int) {
			row := x32[r*d : (r+1)*d]
			m, s := st.stats(row, r, eps)
			vec.AccXhatDy(acc, row, dy32[r*d:(r+1)*d], m, s)
		})
		for j := range dg32 {
			dg32[j] = float32(total[j])
		}
		return
	}
	acc := make([]float64, d)
	for r := 0; r+d <= len(x); r += d {
		row, gr := x[r:r+d], dy[r:r+d]
		mean, rstd := rowStats(row, eps)
		for j, v := range row {
			acc[j] += float64(gr[j]) * (float64(v) - mean) * rstd
		}
	}
	for j := range dg {
		dg[j] = T(acc[j])
	}
}
