package model

import (
	"math"
	"sort"

	"github.com/pkg/errors"
)

// Class is one class of a prediction.
type Class struct {
	Index int     `json:"class"`
	Label string  `json:"label"`
	Prob  float32 `json:"prob"`
}

// Prediction is the classifier's answer for one image.
type Prediction struct {
	Logits []float32 // the model's outputs, one per class
	Probs  []float32 // softmax of the logits
	Top    []Class   // the most probable classes, most probable first (ties: lower index first)
}

// Explanation is a prediction together with what the model attended to.
type Explanation struct {
	Prediction
	// Input is the image as the model sees it before normalisation:
	// C×H×W values in [0,1] (converted, centre-cropped and resized).
	Input []float32
	// Attention holds every block's attention probabilities, block by
	// block, each Heads×T×T row-major (T = patches + 1, token 0 the class
	// token, patches row-major): row i is what token i attends to.
	Attention [][]float32
	Heads     int
	Tokens    int
}

// predict turns one row of logits into probabilities and the top classes.
func (c *Classifier) predict(logits []float32) (Prediction, error) {
	for j, v := range logits {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return Prediction{}, errors.Errorf("the model gave logit %v for class %d, expected finite logits (are the weights finite?)", v, j)
		}
	}
	e := softmax(logits)
	p := Prediction{Logits: append([]float32(nil), logits...), Probs: make([]float32, len(logits))}
	idx := make([]int, len(logits))
	for j := range e {
		p.Probs[j] = float32(e[j])
		idx[j] = j
	}
	sort.SliceStable(idx, func(a, b int) bool { return e[idx[a]] > e[idx[b]] })
	for _, j := range idx[:c.topK] {
		p.Top = append(p.Top, Class{Index: j, Label: c.classes[j], Prob: p.Probs[j]})
	}
	return p, nil
}

// softmax returns the softmax of a row of logits, in float64.
func softmax(row []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	e := make([]float64, len(row))
	for j, v := range row {
		e[j] = math.Exp(float64(v) - mx)
		sum += e[j]
	}
	for j := range e {
		e[j] /= sum
	}
	return e
}

// CrossEntropy returns −log softmax(row)[label], computed stably in float64.
func CrossEntropy(row []float32, label int) float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s) - float64(row[label])
}

// Argmax returns the index of the largest value of row (the first of
// equal ones).
func Argmax(row []float32) int {
	best := 0
	for j, v := range row {
		if v > row[best] {
			best = j
		}
	}
	return best
}
