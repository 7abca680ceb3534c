// Package insight computes and draws what a trained Vision Transformer
// learnt: the similarity of its positional embeddings (Figure 7 of the ViT
// paper), attention rollout from the class token to the patches, and the
// training curves of a run.
//
// The computations (PosSimilarity, Rollout, ClassAttention, ReadMetrics)
// work on plain slices and are independent of the drawing. The drawings
// (WritePosSimilarity, WriteAttention, WriteCurves) write PNG files with
// gonum.org/v1/plot for axes, labels and colour bars; heat maps use the
// viridis colour map (Viridis). Errors start with "insight:"; no input
// makes these functions panic.
package insight

import (
	"fmt"
	"math"
)

// PosSimilarity returns the cosine similarity between the positional
// embeddings of every pair of patch positions, as an N×N row-major matrix
// (N = grid², positions row-major), together with grid. pos is the
// embedding, tokens×dim row-major, row 0 the class token's (left out here),
// then the patches row-major; tokens − 1 must be a square. A zero embedding
// vector has similarity 0 with every position, itself included.
func PosSimilarity(pos []float32, tokens, dim int) (sim []float64, grid int, err error) {
	if tokens < 2 || dim < 1 {
		return nil, 0, fmt.Errorf("insight: positional embedding of %d tokens × %d, expected at least 2 tokens (class token and a patch) and 1 dimension", tokens, dim)
	}
	if len(pos) != tokens*dim {
		return nil, 0, fmt.Errorf("insight: positional embedding has %d values, expected %d (%d tokens × %d)", len(pos), tokens*dim, tokens, dim)
	}
	n := tokens - 1
	grid = int(math.Round(math.Sqrt(float64(n))))
	if grid*grid != n {
		return nil, 0, fmt.Errorf("insight: %d patch positions do not form a square grid", n)
	}
	norms := make([]float64, n)
	for i := 0; i < n; i++ {
		var s float64
		for _, v := range pos[(i+1)*dim : (i+2)*dim] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, 0, fmt.Errorf("insight: positional embedding of patch %d holds %v, expected finite values", i, v)
			}
			s += float64(v) * float64(v)
		}
		norms[i] = math.Sqrt(s)
	}
	sim = make([]float64, n*n)
	for i := 0; i < n; i++ {
		a := pos[(i+1)*dim : (i+2)*dim]
		for j := i; j < n; j++ {
			var s float64
			if norms[i] > 0 && norms[j] > 0 {
				b := pos[(j+1)*dim : (j+2)*dim]
				for k := range a {
					s += float64(a[k]) * float64(b[k])
				}
				s = math.Max(-1, math.Min(1, s/(norms[i]*norms[j])))
			}
			sim[i*n+j], sim[j*n+i] = s, s
		}
	}
	return sim, grid, nil
}

// checkAttention validates one block's attention probabilities, heads×T×T.
func checkAttention(att []float32, block, heads, tokens int) error {
	if len(att) != heads*tokens*tokens {
		return fmt.Errorf("insight: block %d attention has %d values, expected %d (%d heads × %d × %d tokens)", block, len(att), heads*tokens*tokens, heads, tokens, tokens)
	}
	for i, v := range att {
		if !(v >= 0) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("insight: block %d attention value %d is %v, expected a finite probability ≥ 0", block, i, v)
		}
	}
	return nil
}

// HeadMean returns the mean over heads of one block's attention
// probabilities att (heads×T×T): a T×T row-major matrix.
func HeadMean(att []float32, heads, tokens int) ([]float64, error) {
	if heads < 1 || tokens < 1 {
		return nil, fmt.Errorf("insight: %d heads and %d tokens, expected at least 1 of each", heads, tokens)
	}
	if err := checkAttention(att, 0, heads, tokens); err != nil {
		return nil, err
	}
	return headMean(att, heads, tokens), nil
}

func headMean(att []float32, heads, tokens int) []float64 {
	tt := tokens * tokens
	m := make([]float64, tt)
	for h := 0; h < heads; h++ {
		for i, v := range att[h*tt : (h+1)*tt] {
			m[i] += float64(v)
		}
	}
	for i := range m {
		m[i] /= float64(heads)
	}
	return m
}

// Rollout computes attention rollout (Abnar & Zuidema, 2020) through the
// blocks, first to last. For block l, with A_l its attention averaged over
// the heads,
//
//	Ã_l = row-normalise(0.5·A_l + 0.5·I)
//
// (the identity stands for the residual connection; the rows of A_l already
// sum to 1, so the normalisation only removes rounding), and
//
//	R = Ã_L · … · Ã_2 · Ã_1,
//
// so that R[i][j] is how much of token i's final representation flows from
// input token j. att[l] holds block l's probabilities, heads×T×T row-major.
// The result is T×T row-major; ClassRow reads the class token's row.
func Rollout(att [][]float32, heads, tokens int) ([]float64, error) {
	if len(att) == 0 {
		return nil, fmt.Errorf("insight: no attention maps, expected one per block")
	}
	if heads < 1 || tokens < 1 {
		return nil, fmt.Errorf("insight: %d heads and %d tokens, expected at least 1 of each", heads, tokens)
	}
	T := tokens
	r := identity(T)
	next := make([]float64, T*T)
	for l, a := range att {
		if err := checkAttention(a, l, heads, T); err != nil {
			return nil, err
		}
		m := headMean(a, heads, T)
		for i := 0; i < T; i++ {
			row := m[i*T : (i+1)*T]
			var s float64
			for j := range row {
				row[j] *= 0.5
				if i == j {
					row[j] += 0.5
				}
				s += row[j]
			}
			for j := range row {
				row[j] /= s // s ≥ 0.5: the identity's share
			}
		}
		// next = m · r
		for i := 0; i < T; i++ {
			out := next[i*T : (i+1)*T]
			clear(out)
			for k := 0; k < T; k++ {
				w := m[i*T+k]
				if w == 0 {
					continue
				}
				for j, v := range r[k*T : (k+1)*T] {
					out[j] += w * v
				}
			}
		}
		r, next = next, r
	}
	return r, nil
}

func identity(n int) []float64 {
	m := make([]float64, n*n)
	for i := 0; i < n; i++ {
		m[i*n+i] = 1
	}
	return m
}

// ClassRow returns the class token's row of a T×T matrix (a rollout) over
// the patches, tokens 1…T−1, scaled to sum to 1: the share of the class
// token's input that comes from each patch. If the row has no mass on the
// patches it is returned unscaled (all zero).
func ClassRow(m []float64, tokens int) ([]float64, error) {
	if tokens < 2 || len(m) != tokens*tokens {
		return nil, fmt.Errorf("insight: matrix of %d values for %d tokens, expected %d and at least 2 tokens", len(m), tokens, tokens*tokens)
	}
	row := append([]float64(nil), m[1:tokens]...)
	var s float64
	for _, v := range row {
		s += v
	}
	if s > 0 {
		for i := range row {
			row[i] /= s
		}
	}
	return row, nil
}

// ClassRollout is Rollout then ClassRow: the share of the class token's
// input that comes from each patch, through every block.
func ClassRollout(att [][]float32, heads, tokens int) ([]float64, error) {
	r, err := Rollout(att, heads, tokens)
	if err != nil {
		return nil, err
	}
	return ClassRow(r, tokens)
}

// ClassAttention returns one block's attention from the class token to the
// patches, averaged over the heads, without rollout: T−1 values (what the
// class token takes from each patch in that block alone; the rest of its
// attention is on itself).
func ClassAttention(att []float32, heads, tokens int) ([]float64, error) {
	m, err := HeadMean(att, heads, tokens)
	if err != nil {
		return nil, err
	}
	if tokens < 2 {
		return nil, fmt.Errorf("insight: %d tokens, expected the class token and at least one patch", tokens)
	}
	return m[1:tokens], nil
}
