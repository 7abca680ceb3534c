package sgemm

import (
	"fmt"
	"testing"
)

// BenchmarkSmall times the tiny products of attention with few tokens
// (mnist-small: 17 tokens, head width 16), where per-call overhead counts.
func BenchmarkSmall(b *testing.B) {
	for _, s := range []struct {
		tA, tB  bool
		m, n, k int
	}{{false, true, 17, 17, 16}, {false, false, 17, 16, 17}, {true, false, 17, 16, 17}} {
		a := make([]float32, s.m*s.k)
		bb := make([]float32, s.k*s.n)
		c := make([]float32, s.m*s.n)
		lda, ldb := s.k, s.n
		if s.tA {
			lda = s.m
		}
		if s.tB {
			ldb = s.k
		}
		b.Run(fmt.Sprintf("tA=%v,tB=%v,%dx%dx%d", s.tA, s.tB, s.m, s.n, s.k), func(b *testing.B) {
			for b.Loop() {
				Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
			}
			b.ReportMetric(float64(2*s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
