//go:build ignore

// make_samples writes the first test image of each class of a dataset
// (default: the Fashion-MNIST sample in testdata/) as PNG files, for the
// pictures of docs/insight.md:
//
//	go run docs/make_samples.go [-data DIR] [-out DIR] [-crop N] [-per-class N]
//
// -per-class N writes the first N of each class (names end in -K.png when
// N > 1; docs/serving.md loads a server with them).
// -crop cuts N pixels off every side (2 turns the sample's padded 32×32
// images back into Fashion-MNIST's 28×28 originals).
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"

	"github.com/vitgo/vit/train/data"
)

func main() {
	dir := flag.String("data", "testdata/fashion-sample", "dataset `dir` (any format cmd/train reads)")
	out := flag.String("out", "docs/img/samples", "output `dir`")
	crop := flag.Int("crop", 0, "pixels to cut off every side")
	perClass := flag.Int("per-class", 1, "images per class")
	flag.Parse()
	if err := run(*dir, *out, *crop, *perClass); err != nil {
		fmt.Fprintln(os.Stderr, "make_samples:", err)
		os.Exit(1)
	}
}

func run(dir, out string, crop, perClass int) error {
	_, test, _, err := data.Load(dir, data.Options{})
	if err != nil {
		return err
	}
	if crop < 0 || 2*crop >= min(test.H, test.W) {
		return fmt.Errorf("-crop %d, expected 0..%d", crop, (min(test.H, test.W)-1)/2)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if perClass < 1 {
		return fmt.Errorf("-per-class %d, expected at least 1", perClass)
	}
	done, written := map[int]int{}, 0
	for i := 0; i < test.N && written < perClass*len(test.Classes); i++ {
		l := test.Labels[i]
		if done[l] == perClass {
			continue
		}
		done[l]++
		written++
		name := strings.NewReplacer("/", "-", " ", "-").Replace(strings.ToLower(test.Classes[l]))
		path := filepath.Join(out, fmt.Sprintf("%d-%s.png", l, name))
		if perClass > 1 {
			path = filepath.Join(out, fmt.Sprintf("%d-%s-%d.png", l, name, done[l]))
		}
		if err := writePNG(path, toImage(test, i, crop)); err != nil {
			return err
		}
		fmt.Println(path)
	}
	return nil
}

// toImage turns test image i into a gray or colour image, without crop
// pixels on every side.
func toImage(d *data.Dataset, i, crop int) image.Image {
	px := d.Image(i)
	w, h, plane := d.W-2*crop, d.H-2*crop, d.H*d.W
	b := func(v float32) uint8 { return uint8(min(max(v*255+0.5, 0), 255)) }
	gray := true
	for c := 1; c < d.C; c++ {
		for j := 0; j < plane; j++ {
			if px[c*plane+j] != px[j] {
				gray = false
			}
		}
	}
	if gray {
		img := image.NewGray(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				img.SetGray(x, y, color.Gray{b(px[(y+crop)*d.W+x+crop])})
			}
		}
		return img
	}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			o := (y+crop)*d.W + x + crop
			img.SetNRGBA(x, y, color.NRGBA{b(px[o]), b(px[plane+o]), b(px[2*plane+o]), 255})
		}
	}
	return img
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
