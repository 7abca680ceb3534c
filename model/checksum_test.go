package model

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

// savedCheckpoint writes a small model's checkpoint and returns its bytes.
func savedCheckpoint(t testing.TB) []byte {
	t.Helper()
	cfg := Config{ImageSize: 8, PatchSize: 4, Channels: 1, Dim: 8, Depth: 1, Heads: 2, MLPDim: 8, NumClasses: 3}
	m, err := New(G.NewGraph(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ck.safetensors")
	if err := m.SaveCheckpoint(path, map[string]Tensor{"train.step": {Shape: []int{}, Data: []float64{42}}}, map[string]string{"note": "x"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameMeta reports whether got is want, allowing one extra key holding the
// checksum: a flipped bit in the key's name leaves a file that is read
// unchecked, but whose content is intact (one bit can damage one place).
func sameMeta(got, want map[string]string) bool {
	extra := 0
	for k, v := range got {
		if w, ok := want[k]; ok {
			if w != v {
				return false
			}
			continue
		}
		if !strings.HasPrefix(v, "sha256:") {
			return false
		}
		extra++
	}
	return extra <= 1 && len(got) == len(want)+extra
}

// TestChecksumDetectsDamage: a checkpoint carries a checksum; every flipped
// bit in its data is refused as a checksum mismatch, a flipped bit in its
// header is refused or leaves the content as written (JSON keys are matched
// without regard to case; a flip in the checksum's own key name leaves the
// file unchecked but intact), and every truncation is refused.
func TestChecksumDetectsDamage(t *testing.T) {
	good := savedCheckpoint(t)
	read := func(b []byte) (map[string]Tensor, map[string]string, error) {
		return parseSafetensors("ck.safetensors", b)
	}
	want, wantMeta, err := read(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := wantMeta[MetaChecksum]; ok || wantMeta["note"] != "x" {
		t.Fatalf("metadata read back %v: want the caller's keys without the verified checksum", wantMeta)
	}
	if !strings.Contains(string(good), `"`+MetaChecksum+`":"sha256:`) {
		t.Fatal("the written header has no checksum")
	}
	hdr := 8 + int(uint64(good[0])|uint64(good[1])<<8|uint64(good[2])<<16)
	flips, refusedHeader := 0, 0
	// Every header byte; every fifth data byte.
	for pos := 0; pos < len(good); pos++ {
		if pos >= hdr && pos%5 != 0 && pos != len(good)-1 {
			continue
		}
		for _, bit := range []int{pos % 8, (pos + 5) % 8} {
			b := append([]byte(nil), good...)
			b[pos] ^= 1 << bit
			got, meta, err := read(b)
			flips++
			switch {
			case pos >= hdr && (err == nil || !strings.Contains(err.Error(), "checksum mismatch") || !errors.Is(err, ErrChecksum)):
				t.Fatalf("bit %d of data byte %d flipped: err = %v, want a checksum mismatch", bit, pos, err)
			case pos < hdr && err == nil && (!reflect.DeepEqual(got, want) || !sameMeta(meta, wantMeta)):
				t.Fatalf("bit %d of header byte %d flipped: read without error but the content changed", bit, pos)
			case pos < hdr && err != nil && !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrFormat):
				t.Fatalf("bit %d of header byte %d flipped: %v is neither ErrChecksum nor ErrFormat", bit, pos, err)
			case pos < hdr && err != nil:
				refusedHeader++
			}
		}
	}
	t.Logf("%d single-bit flips: all data flips refused, %d header flips refused, the rest harmless", flips, refusedHeader)
	path := filepath.Join(t.TempDir(), "cut.safetensors")
	for _, n := range []int{0, 7, 8, 9, hdr / 2, hdr - 1, hdr, hdr + 1, (hdr + len(good)) / 2, len(good) - 1} {
		if err := os.WriteFile(path, good[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := readSafetensors(path)
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: read without error", n, len(good))
		}
		if !strings.Contains(err.Error(), "truncated") {
			t.Errorf("truncated to %d bytes: error %q does not say the file is truncated", n, err)
		}
	}
}

// FuzzOpen feeds model.Open (and so LoadClassifier's and Resume's first
// steps: checksum, config, size check, tensor names and shapes) damaged
// checkpoints: it must return a model or an error, never panic or allocate
// far beyond the file's size.
func FuzzOpen(f *testing.F) {
	good := savedCheckpoint(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	huge := strings.Replace(string(good), `\"dim\":8`, `\"dim\":9999999`, 1) // checksum no longer matches
	f.Add([]byte(huge))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "ck.safetensors")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, _, err := Open(G.NewGraph(), p)
		if err != nil {
			if strings.Contains(err.Error(), "panic") {
				t.Fatal(err)
			}
			return
		}
		if m.NumParams() > len(b) {
			t.Fatalf("a %d-byte file gave a model of %d parameters", len(b), m.NumParams())
		}
	})
}

// TestOpenRefusesConfigLargerThanFile: a well-formed file whose config asks
// for far more parameters than it holds is refused before the model is
// built (which would allocate them).
func TestOpenRefusesConfigLargerThanFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge.safetensors")
	cfg := `{"image_size":224,"patch_size":14,"channels":3,"dim":65536,"depth":512,"heads":1,"mlp_dim":262144,"num_classes":1000}`
	tensors := map[string]Tensor{"x": {Shape: []int{4}, Data: []float64{1, 2, 3, 4}}}
	if err := writeSafetensors(p, []string{"x"}, tensors, "F32", map[string]string{MetaConfig: cfg}); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(G.NewGraph(), p)
	if err == nil || !strings.Contains(err.Error(), "but the file holds only 4 values") {
		t.Fatalf("err = %v, want the config refused as larger than the file", err)
	}
	if _, err := LoadClassifier(p); err == nil || !strings.Contains(err.Error(), "but the file holds only 4 values") {
		t.Fatalf("LoadClassifier: err = %v, want the config refused as larger than the file", err)
	}
}
