package data

import (
	"testing"

	"github.com/vitgo/vit/model/vittest"
)

// wantErr fails unless err is non-nil, starts with "data: " and contains every
// one of parts.
var wantErr = vittest.WantErrFrom("data: ")

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
