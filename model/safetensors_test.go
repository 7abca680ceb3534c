package model

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pkg/errors"
)

// stRaw assembles a safetensors image by hand: the 8-byte
// little-endian header length, the header, then data.
func stRaw(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// stWithLength is like stRaw but with an arbitrary header length.
func stWithLength(n uint64, rest []byte) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

func stWriteTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func stU16s(v ...uint16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint16(b, x)
	}
	return b
}

func stSameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b && math.Signbit(a) == math.Signbit(b)
}

func TestSafetensorsRoundTrip(t *testing.T) {
	tensors := map[string]Tensor{
		"w":      {Shape: []int{2, 3}, Data: []float64{0.1, -2.5, 3, 1e-3, 7.25, -0}},
		"b":      {Shape: []int{3}, Data: []float64{1, 2, math.Inf(-1)}},
		"scalar": {Shape: []int{}, Data: []float64{math.Pi}},
		"empty":  {Shape: []int{0, 4}, Data: []float64{}},
		"tiny":   {Shape: []int{1, 1, 2}, Data: []float64{1e-40, 65504}}, // F32 subnormal
	}
	names := []string{"w", "b", "scalar", "empty", "tiny"}
	for _, tc := range []struct {
		dtype string
		meta  map[string]string
		conv  func(float64) float64
	}{
		{"F32", map[string]string{"format": "pt", "note": `quotes " and <tags>`}, func(v float64) float64 { return float64(float32(v)) }},
		{"F64", map[string]string{"format": "pt"}, func(v float64) float64 { return v }},
		{"F32", nil, func(v float64) float64 { return float64(float32(v)) }},
	} {
		t.Run(tc.dtype, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rt.safetensors")
			if err := writeSafetensors(path, names, tensors, tc.dtype, tc.meta); err != nil {
				t.Fatal(err)
			}
			got, meta, err := readSafetensors(path)
			if err != nil {
				t.Fatal(err)
			}
			wantMeta := tc.meta
			if wantMeta == nil {
				wantMeta = map[string]string{}
			}
			if !reflect.DeepEqual(meta, wantMeta) {
				t.Errorf("metadata = %v, want %v", meta, wantMeta)
			}
			if len(got) != len(tensors) {
				t.Errorf("read %d tensors, want %d", len(got), len(tensors))
			}
			for name, want := range tensors {
				g, ok := got[name]
				if !ok {
					t.Errorf("tensor %q missing", name)
					continue
				}
				if !sameShape(g.Shape, want.Shape) || len(g.Data) != len(want.Data) {
					t.Errorf("%s: shape %v (%d values), want %v (%d)", name, g.Shape, len(g.Data), want.Shape, len(want.Data))
					continue
				}
				for i := range want.Data {
					if w := tc.conv(want.Data[i]); !stSameFloat(g.Data[i], w) {
						t.Errorf("%s[%d] = %v, want %v", name, i, g.Data[i], w)
					}
				}
			}
			// The header must declare the requested dtype.
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(raw, []byte(`"dtype":"`+tc.dtype+`"`)) {
				t.Errorf("file header does not declare dtype %s", tc.dtype)
			}
		})
	}
}

func TestSafetensorsHalfDecoding(t *testing.T) {
	for _, tc := range []struct {
		dtype string
		bits  []uint16
		want  []float64
	}{
		{"F16",
			[]uint16{0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0001, 0x03FF, 0x0400, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x3800, 0x4248},
			[]float64{1, -2, 0.333251953125, 65504, 5.9604644775390625e-08, 6.097555160522461e-05, 6.103515625e-05, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 0.5, 3.140625}},
		{"BF16",
			[]uint16{0x3F80, 0xC000, 0x4049, 0x7F7F, 0x0001, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x3EAB},
			[]float64{1, -2, 3.140625, 3.3895313892515355e+38, 9.183549615799121e-41, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 0.333984375}},
	} {
		t.Run(tc.dtype, func(t *testing.T) {
			n := len(tc.bits)
			header := `{"x":{"dtype":"` + tc.dtype + `","shape":[` + strconv.Itoa(n) + `],"data_offsets":[0,` + strconv.Itoa(2*n) + `]}}`
			path := stWriteTemp(t, "h.safetensors", stRaw(header, stU16s(tc.bits...)))
			got, _, err := readSafetensors(path)
			if err != nil {
				t.Fatal(err)
			}
			x := got["x"]
			if !sameShape(x.Shape, []int{n}) || len(x.Data) != n {
				t.Fatalf("shape %v with %d values, want [%d]", x.Shape, len(x.Data), n)
			}
			for i, w := range tc.want {
				if !stSameFloat(x.Data[i], w) {
					t.Errorf("%s %#04x = %v, want %v", tc.dtype, tc.bits[i], x.Data[i], w)
				}
			}
		})
	}
}

// TestHalfToFloat64Exhaustive checks every finite binary16 value against
// the defining formula, computed independently in exact arithmetic.
func TestHalfToFloat64Exhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		exp, frac := (h>>10)&0x1f, h&0x3ff
		if exp == 0x1f {
			continue
		}
		var want float64
		if exp == 0 {
			want = float64(frac) / (1 << 24)
		} else {
			want = float64(1024+frac) * math.Pow(2, float64(exp-25))
		}
		if h&0x8000 != 0 {
			want = -want
		}
		if got := halfToFloat64(uint16(h)); !stSameFloat(got, want) {
			t.Fatalf("halfToFloat64(%#04x) = %v, want %v", h, got, want)
		}
	}
}

func TestReadSafetensorsRejectsBadFiles(t *testing.T) {
	f32x2 := make([]byte, 8)
	for _, tc := range []struct {
		name string
		file []byte
		want []string // substrings the error must contain
	}{
		{"empty file", nil, []string{"0 bytes"}},
		{"truncated length", []byte{1, 2, 3, 4, 5}, []string{"5 bytes"}},
		{"header length past end", stWithLength(1000, []byte(`{}`)), []string{"header length 1000", "past the end"}},
		{"header length one past end", stWithLength(3, []byte(`{}`)), []string{"header length 3", "past the end"}},
		{"huge header length", stWithLength(1<<62, []byte(`{}`)), []string{"exceeds the limit"}},
		{"header length just over limit", stWithLength(maxSafetensorsHeader+1, []byte(`{}`)), []string{"exceeds the limit"}},
		{"max uint64 header length", stWithLength(math.MaxUint64, nil), []string{"exceeds the limit"}},
		{"non-JSON header", stRaw(`not json at all`, nil), []string{"JSON"}},
		{"truncated JSON header", stRaw(`{"a":{"dtype":"F32"`, nil), []string{"JSON"}},
		{"JSON array header", stRaw(`[1,2,3]`, nil), []string{"JSON"}},
		{"tensor entry not an object", stRaw(`{"a":1}`, nil), []string{`"a"`, "not an object"}},
		{"offsets past the end", stRaw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)),
			[]string{`"a"`, "[0, 8]", "4-byte data section"}},
		{"second tensor past the end", stRaw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 4)),
			[]string{`"b"`, "[4, 8]"}},
		{"shape disagrees with byte count", stRaw(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32x2),
			[]string{`"a"`, "needs 12 bytes", "found 8"}},
		{"shape overflow", stRaw(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, f32x2),
			[]string{`"a"`, "overflow"}},
		{"negative shape", stRaw(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, f32x2), []string{`"a"`}},
		{"reversed offsets", stRaw(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, f32x2), []string{`"a"`}},
		{"gap between tensors", stRaw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32x2), []string{`"a"`, "starts at data byte 4, expected 0"}},
		{"overlapping tensors", stRaw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32x2), []string{`"b"`, "overlap"}},
		{"trailing bytes", stRaw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32x2), []string{"cover 4 bytes", "has 8"}},
		{"missing data_offsets", stRaw(`{"a":{"dtype":"F32","shape":[1]}}`, f32x2[:4]), []string{`"a"`}},
		{"unsupported dtype I64", stRaw(`{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, f32x2), []string{`"a"`, "I64", "F32, F64, F16, BF16"}},
		{"unsupported dtype BOOL", stRaw(`{"a":{"dtype":"BOOL","shape":[8],"data_offsets":[0,8]}}`, f32x2), []string{`"a"`, "BOOL"}},
		{"unknown dtype", stRaw(`{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}`, f32x2), []string{`"a"`, "F8_E4M3", "F32, F64, F16, BF16"}},
		{"metadata value not a string", stRaw(`{"__metadata__":{"k":1}}`, nil), []string{"__metadata__"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := stWriteTemp(t, "bad.safetensors", tc.file)
			ts, meta, err := readSafetensors(path)
			if err == nil {
				t.Fatalf("no error; got %d tensors, metadata %v", len(ts), meta)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "model: ") || !strings.Contains(msg, path) {
				t.Errorf("error %q should start with \"model: \" and name %s", msg, path)
			}
			if strings.Contains(msg, "panic") {
				t.Errorf("parser panicked: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if ts != nil || meta != nil {
				t.Errorf("on error, got non-nil results")
			}
		})
	}
}

func TestReadSafetensorsMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.safetensors")
	if _, _, err := readSafetensors(p); err == nil || !strings.Contains(err.Error(), p) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want a not-exist error naming %s", err, p)
	}
	if _, _, err := readSafetensors(t.TempDir()); err == nil || !strings.Contains(err.Error(), "regular file") {
		t.Errorf("reading a directory: err = %v", err)
	}
}

// TestParseSafetensorsNoPanic feeds every truncation and many random
// corruptions of a valid file to the parser. It must return (never panic,
// and never need the recover safety net) and must reject truncations.
func TestParseSafetensorsNoPanic(t *testing.T) {
	good := stRaw(
		`{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},"c":{"dtype":"BF16","shape":[1],"data_offsets":[22,24]}}`,
		make([]byte, 24))
	if _, _, err := parseSafetensors("good", good); err != nil {
		t.Fatalf("valid image rejected: %v", err)
	}
	check := func(b []byte) error {
		_, _, err := parseSafetensors("mem", b)
		if err != nil && strings.Contains(err.Error(), "panic") {
			t.Fatalf("parser panicked on %q: %v", b, err)
		}
		return err
	}
	for n := 0; n < len(good); n++ {
		if check(good[:n]) == nil {
			t.Errorf("truncation to %d bytes accepted", n)
		}
	}
	rng := rand.New(rand.NewSource(1))
	interesting := []byte(`{}[]":,-0123456789eE. ` + "\x00\xff")
	for i := 0; i < 20000; i++ {
		b := append([]byte(nil), good...)
		for k := rng.Intn(4) + 1; k > 0; k-- {
			j := rng.Intn(len(b))
			if rng.Intn(2) == 0 {
				b[j] = interesting[rng.Intn(len(interesting))]
			} else {
				b[j] = byte(rng.Intn(256))
			}
		}
		check(b)
	}
}

func FuzzParseSafetensors(f *testing.F) {
	f.Add(stRaw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)))
	f.Add(stRaw(`{"a":{"dtype":"F16","shape":[],"data_offsets":[0,2]}}`, make([]byte, 2)))
	f.Add(stWithLength(1<<40, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, _, err := parseSafetensors("fuzz", b)
		if err != nil {
			if strings.Contains(err.Error(), "panic") {
				t.Fatal(err)
			}
			return
		}
		for name, x := range ts {
			if n, err := stNumElements(x.Shape); err != nil || n != len(x.Data) {
				t.Fatalf("%s: shape %v with %d values", name, x.Shape, len(x.Data))
			}
		}
	})
}

// stDirEntries lists the names in dir, to spot leftover temporary files.
func stDirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteSafetensorsAtomicOnFailure(t *testing.T) {
	good := map[string]Tensor{"a": {Shape: []int{2}, Data: []float64{1, 2}}}
	original := []byte("previous contents, must survive")
	for _, tc := range []struct {
		name    string
		tensors map[string]Tensor
		names   []string
		dtype   string
		hook    func(*os.File) error
		want    []string
	}{
		{"data length disagrees with shape",
			map[string]Tensor{"a": {Shape: []int{2, 2}, Data: []float64{1, 2, 3}}}, []string{"a"}, "F32", nil,
			[]string{`"a"`, "[2 2]", "needs 4 values, found 3"}},
		{"negative dimension",
			map[string]Tensor{"a": {Shape: []int{-1}, Data: nil}}, []string{"a"}, "F64", nil, []string{`"a"`, "negative"}},
		{"listed tensor not given", good, []string{"a", "b"}, "F32", nil, []string{`"b"`, "not given"}},
		{"tensor listed twice", good, []string{"a", "a"}, "F32", nil, []string{`"a"`, "twice"}},
		{"reserved name", map[string]Tensor{"__metadata__": {Shape: []int{1}, Data: []float64{1}}}, []string{"__metadata__"}, "F32", nil, []string{"__metadata__"}},
		{"unsupported dtype", good, []string{"a"}, "F16", nil, []string{`"F16"`}},
		{"value too large for F32",
			map[string]Tensor{"a": {Shape: []int{2}, Data: []float64{1, 1e300}}}, []string{"a"}, "F32", nil, []string{`"a"`, "1e+300", "F32"}},
		{"failure after the temporary file is written", good, []string{"a"}, "F32",
			func(*os.File) error { return errors.New("simulated disk failure") }, []string{"simulated disk failure"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "model.safetensors")
			if err := os.WriteFile(path, original, 0o644); err != nil {
				t.Fatal(err)
			}
			stSyncHook = tc.hook
			defer func() { stSyncHook = nil }()
			err := writeSafetensors(path, tc.names, tc.tensors, tc.dtype, nil)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "model: ") || !strings.Contains(msg, path) {
				t.Errorf("error %q should start with \"model: \" and name %s", msg, path)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, original) {
				t.Errorf("existing file changed: %q, %v", got, err)
			}
			if es := stDirEntries(t, dir); !reflect.DeepEqual(es, []string{"model.safetensors"}) {
				t.Errorf("directory holds %v, want only model.safetensors (temporary file left behind?)", es)
			}
		})
	}
}

func TestWriteSafetensorsBadTarget(t *testing.T) {
	good := map[string]Tensor{"a": {Shape: []int{1}, Data: []float64{1}}}

	t.Run("missing directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no", "such", "dir", "m.safetensors")
		err := writeSafetensors(path, []string{"a"}, good, "F32", nil)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("err = %v, want an error naming %s", err, path)
		}
	})

	t.Run("target is a directory", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "m.safetensors")
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
		err := writeSafetensors(path, []string{"a"}, good, "F32", nil)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("err = %v, want an error naming %s", err, path)
		}
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
			t.Errorf("target directory disturbed: %v %v", fi, err)
		}
		if es := stDirEntries(t, dir); !reflect.DeepEqual(es, []string{"m.safetensors"}) {
			t.Errorf("directory holds %v", es)
		}
	})
}

func TestWriteSafetensorsReplacesAndKeepsMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := map[string]Tensor{"a": {Shape: []int{2}, Data: []float64{1.5, -3}}}
	if err := writeSafetensors(path, []string{"a"}, ts, "F64", map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	got, meta, err := readSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ts) || !reflect.DeepEqual(meta, map[string]string{"k": "v"}) {
		t.Errorf("read back %v %v", got, meta)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after replace: %v, %v; want 0600", fi.Mode(), err)
	}
	if es := stDirEntries(t, dir); !reflect.DeepEqual(es, []string{"m.safetensors"}) {
		t.Errorf("directory holds %v", es)
	}
}
