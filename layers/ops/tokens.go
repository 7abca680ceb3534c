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
	return G.ApplyOp(tokenOp{base{out: new(outSlot), name: "TokenEmbed", ranks: []int{3, 3, 3, 3}}}, x, cls, pos)
}

type tokenOp struct{ base }

func (op tokenOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(ds)
	if err != nil {
		return nil, err
	}
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
	in, dt, err := values(op.name, vs)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape()
	y := op.alloc(dt, tensor.Shape{s[0], s[1] + 1, s[2]})
	if dt == tensor.Float32 {
		tokenFwd(sl[float32](in[0]), sl[float32](in[1]), sl[float32](in[2]), sl[float32](y), s[0], s[1], s[2])
	} else {
		tokenFwd(sl[float64](in[0]), sl[float64](in[1]), sl[float64](in[2]), sl[float64](y), s[0], s[1], s[2])
	}
	return y, nil
}

func tokenFwd[T Float](x, cls, pos, y []T, b, n, d int) {
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
	dx, err := G.ApplyOp(dropFirstToken{base{out: new(outSlot), name: "TokenEmbedGradX", ranks: []int{3, 3}}}, grad)
	if err != nil {
		return nil, errors.Wrap(err, "ops.TokenEmbed backward (patches)")
	}
	dpos, err := G.ApplyOp(sumBatch{base{out: new(outSlot), name: "SumBatch(tokens=all)", ranks: []int{3, 3}}, false}, grad)
	if err != nil {
		return nil, errors.Wrap(err, "ops.TokenEmbed backward (positions)")
	}
	dcls, err := G.ApplyOp(sumBatch{base{out: new(outSlot), name: fmt.Sprintf("SumBatch(tokens=first,%v)", xs), ranks: []int{3, 3}}, true}, grad)
	if err != nil {
		return nil, errors.Wrap(err, "ops.TokenEmbed backward (class token)")
	}
	return G.Nodes{dx, dcls, dpos}, nil
}

// dropFirstToken: (B, T, D) → (B, T−1, D), rows 1..T−1.
type dropFirstToken struct{ base }

func (op dropFirstToken) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(ds)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0][0], s[0][1] - 1, s[0][2]}, nil
}

func (op dropFirstToken) Do(vs ...G.Value) (G.Value, error) {
	in, dt, err := values(op.name, vs)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape()
	b, t, d := s[0], s[1], s[2]
	y := op.alloc(dt, tensor.Shape{b, t - 1, d})
	if dt == tensor.Float32 {
		dropFirst(sl[float32](in[0]), sl[float32](y), b, t, d)
	} else {
		dropFirst(sl[float64](in[0]), sl[float64](y), b, t, d)
	}
	return y, nil
}

func dropFirst[T Float](x, y []T, b, t, d int) {
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

func (op sumBatch) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(ds)
	if err != nil {
		return nil, err
	}
	if op.first {
		return tensor.Shape{1, 1, s[0][2]}, nil
	}
	return tensor.Shape{1, s[0][1], s[0][2]}, nil
}

func (op sumBatch) Do(vs ...G.Value) (G.Value, error) {
	in, dt, err := values(op.name, vs)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape()
	b, t, d := s[0], s[1], s[2]
	if op.first {
		t = 1
	}
	y := op.alloc(dt, tensor.Shape{1, t, d})
	if dt == tensor.Float32 {
		sumOverBatch(sl[float32](in[0]), sl[float32](y), b, s[1]*d, t*d)
	} else {
		sumOverBatch(sl[float64](in[0]), sl[float64](y), b, s[1]*d, t*d)
	}
	return y, nil
}

// sumOverBatch adds the first n elements of each of b blocks of size stride.
func sumOverBatch[T Float](x, y []T, b, stride, n int) {
	for bi := 0; bi < b; bi++ {
		for j, v := range x[bi*stride : bi*stride+n] {
			y[j] += v
		}
	}
}

// Pool reduces tokens (B, T, D) to one vector per image (B, D): the class
// token (row 0) when mean is false, else the mean of the patch tokens
// (rows 1..T−1), as timm's global_pool="avg".
func Pool(x *G.Node, mean bool) (*G.Node, error) {
	if x.Dims() != 3 {
		return nil, errors.Errorf("ops.Pool: want tokens (B, T, D), got %v", x.Shape())
	}
	return G.ApplyOp(poolOp{base{out: new(outSlot), name: fmt.Sprintf("Pool(mean=%t)", mean), ranks: []int{3, 2}}, mean}, x)
}

type poolOp struct {
	base
	mean bool
}

func (op poolOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(ds)
	if err != nil {
		return nil, err
	}
	if s[0].Dims() != 3 || (op.mean && s[0][1] < 2) {
		return nil, errors.Errorf("ops.Pool: want tokens (B, T, D) with a class token and patches, got %v", s[0])
	}
	return tensor.Shape{s[0][0], s[0][2]}, nil
}

func (op poolOp) Do(vs ...G.Value) (G.Value, error) {
	in, dt, err := values(op.name, vs)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape()
	y := op.alloc(dt, tensor.Shape{s[0], s[2]})
	if dt == tensor.Float32 {
		poolFwd(sl[float32](in[0]), sl[float32](y), s[0], s[1], s[2], op.mean)
	} else {
		poolFwd(sl[float64](in[0]), sl[float64](y), s[0], s[1], s[2], op.mean)
	}
	return y, nil
}

func poolFwd[T Float](x, y []T, b, t, d int, mean bool) {
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
	d, err := G.ApplyOp(unpoolOp{base{out: new(outSlot), name: fmt.Sprintf("PoolGrad(mean=%t,%v)", op.mean, s), ranks: []int{2, 3}}, op.mean, s[1]}, grad)
	if err != nil {
		return nil, errors.Wrap(err, "ops.Pool backward")
	}
	return G.Nodes{d}, nil
}

// unpoolOp spreads (B, D) back over the tokens it was pooled from.
type unpoolOp struct {
	base
	mean bool
	t    int
}

func (op unpoolOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(ds)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0][0], op.t, s[0][1]}, nil
}

func (op unpoolOp) Do(vs ...G.Value) (G.Value, error) {
	in, dt, err := values(op.name, vs)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape()
	y := op.alloc(dt, tensor.Shape{s[0], op.t, s[1]})
	if dt == tensor.Float32 {
		poolBwd(sl[float32](in[0]), sl[float32](y), s[0], op.t, s[1], op.mean)
	} else {
		poolBwd(sl[float64](in[0]), sl[float64](y), s[0], op.t, s[1], op.mean)
	}
	return y, nil
}

func poolBwd[T Float](dy, dx []T, b, t, d int, mean bool) {
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
