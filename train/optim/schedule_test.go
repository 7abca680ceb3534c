package optim

import (
	"math"
	"testing"
)

func TestWarmupCosine(t *testing.T) {
	s := WarmupCosine{Base: 1e-3, Min: 1e-5, Warmup: 10, Total: 110}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= 1e-15 }
	for _, c := range []struct {
		step int
		want float64
	}{
		{-3, 1e-4},                   // negative counts as 0
		{0, 1e-4},                    // warmup start: Base·1/Warmup
		{4, 5e-4},                    // Base·5/10
		{9, 1e-3},                    // end of warmup: Base
		{10, 1e-3},                   // first cosine step: Base
		{60, 1e-5 + (1e-3-1e-5)*0.5}, // midpoint of the cosine
		{35, 1e-5 + (1e-3-1e-5)*0.5*(1+math.Sqrt2/2)}, // quarter: cos(π/4)
		{110, 1e-5},  // Total: Min
		{1000, 1e-5}, // after Total: Min
	} {
		if got := s.At(c.step); !near(got, c.want) {
			t.Errorf("At(%d) = %.17g, want %.17g", c.step, got, c.want)
		}
	}
	if s.At(110) != s.Min || s.At(109) <= s.Min {
		t.Errorf("At(109) = %v, At(110) = %v, Min %v", s.At(109), s.At(110), s.Min)
	}
	for step := 1; step < s.Warmup; step++ {
		if !(s.At(step) > s.At(step-1)) {
			t.Errorf("warmup not increasing at %d", step)
		}
	}
	for step := s.Warmup + 1; step <= s.Total+5; step++ {
		if !(s.At(step) <= s.At(step-1)) {
			t.Errorf("not monotone after warmup: At(%d)=%v > At(%d)=%v", step, s.At(step), step-1, s.At(step-1))
		}
		if s.At(step) < s.Min {
			t.Errorf("At(%d) = %v below Min", step, s.At(step))
		}
	}

	// No warmup: starts at Base. Degenerate Total ≤ Warmup: Min after warmup.
	if got := (WarmupCosine{Base: 2, Min: 1, Total: 4}).At(0); got != 2 {
		t.Errorf("no warmup At(0) = %v, want 2", got)
	}
	if got := (WarmupCosine{Base: 2, Min: 1, Warmup: 3, Total: 3}).At(3); got != 1 {
		t.Errorf("Total = Warmup: At(3) = %v, want Min", got)
	}
	if got := (WarmupCosine{Base: 2, Min: 1, Warmup: 3, Total: 3}).At(2); got != 2 {
		t.Errorf("Total = Warmup: At(2) = %v, want Base", got)
	}
}

func TestWarmupCosineValidate(t *testing.T) {
	for _, s := range []WarmupCosine{
		{Base: 1, Min: 2, Warmup: 0, Total: 10},
		{Base: 1, Min: -1, Total: 10},
		{Base: math.NaN(), Total: 10},
		{Base: 1, Warmup: 11, Total: 10},
		{Base: 1, Warmup: -1, Total: 10},
	} {
		wantErr(t, s.Validate(), "WarmupCosine expected")
	}
}
