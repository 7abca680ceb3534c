package model

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

func TestGridOf(t *testing.T) {
	for _, tc := range []struct {
		n, want int
		ok      bool
	}{
		{1, 1, true}, {4, 2, true}, {16, 4, true}, {196, 14, true}, {576, 24, true},
		{1 << 60, 1 << 30, true}, {(1<<31 - 1) * (1<<31 - 1), 1<<31 - 1, true},
		{0, 0, false}, {-4, 0, false}, {2, 0, false}, {15, 0, false}, {17, 0, false},
		{(1<<31-1)*(1<<31-1) - 1, 0, false}, {(1<<31-1)*(1<<31-1) + 1, 0, false},
	} {
		g, err := gridOf(tc.n)
		if tc.ok && (err != nil || g != tc.want) {
			t.Errorf("gridOf(%d) = %d, %v; want %d", tc.n, g, err, tc.want)
		}
		if !tc.ok && (err == nil || !strings.HasPrefix(err.Error(), "model: ")) {
			t.Errorf("gridOf(%d) = %d, %v; want a model error", tc.n, g, err)
		}
	}
}

// TestResizePosEmbedParity compares with PyTorch's
// F.interpolate(mode="bicubic", align_corners=False, antialias=False),
// from the fixture written by testdata/parity/make_fixtures.py.
func TestResizePosEmbedParity(t *testing.T) {
	const path = "../testdata/parity/pos_resize.safetensors"
	ts, _, err := readSafetensors(path)
	if err != nil {
		t.Fatalf("reading the PyTorch fixture: %v", err)
	}
	src, ok := ts["src"]
	if !ok || !reflect.DeepEqual(src.Shape, []int{1, 17, 32}) {
		t.Fatalf("%s: src has shape %v, want [1 17 32]", path, src.Shape)
	}
	for _, tc := range []struct {
		name   string
		nh, nw int
	}{
		{"dst_6x6", 6, 6},
		{"dst_3x3", 3, 3},
		{"dst_5x7", 5, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, ok := ts[tc.name]
			if !ok {
				t.Fatalf("%s: no tensor %q", path, tc.name)
			}
			got, err := resizePosEmbed(src, 1, 4, 4, tc.nh, tc.nw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Shape, want.Shape) {
				t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
			}
			maxErr := 0.0
			for i := range want.Data {
				maxErr = math.Max(maxErr, math.Abs(got.Data[i]-want.Data[i]))
			}
			t.Logf("%s: max abs error vs PyTorch %.3g", tc.name, maxErr)
			if !(maxErr <= 1e-5) {
				t.Errorf("max abs error %g > 1e-5", maxErr)
			}
			// The class-token row is passed through bit for bit.
			if !reflect.DeepEqual(got.Data[:32], src.Data[:32]) {
				t.Errorf("class-token row changed")
			}
		})
	}
}

func TestResizePosEmbedIdentity(t *testing.T) {
	for _, tc := range []struct{ prefix, gh, gw, d int }{
		{1, 4, 4, 3}, {0, 3, 5, 2}, {2, 1, 1, 4}, {1, 7, 2, 1},
	} {
		in := cvFilled(3, 1, tc.prefix+tc.gh*tc.gw, tc.d)
		got, err := resizePosEmbed(in, tc.prefix, tc.gh, tc.gw, tc.gh, tc.gw)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, in) {
			t.Errorf("%+v: same-size resize changed the tensor", tc)
		}
		got.Data[0]++ // the result must not alias the input
		if in.Data[0] == got.Data[0] {
			t.Errorf("%+v: result shares memory with the input", tc)
		}
	}
	// The interpolation weights themselves are the identity at scale 1, so
	// the general path would agree with the copy.
	for _, n := range []int{1, 2, 5} {
		idx, w := cubicTaps(n, n)
		for o := 0; o < n; o++ {
			for k := 0; k < 4; k++ {
				if w[4*o+k] != 0 && (idx[4*o+k] != o || w[4*o+k] != 1) {
					t.Errorf("cubicTaps(%d, %d): output %d tap %d reads %d with weight %g", n, n, o, k, idx[4*o+k], w[4*o+k])
				}
			}
		}
	}
}

// TestResizePosEmbedProperties checks what any correct bicubic resampling
// must do: keep constants constant (weights sum to 1), copy the prefix rows,
// handle each channel independently, and lay the grid out row-major.
func TestResizePosEmbedProperties(t *testing.T) {
	const prefix, gh, gw, d = 2, 3, 4, 2
	in := Tensor{Shape: []int{1, prefix + gh*gw, d}}
	in.Data = append(in.Data, 11, 12, 21, 22) // prefix rows
	for r := 0; r < gh; r++ {
		for c := 0; c < gw; c++ {
			in.Data = append(in.Data, 5, float64(c)) // channel 0 constant, channel 1 varies along columns only
		}
	}
	for _, size := range [][2]int{{6, 2}, {2, 7}, {1, 1}, {9, 9}} {
		nh, nw := size[0], size[1]
		got, err := resizePosEmbed(in, prefix, gh, gw, nh, nw)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Shape, []int{1, prefix + nh*nw, d}) {
			t.Fatalf("%dx%d: shape %v", nh, nw, got.Shape)
		}
		if !reflect.DeepEqual(got.Data[:prefix*d], in.Data[:prefix*d]) {
			t.Errorf("%dx%d: prefix rows changed: %v", nh, nw, got.Data[:prefix*d])
		}
		grid := got.Data[prefix*d:]
		for r := 0; r < nh; r++ {
			for c := 0; c < nw; c++ {
				v0, v1 := grid[(r*nw+c)*d], grid[(r*nw+c)*d+1]
				if math.Abs(v0-5) > 1e-12 {
					t.Errorf("%dx%d (%d,%d): constant channel became %v", nh, nw, r, c, v0)
				}
				// Channel 1 does not depend on the row.
				if first := grid[c*d+1]; math.Abs(v1-first) > 1e-12 {
					t.Errorf("%dx%d (%d,%d): column-only channel %v differs from row 0's %v", nh, nw, r, c, v1, first)
				}
			}
		}
	}
	// Downsampling the ramp 0,1,2,3 from 4 columns to 2, worked by hand:
	// source positions (dst+0.5)·2−0.5 = 0.5 and 2.5, border taps clamped.
	got, err := resizePosEmbed(in, prefix, gh, gw, gh, 2)
	if err != nil {
		t.Fatal(err)
	}
	g := got.Data[prefix*d:]
	// Taps for 0.5: indices -1,0,1,2 → 0,0,1,2; for 2.5: 1,2,3,4 → 1,2,3,3.
	// Weights at t = 0.5 are (-0.09375, 0.59375, 0.59375, -0.09375).
	want0 := -0.09375*0 + 0.59375*0 + 0.59375*1 + -0.09375*2
	want1 := -0.09375*1 + 0.59375*2 + 0.59375*3 + -0.09375*3
	if math.Abs(g[1]-want0) > 1e-12 || math.Abs(g[3]-want1) > 1e-12 {
		t.Errorf("4->2 columns: got %v, %v; want %v, %v", g[1], g[3], want0, want1)
	}
}

func TestResizePosEmbedErrors(t *testing.T) {
	good := cvFilled(1, 1, 17, 4)
	for _, tc := range []struct {
		name                   string
		t                      Tensor
		prefix, gh, gw, nh, nw int
		want                   string
	}{
		{"rank 2", cvFilled(1, 17, 4), 1, 4, 4, 6, 6, "shape [17 4]"},
		{"batch 2", cvFilled(1, 2, 17, 4), 1, 4, 4, 6, 6, "shape [2 17 4]"},
		{"token count", good, 1, 3, 3, 6, 6, "17 tokens"},
		{"no prefix given", good, 0, 4, 4, 6, 6, "17 tokens"},
		{"data length", Tensor{Shape: []int{1, 17, 4}, Data: make([]float64, 10)}, 1, 4, 4, 6, 6, "found 10"},
		{"zero target", good, 1, 4, 4, 0, 6, "0x6"},
		{"negative prefix", good, -1, 4, 4, 6, 6, "prefix -1"},
		{"zero width", Tensor{Shape: []int{1, 17, 0}}, 1, 4, 4, 6, 6, "D > 0"},
		{"huge target", good, 1, 4, 4, 1 << 40, 1 << 40, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resizePosEmbed(tc.t, tc.prefix, tc.gh, tc.gw, tc.nh, tc.nw)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "model: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestSinCos2DParity: the fixed 2-D sin-cos positions against big_vision's
// formula computed by PyTorch (testdata/parity/make_sincos.py), and a
// model with Config.PosEmbed = PosSinCos starts with them (zero for the
// class token).
func TestSinCos2DParity(t *testing.T) {
	fx := readFixture(t, "sincos.safetensors")
	for _, c := range []struct{ h, w, d int }{{7, 7, 64}, {14, 14, 192}, {4, 6, 32}, {2, 2, 8}} {
		want, ok := fx[fmt.Sprintf("h%d_w%d_d%d", c.h, c.w, c.d)]
		if !ok {
			t.Fatalf("fixture lacks %+v", c)
		}
		got := SinCos2D(c.h, c.w, c.d)
		if len(got) != len(want.Data) {
			t.Fatalf("%+v: %d values, fixture %d", c, len(got), len(want.Data))
		}
		for i, v := range got {
			if math.Abs(float64(v)-want.Data[i]) > 1e-6 {
				t.Fatalf("%+v: value %d = %v, PyTorch %v", c, i, v, want.Data[i])
			}
		}
	}
	cfg := Config{ImageSize: 28, PatchSize: 4, Channels: 1, Dim: 64, Depth: 1, Heads: 4, MLPDim: 32, NumClasses: 10, PosEmbed: PosSinCos}
	m, err := New(G.NewGraph(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	pos := m.PosEmbed.Value().Data().([]float32)
	pe := SinCos2D(7, 7, 64)
	for i, v := range pos {
		want := float32(0)
		if i >= 64 {
			want = pe[i-64]
		}
		if v != want {
			t.Fatalf("pos_embed[%d] = %v, want %v", i, v, want)
		}
	}
	cfg.Dim, cfg.Heads = 66, 6
	if err := cfg.Validate(); err == nil {
		t.Error("sin-cos positions accepted a width that is not a multiple of 4")
	}
	cfg.Dim, cfg.PosEmbed = 64, "rope"
	if err := cfg.Validate(); err == nil {
		t.Error("an unknown positional embedding was accepted")
	}
}
