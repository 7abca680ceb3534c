package ops

import (
	"fmt"
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers/ops/vec"
)

// Multi-head self-attention in two differentiable ops that read the fused
// qkv projection (B, N, 3·D) in place, in the PyTorch/timm layout: per token
// the first D features are q, then D of k, then D of v, and head h owns
// features [h·Dh, (h+1)·Dh) of each, Dh = D/H. Every matrix product is one
// strided GEMM per (batch, head) pair with leading dimension 3·D, so q, k
// and v are never transposed or copied, and the heads are merged back into
// the feature axis by the output's leading dimension D.
//
//	P := AttentionProbs(qkv, H)    // (B, H, N, N) = softmax(Q·Kᵀ/√Dh) per row
//	O := AttentionApply(P, qkv, H) // (B, N, D),   O[b,:,h] = P[b,h]·V[b,h]
//
// Gorgonia adds the two qkv gradients (q/k slots from the first op, v slots
// from the second) by itself.

// attnBase is what every attention op is made of: base and the number of
// heads, its only parameter.
type attnBase struct {
	base
	heads int
}

// newAttn returns the attnBase of an op named kind(heads=H), as newBase.
func newAttn(kind string, heads int, ranks ...int) attnBase {
	return attnBase{newBase(fmt.Sprintf("%s(heads=%d)", kind, heads), ranks...), heads}
}

// dims validates a qkv shape for the op's number of heads and returns B, N
// and D.
func (a attnBase) dims(qkv tensor.Shape) (b, n, d int, err error) {
	op, heads := "ops."+a.name, a.heads
	if heads <= 0 {
		return 0, 0, 0, errors.Errorf("%s: heads must be positive, got %d", op, heads)
	}
	if qkv.Dims() != 3 {
		return 0, 0, 0, errors.Errorf("%s: qkv must be (B, N, 3·D), got shape %v", op, qkv)
	}
	b, n, f := qkv[0], qkv[1], qkv[2]
	if f%3 != 0 || f == 0 {
		return 0, 0, 0, errors.Errorf("%s: qkv last axis must be 3·D with D > 0, got %d (shape %v)", op, f, qkv)
	}
	d = f / 3
	if d%heads != 0 {
		return 0, 0, 0, errors.Errorf("%s: D = %d (qkv shape %v) is not divisible by %d heads", op, d, qkv, heads)
	}
	return b, n, d, nil
}

// checkProbs checks that p has the shape (B, H, N, N) that qkv implies.
func (a attnBase) checkProbs(p, qkv tensor.Shape) error {
	b, n, _, err := a.dims(qkv)
	if err != nil {
		return err
	}
	if want := (tensor.Shape{b, a.heads, n, n}); !p.Eq(want) {
		return errors.Errorf("ops.%s: probabilities must have shape %v for qkv %v and %d heads, got %v", a.name, want, qkv, a.heads, p)
	}
	return nil
}

// checkOut checks that o has the shape (B, N, D) that qkv implies.
func (a attnBase) checkOut(o, qkv tensor.Shape) error {
	b, n, d, err := a.dims(qkv)
	if err != nil {
		return err
	}
	if want := (tensor.Shape{b, n, d}); !o.Eq(want) {
		return errors.Errorf("ops.%s: output gradient must have shape %v for qkv %v, got %v", a.name, want, qkv, o)
	}
	return nil
}

// AttentionProbs returns P (B, H, N, N), P[b,h] = softmax over the last axis
// of Q_bh·K_bhᵀ/√Dh, for the fused projection qkv (B, N, 3·D). The softmax
// is stable per row (each row subtracts its own maximum).
func AttentionProbs(qkv *G.Node, heads int) (*G.Node, error) {
	op := attnProbsOp{newAttn("AttentionProbs", heads, 3, 4)}
	if _, _, _, err := op.dims(qkv.Shape()); err != nil {
		return nil, err
	}
	return G.ApplyOp(op, qkv)
}

// AttentionApply returns O (B, N, D), O[b, :, h·Dh:(h+1)·Dh] = P[b,h]·V_bh,
// for probabilities p (B, H, N, N) and the fused projection qkv (B, N, 3·D).
func AttentionApply(p, qkv *G.Node, heads int) (*G.Node, error) {
	op := attnApplyOp{newAttn("AttentionApply", heads, 4, 3, 3), false}
	if err := op.checkProbs(p.Shape(), qkv.Shape()); err != nil {
		return nil, err
	}
	return G.ApplyOp(op, p, qkv)
}

// Attention returns both P = AttentionProbs(qkv, heads) and O, computed as
// by AttentionApply(P, qkv, heads), but with one fused backward pass: O's
// gradient goes to qkv in a single op that, for each (batch, head) pair,
// forms dP = dO·Vᵀ, the softmax backward dS and dQ, dK, dV while they are
// in cache, writing every slot of dqkv once (the two-op form writes two
// half-empty (B, N, 3·D) gradients that Gorgonia then adds). P itself is a
// graph node, readable after a run; a loss that also uses P directly gets
// that part of its gradient through AttentionProbs' own backward. Use the
// two-op form when something (such as dropout) stands between P and O.
func Attention(qkv *G.Node, heads int) (probs, out *G.Node, err error) {
	if probs, err = AttentionProbs(qkv, heads); err != nil {
		return nil, nil, err
	}
	op := attnApplyOp{attnBase{newBase(fmt.Sprintf("AttentionApply(heads=%d,fused)", heads), 4, 3, 3), heads}, true}
	out, err = G.ApplyOp(op, probs, qkv)
	return probs, out, err
}

// ---------------------------------------------------------------- probs

// attnProbsOp: qkv (B,N,3D) → P (B,H,N,N).
type attnProbsOp struct{ attnBase }

func (op attnProbsOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return infer(ds, op.outShape)
}

func (op attnProbsOp) outShape(s []tensor.Shape) (tensor.Shape, error) {
	b, n, _, err := op.dims(s[0])
	if err != nil {
		return nil, err
	}
	return tensor.Shape{b, op.heads, n, n}, nil
}

func (op attnProbsOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, attnProbsDo[float32], attnProbsDo[float64])
}

func attnProbsDo[T float](op attnProbsOp, in []*tensor.Dense) (G.Value, error) {
	qkv := in[0]
	b, n, d, err := op.dims(qkv.Shape())
	if err != nil {
		return nil, err
	}
	p := output[T](op.base, tensor.Shape{b, op.heads, n, n})
	attnProbsFwd(sl[T](qkv), sl[T](p), b, n, d, op.heads)
	return p, nil
}

// attnProbsFwd writes softmax(Q·Kᵀ·scale) of every (b,h) pair into p.
func attnProbsFwd[T float](qkv, p []T, b, n, d, heads int) {
	if tiledAttention[T]() {
		attnProbsTiled(any(qkv).([]float32), any(p).([]float32), b, n, d, heads)
		return
	}
	dh, ld, nn := d/heads, 3*d, n*n
	scale := T(1 / math.Sqrt(float64(dh)))
	parallelFor(b*heads, nn*dh, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			off := (i/heads)*n*ld + (i%heads)*dh // q of (b,h); k is at off+d
			s := p[i*nn : (i+1)*nn]
			gemm(false, true, n, n, dh, scale, qkv[off:], ld, qkv[off+d:], ld, 0, s, n)
			softmaxRows(s, n)
		}
	})
}

// softmaxRows replaces each row of n values of x by its softmax.
func softmaxRows[T float](x []T, n int) {
	if x32, ok := any(x).([]float32); ok {
		vec.SoftmaxRows(x32, n)
		return
	}
	for r := 0; r < len(x); r += n {
		softmaxRow(x[r : r+n])
	}
}

// softmaxBackwardRows sets, row by row (n values each), ds = p·(g − Σp·g):
// the gradient through a softmax whose output is p and output gradient g.
func softmaxBackwardRows[T float](ds, p, g []T, n int) {
	if p32, ok := any(p).([]float32); ok {
		vec.SoftmaxBackwardRows(any(ds).([]float32), p32, any(g).([]float32), n)
		return
	}
	for r := 0; r < len(p); r += n {
		pr, gr := p[r:r+n], g[r:r+n]
		var dot T
		for j, v := range pr {
			dot += v * gr[j]
		}
		for j, v := range pr {
			ds[r+j] = v * (gr[j] - dot)
		}
	}
}

// softmaxRow replaces x by softmax(x), subtracting the row's own maximum.
func softmaxRow[T float](x []T) {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	var sum T
	for j, v := range x {
		e := T(math.Exp(float64(v - m)))
		x[j] = e
		sum += e
	}
	inv := 1 / sum
	for j := range x {
		x[j] *= inv
	}
}

func (op attnProbsOp) DiffWRT(n int) []bool { return allDiff(n) }

func (op attnProbsOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	g := attnProbsGrad{newAttn("AttentionProbsGrad", op.heads, 3, 4, 4, 3)}
	return oneGrad("ops.AttentionProbs backward", g, inputs[0], output, grad)
}

// attnProbsGrad: qkv (B,N,3D), P (B,H,N,N), dP (B,H,N,N) → dqkv (B,N,3D)
// with dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = scale·dS·K, dK = scale·dSᵀ·Q in
// the q and k slots and zeros in the v slots.
type attnProbsGrad struct{ attnBase }

func (op attnProbsGrad) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return infer(ds, op.outShape)
}

func (op attnProbsGrad) outShape(s []tensor.Shape) (tensor.Shape, error) {
	for _, i := range []int{1, 2} {
		if err := op.checkProbs(s[i], s[0]); err != nil {
			return nil, err
		}
	}
	return s[0].Clone(), nil
}

func (op attnProbsGrad) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, attnProbsGradDo[float32], attnProbsGradDo[float64])
}

func attnProbsGradDo[T float](op attnProbsGrad, in []*tensor.Dense) (G.Value, error) {
	qkv, p, dp := in[0], in[1], in[2]
	b, n, d, err := op.dims(qkv.Shape())
	if err != nil {
		return nil, err
	}
	dqkv := zeroed[T](op.base, qkv.Shape())
	attnProbsBwd(sl[T](qkv), sl[T](p), sl[T](dp), sl[T](dqkv), b, n, d, op.heads)
	return dqkv, nil
}

// qkGrad writes dQ = scale·dS·K and dK = scale·dSᵀ·Q of one (b,h) pair
// into dqkv, for the pair's q at offset q of qkv (k at q+d).
func qkGrad[T float](ds, qkv, dqkv []T, q, n, d, dh int, scale T) {
	ld := 3 * d
	gemm(false, false, n, dh, n, scale, ds, n, qkv[q+d:], ld, 0, dqkv[q:], ld)
	gemm(true, false, n, dh, n, scale, ds, n, qkv[q:], ld, 0, dqkv[q+d:], ld)
}

func attnProbsBwd[T float](qkv, p, dp, dqkv []T, b, n, d, heads int) {
	dh, ld, nn := d/heads, 3*d, n*n
	scale := T(1 / math.Sqrt(float64(dh)))
	parallelFor(b*heads, 2*nn*dh, func(lo, hi int) {
		ds := make([]T, nn) // dS of one (b,h) pair, reused
		for i := lo; i < hi; i++ {
			ps, dps := p[i*nn:(i+1)*nn], dp[i*nn:(i+1)*nn]
			softmaxBackwardRows(ds, ps, dps, n)
			qkGrad(ds, qkv, dqkv, (i/heads)*n*ld+(i%heads)*dh, n, d, dh, scale)
		}
	})
}

// ---------------------------------------------------------------- apply

// attnApplyOp: P (B,H,N,N), qkv (B,N,3D) → O (B,N,D). When fused, P is
// the output of AttentionProbs(qkv) and the backward pass treats O as a
// function of qkv alone (see Attention).
type attnApplyOp struct {
	attnBase
	fused bool
}

func (op attnApplyOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return infer(ds, op.outShape)
}

func (op attnApplyOp) outShape(s []tensor.Shape) (tensor.Shape, error) {
	if err := op.checkProbs(s[0], s[1]); err != nil {
		return nil, err
	}
	return tensor.Shape{s[1][0], s[1][1], s[1][2] / 3}, nil
}

func (op attnApplyOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, attnApplyDo[float32], attnApplyDo[float64])
}

func attnApplyDo[T float](op attnApplyOp, in []*tensor.Dense) (G.Value, error) {
	p, qkv := in[0], in[1]
	b, n, d, err := op.dims(qkv.Shape())
	if err != nil {
		return nil, err
	}
	o := output[T](op.base, tensor.Shape{b, n, d})
	attnApplyFwd(sl[T](p), sl[T](qkv), sl[T](o), b, n, d, op.heads)
	return o, nil
}

// attnApplyFwd writes P[b,h]·V_bh into head h's columns of o (B,N,D).
func attnApplyFwd[T float](p, qkv, o []T, b, n, d, heads int) {
	if tiledAttention[T]() {
		attnApplyTiled(any(p).([]float32), any(qkv).([]float32), any(o).([]float32), b, n, d, heads)
		return
	}
	dh, ld, nn := d/heads, 3*d, n*n
	parallelFor(b*heads, nn*dh, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			bi, h := i/heads, i%heads
			v := bi*n*ld + 2*d + h*dh
			gemm(false, false, n, dh, n, 1, p[i*nn:], n, qkv[v:], ld, 0, o[bi*n*d+h*dh:], d)
		}
	})
}

func (op attnApplyOp) DiffWRT(n int) []bool {
	if op.fused {
		return []bool{false, true}
	}
	return allDiff(n)
}

func (op attnApplyOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	p, qkv := inputs[0], inputs[1]
	if op.fused {
		g := attnGrad{newAttn("AttentionGrad", op.heads, 3, 4, 3, 3)}
		dqkv, err := gradNode("ops.Attention backward", g, qkv, p, grad)
		if err != nil {
			return nil, err
		}
		return G.Nodes{nil, dqkv}, nil
	}
	gp := attnApplyGradP{newAttn("AttentionApplyGradP", op.heads, 3, 3, 4)}
	dp, err := gradNode("ops.AttentionApply backward (probabilities)", gp, grad, qkv)
	if err != nil {
		return nil, err
	}
	gv := attnApplyGradV{newAttn("AttentionApplyGradV", op.heads, 4, 3, 3)}
	dqkv, err := gradNode("ops.AttentionApply backward (qkv)", gv, p, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dp, dqkv}, nil
}

// attnApplyGradP: dO (B,N,D), qkv (B,N,3D) → dP (B,H,N,N), dP[b,h] = dO_bh·V_bhᵀ.
type attnApplyGradP struct{ attnBase }

func (op attnApplyGradP) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return infer(ds, op.outShape)
}

func (op attnApplyGradP) outShape(s []tensor.Shape) (tensor.Shape, error) {
	if err := op.checkOut(s[0], s[1]); err != nil {
		return nil, err
	}
	return tensor.Shape{s[1][0], op.heads, s[1][1], s[1][1]}, nil
}

func (op attnApplyGradP) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, attnApplyGradPDo[float32], attnApplyGradPDo[float64])
}

func attnApplyGradPDo[T float](op attnApplyGradP, in []*tensor.Dense) (G.Value, error) {
	do, qkv := in[0], in[1]
	b, n, d, err := op.dims(qkv.Shape())
	if err != nil {
		return nil, err
	}
	dp := output[T](op.base, tensor.Shape{b, op.heads, n, n})
	attnGradP(sl[T](do), sl[T](qkv), sl[T](dp), b, n, d, op.heads)
	return dp, nil
}

func attnGradP[T float](do, qkv, dp []T, b, n, d, heads int) {
	dh, ld, nn := d/heads, 3*d, n*n
	parallelFor(b*heads, nn*dh, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			bi, h := i/heads, i%heads
			v := bi*n*ld + 2*d + h*dh
			gemm(false, true, n, n, dh, 1, do[bi*n*d+h*dh:], d, qkv[v:], ld, 0, dp[i*nn:], n)
		}
	})
}

// attnApplyGradV: P (B,H,N,N), dO (B,N,D) → dqkv (B,N,3D) with
// dV_bh = P[b,h]ᵀ·dO_bh in the v slots and zeros in the q and k slots.
type attnApplyGradV struct{ attnBase }

func (op attnApplyGradV) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return infer(ds, op.outShape)
}

func (op attnApplyGradV) outShape(s []tensor.Shape) (tensor.Shape, error) {
	p, o := s[0], s[1]
	if o.Dims() != 3 {
		return nil, errors.Errorf("ops.%s: output gradient must be (B, N, D), got %v", op.name, o)
	}
	qkv := tensor.Shape{o[0], o[1], 3 * o[2]}
	if err := op.checkProbs(p, qkv); err != nil {
		return nil, err
	}
	return qkv, nil
}

func (op attnApplyGradV) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, attnApplyGradVDo[float32], attnApplyGradVDo[float64])
}

func attnApplyGradVDo[T float](op attnApplyGradV, in []*tensor.Dense) (G.Value, error) {
	p, do := in[0], in[1]
	s := do.Shape()
	b, n, d := s[0], s[1], s[2]
	dqkv := zeroed[T](op.base, tensor.Shape{b, n, 3 * d})
	attnGradV(sl[T](p), sl[T](do), sl[T](dqkv), b, n, d, op.heads)
	return dqkv, nil
}

func attnGradV[T float](p, do, dqkv []T, b, n, d, heads int) {
	dh, ld, nn := d/heads, 3*d, n*n
	parallelFor(b*heads, nn*dh, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			bi, h := i/heads, i%heads
			v := bi*n*ld + 2*d + h*dh
			gemm(true, false, n, dh, n, 1, p[i*nn:], n, do[bi*n*d+h*dh:], d, 0, dqkv[v:], ld)
		}
	})
}

// ---------------------------------------------------------------- fused backward

// attnGrad: qkv (B,N,3D), P (B,H,N,N), dO (B,N,D) → dqkv (B,N,3D), the whole
// gradient of O = softmax(Q·Kᵀ·scale)·V with respect to qkv.
type attnGrad struct{ attnBase }

func (op attnGrad) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, op.outShape) }

func (op attnGrad) outShape(s []tensor.Shape) (tensor.Shape, error) {
	if err := op.checkProbs(s[1], s[0]); err != nil {
		return nil, err
	}
	if err := op.checkOut(s[2], s[0]); err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op attnGrad) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, attnGradDo[float32], attnGradDo[float64])
}

func attnGradDo[T float](op attnGrad, in []*tensor.Dense) (G.Value, error) {
	qkv, p, do := in[0], in[1], in[2]
	b, n, d, err := op.dims(qkv.Shape())
	if err != nil {
		return nil, err
	}
	dqkv := output[T](op.base, qkv.Shape()) // every slot is written
	attnBwd(sl[T](qkv), sl[T](p), sl[T](do), sl[T](dqkv), b, n, d, op.heads)
	return dqkv, nil
}

// attnBwd computes, per (b,h) pair, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)),
// dQ = scale·dS·K, dK = scale·dSᵀ·Q and dV = Pᵀ·dO.
func attnBwd[T float](qkv, p, do, dqkv []T, b, n, d, heads int) {
	if tiledAttention[T]() {
		attnBwdTiled(any(qkv).([]float32), any(p).([]float32), any(do).([]float32), any(dqkv).([]float32), b, n, d, heads)
		return
	}
	dh, ld, nn := d/heads, 3*d, n*n
	scale := T(1 / math.Sqrt(float64(dh)))
	parallelFor(b*heads, 4*nn*dh, func(lo, hi int) {
		buf := make([]T, 2*nn) // dP and dS of one (b,h) pair, reused
		dp, ds := buf[:nn], buf[nn:]
		for i := lo; i < hi; i++ {
			bi, h := i/heads, i%heads
			q := bi*n*ld + h*dh // q of (b,h); k at q+d, v at q+2d
			o := bi*n*d + h*dh
			ps := p[i*nn : (i+1)*nn]
			gemm(false, true, n, n, dh, 1, do[o:], d, qkv[q+2*d:], ld, 0, dp, n)
			softmaxBackwardRows(ds, ps, dp, n)
			qkGrad(ds, qkv, dqkv, q, n, d, dh, scale)
			gemm(true, false, n, dh, n, 1, ps, n, do[o:], d, 0, dqkv[q+2*d:], ld)
		}
	})
}
