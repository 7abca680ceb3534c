// Package vittest helps this module's tests: seeded random images and their
// PNG and JPEG encodings, files in a directory tree, and error checks.
package vittest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// WantErr fails the test unless err is non-nil, its message starts with
// prefix and contains every one of parts.
func WantErr(t testing.TB, err error, prefix string, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, expected one containing %q", parts)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		t.Errorf("error %q does not start with %q", msg, prefix)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not contain %q", msg, p)
		}
	}
}

// WantErrFrom returns WantErr for one prefix, the error prefix of the
// package under test.
func WantErrFrom(prefix string) func(t testing.TB, err error, parts ...string) {
	return func(t testing.TB, err error, parts ...string) {
		t.Helper()
		WantErr(t, err, prefix, parts...)
	}
}

// ReadJSON decodes the JSON file at path into v, failing the test if it
// cannot.
func ReadJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// RandBytes returns n bytes from a generator seeded with seed.
func RandBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// RandRGB is a w×h opaque colour image of random pixels, constant on
// block×block squares (block 1 = every pixel random).
func RandRGB(seed int64, w, h, block int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	px := RandBytes(seed, 3*w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			k := 3 * ((y/block)*w + x/block)
			img.SetNRGBA(x, y, color.NRGBA{px[k], px[k+1], px[k+2], 255})
		}
	}
	return img
}

// RandGray is RandRGB in gray.
func RandGray(seed int64, w, h, block int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	px := RandBytes(seed, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetGray(x, y, color.Gray{px[(y/block)*w+x/block]})
		}
	}
	return img
}

// PNG encodes img as PNG.
func PNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// JPEG encodes img as JPEG at quality 90.
func JPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// WriteFile writes b to dir/name (creating parent folders) and returns the
// path.
func WriteFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// PNGWithSize encodes a small PNG and rewrites its header to claim w×h
// pixels (with a valid checksum): image.DecodeConfig reports w×h.
func PNGWithSize(t testing.TB, w, h uint32) []byte {
	p := PNG(t, image.NewGray(image.Rect(0, 0, 2, 2)))
	// 8-byte signature, then IHDR: length (4), "IHDR" (4), width, height, …
	binary.BigEndian.PutUint32(p[16:], w)
	binary.BigEndian.PutUint32(p[20:], h)
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}
