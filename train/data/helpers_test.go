package data

import (
	"strings"
	"testing"
)

// wantErr fails unless err is non-nil, starts with "data:" and contains every
// one of parts.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, expected one containing %q", parts)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "data: ") {
		t.Errorf("error %q does not start with \"data: \"", msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not contain %q", msg, p)
		}
	}
}

// checkBytes fails unless got is exactly px scaled by 1/255.
func checkBytes(t *testing.T, what string, got []float32, px []byte) {
	t.Helper()
	if len(got) != len(px) {
		t.Fatalf("%s: %d pixels, expected %d", what, len(got), len(px))
	}
	for i, b := range px {
		if got[i] != float32(b)/255 {
			t.Fatalf("%s: pixel %d = %v, expected %v (byte %d)", what, i, got[i], float32(b)/255, b)
		}
	}
}
