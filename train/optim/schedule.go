package optim

import (
	"math"

	"github.com/pkg/errors"
)

// WarmupCosine is a learning-rate schedule over optimizer steps counted from
// 0: a linear warmup to Base, then a half-cosine decay from Base to Min that
// reaches Min at step Total and stays there:
//
//	step < Warmup:          Base·(step+1)/Warmup
//	Warmup ≤ step < Total:  Min + (Base−Min)·½·(1 + cos(π·(step−Warmup)/max(1, Total−Warmup)))
//	step ≥ Total:           Min
//
// So the first step runs at Base/Warmup, steps Warmup−1 and Warmup both run
// at Base, and the last step of a Total-step run (Total−1) is just above
// Min. Warmup ≤ 0 means no warmup; a negative step counts as step 0.
type WarmupCosine struct {
	Base, Min     float64
	Warmup, Total int
}

// At returns the learning rate for the given step (from 0).
func (s WarmupCosine) At(step int) float64 {
	if step < 0 {
		step = 0
	}
	if step < s.Warmup {
		return s.Base * float64(step+1) / float64(s.Warmup)
	}
	if step >= s.Total {
		return s.Min
	}
	w := max(s.Warmup, 0)
	span := max(1, s.Total-w)
	return s.Min + (s.Base-s.Min)*0.5*(1+math.Cos(math.Pi*float64(step-w)/float64(span)))
}

// Validate reports a schedule that cannot be meant: Base and Min must be
// finite with 0 ≤ Min ≤ Base, and 0 ≤ Warmup ≤ Total.
func (s WarmupCosine) Validate() error {
	if math.IsNaN(s.Base) || math.IsInf(s.Base, 0) || math.IsNaN(s.Min) || math.IsInf(s.Min, 0) {
		return errors.Errorf("optim: WarmupCosine expected finite Base and Min, found %v and %v", s.Base, s.Min)
	}
	if !(s.Min >= 0 && s.Min <= s.Base) {
		return errors.Errorf("optim: WarmupCosine expected 0 ≤ Min ≤ Base, found Min %v and Base %v", s.Min, s.Base)
	}
	if s.Warmup < 0 || s.Warmup > s.Total {
		return errors.Errorf("optim: WarmupCosine expected 0 ≤ Warmup ≤ Total, found Warmup %d and Total %d", s.Warmup, s.Total)
	}
	return nil
}
