package insight

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
)

// Epoch is one line of a training metrics file (cmd/train writes one JSON
// object per epoch; other fields are ignored).
type Epoch struct {
	Epoch     int     `json:"epoch"`
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_acc"`
	ValLoss   float64 `json:"val_loss"` // with HasVal only (runs with held-out validation images)
	ValAcc    float64 `json:"val_acc"`
	TestLoss  float64 `json:"test_loss"`
	TestAcc   float64 `json:"test_acc"`
	HasVal    bool    `json:"-"`
}

// MaxMetricsLine bounds the length of one line of a metrics file.
const MaxMetricsLine = 1 << 20

// ReadMetrics reads a metrics file: JSON lines with epoch, train_loss,
// train_acc, test_loss and test_acc, and val_loss and val_acc if the run
// held out validation images (blank lines skipped). A later line for
// an epoch replaces an earlier one (as after a resumed run); the result is
// sorted by epoch.
func ReadMetrics(r io.Reader) ([]Epoch, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxMetricsLine)
	byEpoch := map[int]Epoch{}
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("insight: metrics line %d: expected a JSON object, found %.40q: %v", line, b, err)
		}
		for _, k := range []string{"epoch", "train_loss", "train_acc", "test_loss", "test_acc"} {
			if _, ok := raw[k]; !ok {
				return nil, fmt.Errorf("insight: metrics line %d: no %q field, expected epoch, train_loss, train_acc, test_loss and test_acc", line, k)
			}
		}
		var e Epoch
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("insight: metrics line %d: %v", line, err)
		}
		_, hasLoss := raw["val_loss"]
		_, hasAcc := raw["val_acc"]
		if hasLoss != hasAcc {
			return nil, fmt.Errorf("insight: metrics line %d: val_loss and val_acc must come together", line)
		}
		e.HasVal = hasAcc
		if e.Epoch < 1 {
			return nil, fmt.Errorf("insight: metrics line %d: epoch %d, expected a positive epoch number", line, e.Epoch)
		}
		for _, v := range []float64{e.TrainLoss, e.TrainAcc, e.ValLoss, e.ValAcc, e.TestLoss, e.TestAcc} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("insight: metrics line %d: value %v, expected finite numbers", line, v)
			}
		}
		byEpoch[e.Epoch] = e
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("insight: metrics line %d: %v", line+1, err)
	}
	if len(byEpoch) == 0 {
		return nil, fmt.Errorf("insight: the metrics file has no epochs, expected one JSON line per epoch")
	}
	out := make([]Epoch, 0, len(byEpoch))
	for _, e := range byEpoch {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Epoch < out[j].Epoch })
	return out, nil
}
