package ops

import (
	"fmt"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TokenEmbed prepends the class token and adds the positional embedding:
// x (B, N, D) patch embeddings, cls (1, 1, D), pos (1, N+1, D) →
// (B, N+1, D) with row 0 = cls + pos[0] and row 1+t = x[t] + pos[1+t].
// Nothing is broadcast into a full-size copy; the backward sums over the batch.
func TokenEmbed(x, cls, pos *G.Node) (*G.Node, error) {
	return G.ApplyOp(tokenOp{newBase("TokenEmbed", 3, 3, 3, 3)}, x, cls, pos)
}

type tokenOp struct{ base }

func (op tokenOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, tokenShape) }

// tokenShape is TokenEmbed's shape rule.
func tokenShape(s []tensor.Shape) (tensor.Shape, error) {
	x, c, p := s[0], s[1], s[2]
	if x.Dims() != 3 {
		return nil, errors.Errorf("ops.TokenEmbed: want patch embeddings (B, N, D), got %v", x)
	}
	b, n, d := x[0], x[1], x[2]
	if !c.Eq(tensor.Shape{1, 1, d}) {
		return nil, errors.Errorf("ops.TokenEmbed: class token has shape %v, want (1, 1, %d)", c, d)
	}
	if !p.Eq(tensor.Shape{1, n + 1, d}) {
		return nil, errors.Errorf("ops.TokenEmbed: positional embedding has shape %v, want (1, %d, %d) for %d patches", p, n+1, d, n)
	}
	return tensor.Shape{b, n + 1, d}, nil
}

func (op tokenOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, tokenDo[float32], tokenDo[float64])
}

func tokenDo[T float](op tokenOp, in []*tensor.Dense) (G.Value, error) {
	s := in[0].Shape()
	y := zeroed[T](op.base, tensor.Shape{s[0], s[1] + 1, s[2]})
	tokenFwd(sl[T](in[0]), sl[T](in[1]), sl[T](in[2]), sl[T](y), s[0], s[1], s[2])
	return y, nil
}

func tokenFwd[T float](x, cls, pos, y []T, b, n, d int) {
	t := (n + 1) * d
	for bi := 0; bi < b; bi++ {
		out := y[bi*t : (bi+1)*t]
		for j := 0; j < d; j++ {
			out[j] = cls[j] + pos[j]
		}
		src := x[bi*n*d : (bi+1)*n*d]
		for j, v := range src {
			out[d+j] = v + pos[d+j]
		}
	}
}

func (op tokenOp) DiffWRT(n int) []bool { return allDiff(n) }

func (op tokenOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	xs := inputs[0].Shape()
	dx, err := gradNode("ops.TokenEmbed backward (patches)", dropFirstToken{newBase("TokenEmbedGradX", 3, 3)}, grad)
	if err != nil {
		return nil, err
	}
	dpos, err := gradNode("ops.TokenEmbed backward (positions)", sumBatch{newBase("SumBatch(tokens=all)", 3, 3), false}, grad)
	if err != nil {
		return nil, err
	}
	dcls, err := gradNode("ops.TokenEmbed backward (class token)", sumBatch{newBase(fmt.Sprintf("SumBatch(tokens=first,%v)", xs), 3, 3), true}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dcls, dpos}, nil
}

// dropFirstToken: (B, T, D) → (B, T−1, D), rows 1..T−1.
type dropFirstToken struct{ base }

func (op dropFirstToken) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return infer(ds, op.outShape)
}

func (op dropFirstToken) outShape(s []tensor.Shape) (tensor.Shape, error) {
	return tensor.Shape{s[0][0], s[0][1] - 1, s[0][2]}, nil
}

func (op dropFirstToken) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, dropFirstDo[float32], dropFirstDo[float64])
}

func dropFirstDo[T float](op dropFirstToken, in []*tensor.Dense) (G.Value, error) {
	s := in[0].Shape()
	b, t, d := s[0], s[1], s[2]
	y := zeroed[T](op.base, tensor.Shape{b, t - 1, d})
	dropFirst(sl[T](in[0]), sl[T](y), b, t, d)
	return y, nil
}

func dropFirst[T float](x, y []T, b, t, d int) {
	for bi := 0; bi < b; bi++ {
		copy(y[bi*(t-1)*d:(bi+1)*(t-1)*d], x[(bi*t+1)*d:(bi+1)*t*d])
	}
}

// sumBatch: (B, T, D) → (1, T, D) summed over the batch, or (1, 1, D) of
// the first token only.
type sumBatch struct {
	base
	first bool
}

func (op sumBatch) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, op.outShape) }

func (op sumBatch) outShape(s []tensor.Shape) (tensor.Shape, error) {
	if op.first {
		return tensor.Shape{1, 1, s[0][2]}, nil
	}
	return tensor.Shape{1, s[0][1], s[0][2]}, nil
}

func (op sumBatch) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, sumBatchDo[float32], sumBatchDo[float64])
}

func sumBatchDo[T float](op sumBatch, in []*tensor.Dense) (G.Value, error) {
	s := in[0].Shape()
	b, t, d := s[0], s[1], s[2]
	if op.first {
		t = 1
	}
	y := zeroed[T](op.base, tensor.Shape{1, t, d})
	sumOverBatch(sl[T](in[0]), sl[T](y), b, s[1]*d, t*d)
	return y, nil
}

// sumOverBatch adds the first n elements of each of b blocks of size stride.
func sumOverBatch[T float](x, y []T, b, stride, n int) {
	for bi := 0; bi < b; bi++ {
		for j, v := range x[bi*stride : bi*stride+n] {
			y[j] += v
		}
	}
}

// Pooling selects what Pool reduces the tokens of an image to.
type Pooling uint8

const (
	// PoolClassToken takes the class token (row 0), as the paper does.
	PoolClassToken Pooling = iota
	// PoolMean averages the patch tokens (rows 1..T−1), as timm's
	// global_pool="avg".
	PoolMean
)

// Pool reduces tokens (B, T, D) to one vector per image (B, D), as pooling
// says. The backward pass spreads the gradient back over the tokens it was
// pooled from.
func Pool(x *G.Node, pooling Pooling) (*G.Node, error) {
	if x.Dims() != 3 {
		return nil, errors.Errorf("ops.Pool: want tokens (B, T, D), got %v", x.Shape())
	}
	if pooling != PoolClassToken && pooling != PoolMean {
		return nil, errors.Errorf("ops.Pool: invalid Pooling %d", pooling)
	}
	mean := pooling == PoolMean
	return G.ApplyOp(poolOp{newBase(fmt.Sprintf("Pool(mean=%t)", mean), 3, 2), mean}, x)
}

type poolOp struct {
	base
	mean bool
}

func (op poolOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, op.outShape) }

func (op poolOp) outShape(s []tensor.Shape) (tensor.Shape, error) {
	if s[0].Dims() != 3 || (op.mean && s[0][1] < 2) {
		return nil, errors.Errorf("ops.Pool: want tokens (B, T, D) with a class token and patches, got %v", s[0])
	}
	return tensor.Shape{s[0][0], s[0][2]}, nil
}

func (op poolOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, poolDo[float32], poolDo[float64])
}

func poolDo[T float](op poolOp, in []*tensor.Dense) (G.Value, error) {
	s := in[0].Shape()
	y := zeroed[T](op.base, tensor.Shape{s[0], s[2]})
	poolFwd(sl[T](in[0]), sl[T](y), s[0], s[1], s[2], op.mean)
	return y, nil
}

func poolFwd[T float](x, y []T, b, t, d int, mean bool) {
	for bi := 0; bi < b; bi++ {
		out := y[bi*d : (bi+1)*d]
		if !mean {
			copy(out, x[bi*t*d:])
			continue
		}
		inv := 1 / T(t-1)
		for r := 1; r < t; r++ {
			for j, v := range x[(bi*t+r)*d : (bi*t+r+1)*d] {
				out[j] += v
			}
		}
		for j := range out {
			out[j] *= inv
		}
	}
}

func (op poolOp) DiffWRT(n int) []bool { return allDiff(n) }

func (op poolOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	s := inputs[0].Shape()
	return oneGrad("ops.Pool backward", unpoolOp{newBase(fmt.Sprintf("PoolGrad(mean=%t,%v)", op.mean, s), 2, 3), op.mean, s[1]}, grad)
}

// unpoolOp spreads (B, D) back over the tokens it was pooled from.
type unpoolOp struct {
	base
	mean bool
	t    int
}

func (op unpoolOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return infer(ds, op.outShape) }

func (op unpoolOp) outShape(s []tensor.Shape) (tensor.Shape, error) {
	return tensor.Shape{s[0][0], op.t, s[0][1]}, nil
}

func (op unpoolOp) Do(vs ...G.Value) (G.Value, error) {
	return run(op, vs, unpoolDo[float32], unpoolDo[float64])
}

func unpoolDo[T float](op unpoolOp, in []*tensor.Dense) (G.Value, error) {
	s := in[0].Shape()
	y := zeroed[T](op.base, tensor.Shape{s[0], op.t, s[1]})
	poolBwd(sl[T](in[0]), sl[T](y), s[0], op.t, s[1], op.mean)
	return y, nil
}

func poolBwd[T float](dy, dx []T, b, t, d int, mean bool) {
	for bi := 0; bi < b; bi++ {
		g := dy[bi*d : (bi+1)*d]
		if !mean {
			copy(dx[bi*t*d:], g)
			continue
		}
		inv := 1 / T(t-1)
		for r := 1; r < t; r++ {
			row := dx[(bi*t+r)*d : (bi*t+r+1)*d]
			for j, v := range g {
				row[j] = v * inv
			}
		}
	}
}
