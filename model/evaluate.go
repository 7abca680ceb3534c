package model

import (
	"fmt"
	"io"

	"github.com/pkg/errors"
)

// Evaluation holds a classifier's results on a labelled set: accuracy,
// mean cross-entropy, per-class accuracy and the confusion matrix. Fill it
// with Add, one row of logits per image, then call Finish. The classifier's
// Evaluate and the trainer's evaluation both produce one.
type Evaluation struct {
	Classes   []string      `json:"classes"`
	Images    int           `json:"images"`
	Correct   int           `json:"correct"`
	Accuracy  float64       `json:"accuracy"`
	Loss      float64       `json:"loss"` // mean cross-entropy, no smoothing
	PerClass  []ClassResult `json:"per_class"`
	Confusion [][]int       `json:"confusion"` // [true][predicted]

	lossSum float64
}

// ClassResult is one class's line of an Evaluation.
type ClassResult struct {
	Class    int      `json:"class"`
	Label    string   `json:"label"`
	Images   int      `json:"images"`
	Correct  int      `json:"correct"`
	Accuracy *float64 `json:"accuracy"` // null for a class without images
}

// NewEvaluation starts an empty evaluation over the given classes.
func NewEvaluation(classes []string) *Evaluation {
	e := &Evaluation{Classes: classes, Confusion: make([][]int, len(classes))}
	for i := range e.Confusion {
		e.Confusion[i] = make([]int, len(classes))
	}
	return e
}

// Add counts one image: its logits (one per class) and its true label.
func (e *Evaluation) Add(logits []float32, label int) error {
	k := len(e.Classes)
	if len(logits) != k {
		return errors.Errorf("model: evaluation: %d logits, expected %d (one per class)", len(logits), k)
	}
	if label < 0 || label >= k {
		return errors.Errorf("model: evaluation: image %d has label %d, expected 0..%d", e.Images, label, k-1)
	}
	e.Confusion[label][Argmax(logits)]++
	e.lossSum += CrossEntropy(logits, label)
	e.Images++
	return nil
}

// Finish computes the totals, the accuracies and the mean loss from the
// confusion matrix. It may be called again after more Adds.
func (e *Evaluation) Finish() {
	e.Correct, e.PerClass = 0, e.PerClass[:0]
	for i, row := range e.Confusion {
		r := ClassResult{Class: i, Label: e.Classes[i], Correct: row[i]}
		for _, v := range row {
			r.Images += v
		}
		if r.Images > 0 {
			a := float64(r.Correct) / float64(r.Images)
			r.Accuracy = &a
		}
		e.Correct += r.Correct
		e.PerClass = append(e.PerClass, r)
	}
	if e.Images > 0 {
		e.Accuracy = float64(e.Correct) / float64(e.Images)
		e.Loss = e.lossSum / float64(e.Images)
	}
}

// WriteText prints the evaluation as text: accuracy and loss, a table of
// per-class accuracy, and the confusion matrix.
func (e *Evaluation) WriteText(w io.Writer) {
	fmt.Fprintf(w, "accuracy: %.2f%% (%d/%d), loss %.4f\n\n", 100*e.Accuracy, e.Correct, e.Images, e.Loss)
	nw := len("class")
	for _, n := range e.Classes {
		nw = max(nw, len(n))
	}
	fmt.Fprintf(w, "%3s  %-*s  %8s  %s\n", "#", nw, "class", "accuracy", "correct/images")
	for _, r := range e.PerClass {
		acc := "       -"
		if r.Accuracy != nil {
			acc = fmt.Sprintf("%7.2f%%", 100**r.Accuracy)
		}
		fmt.Fprintf(w, "%3d  %-*s  %s  %d/%d\n", r.Class, nw, r.Label, acc, r.Correct, r.Images)
	}
	cw := 3
	for _, row := range e.Confusion {
		for _, v := range row {
			cw = max(cw, len(fmt.Sprint(v)))
		}
	}
	fmt.Fprintf(w, "\nconfusion matrix (rows: true class, columns: predicted class)\n%3s  %-*s", "#", nw, "")
	for j := range e.Classes {
		fmt.Fprintf(w, " %*d", cw, j)
	}
	fmt.Fprintln(w)
	for i, row := range e.Confusion {
		fmt.Fprintf(w, "%3d  %-*s", i, nw, e.Classes[i])
		for _, v := range row {
			fmt.Fprintf(w, " %*d", cw, v)
		}
		fmt.Fprintln(w)
	}
}

// evalChunk is the number of images Evaluate normalises and classifies at
// once, which bounds the memory it adds to the caller's.
const evalChunk = 1024

// Evaluate classifies n labelled images given as C×H×W pixels in [0,1] in
// the model's geometry (not normalised: the classifier normalises a copy)
// and returns the finished evaluation, classes named as the classifier's.
func (c *Classifier) Evaluate(x []float32, labels []int) (*Evaluation, error) {
	chw := c.chw()
	if len(x) != len(labels)*chw {
		return nil, errors.Errorf("model: Evaluate: %d values for %d labels, expected %d (%d×%d×%d each)",
			len(x), len(labels), len(labels)*chw, c.cfg.Channels, c.cfg.ImageSize, c.cfg.ImageSize)
	}
	ev := NewEvaluation(c.Classes())
	for start := 0; start < len(labels); start += evalChunk {
		n := min(evalChunk, len(labels)-start)
		preds, err := c.ClassifyPixels(x[start*chw:(start+n)*chw], n)
		if err != nil {
			return nil, err
		}
		for i, p := range preds {
			if err := ev.Add(p.Logits, labels[start+i]); err != nil {
				return nil, err
			}
		}
	}
	ev.Finish()
	return ev, nil
}
