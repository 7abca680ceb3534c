// Command make_photos writes an image folder of photo-sized JPEGs (for the
// lazy folder reader's measurements in docs/finetune.md): N images per
// split, in 10 classes, each a 640×480 crop of one of the repository's
// photos (testdata/photos), shifted, mirrored and tinted per image, JPEG
// quality 85.
//
//	go run ./docs/make_photos -n 20000 -out /tmp/photos20k
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand"
	"os"
	"path/filepath"
	"sync"

	"github.com/vitgo/vit/model/preprocess"
)

func main() {
	n := flag.Int("n", 20000, "training images (test: a tenth)")
	out := flag.String("out", "", "output `dir`")
	flag.Parse()
	if err := run(*n, *out); err != nil {
		fmt.Fprintln(os.Stderr, "make_photos:", err)
		os.Exit(1)
	}
}

func run(n int, out string) error {
	if out == "" || n < 10 {
		return fmt.Errorf("give -out DIR and -n of at least 10")
	}
	var srcs []image.Image
	for _, f := range []string{"chelsea.png", "coffee.jpg", "rocket.jpg"} {
		img, err := preprocess.DecodeFile(filepath.Join("testdata/photos", f))
		if err != nil {
			return err
		}
		srcs = append(srcs, img)
	}
	type job struct {
		split string
		i     int
	}
	jobs := make(chan job)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := write(out, j.split, j.i, srcs); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, s := range []struct {
		name string
		n    int
	}{{"train", n}, {"test", n / 10}} {
		for i := 0; i < s.n; i++ {
			jobs <- job{s.name, i}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// write makes image i of a split: class i%10, a 640×480 window of a photo
// (the photo scaled up by nearest neighbour where it is smaller), mirrored
// for odd classes, tinted by the class.
func write(out, split string, i int, srcs []image.Image) error {
	rng := rand.New(rand.NewSource(int64(i)*31 + int64(len(split))))
	class := i % 10
	src := srcs[class%len(srcs)]
	b := src.Bounds()
	img := image.NewNRGBA(image.Rect(0, 0, 640, 480))
	dx, dy := rng.Intn(64), rng.Intn(48)
	tint := [3]int{class * 9, (9 - class) * 7, rng.Intn(40)}
	for y := 0; y < 480; y++ {
		for x := 0; x < 640; x++ {
			sx := (x + dx) * b.Dx() / 704
			if class%2 == 1 {
				sx = b.Dx() - 1 - sx
			}
			sy := (y + dy) * b.Dy() / 528
			r, g, bl, _ := src.At(b.Min.X+sx, b.Min.Y+sy).RGBA()
			img.SetNRGBA(x, y, color.NRGBA{clamp(int(r>>8) + tint[0]), clamp(int(g>>8) + tint[1]), clamp(int(bl>>8) + tint[2]), 255})
		}
	}
	dir := filepath.Join(out, split, fmt.Sprintf("class%d", class))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%06d.jpg", i)))
	if err != nil {
		return err
	}
	if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 85}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func clamp(v int) uint8 { return uint8(min(max(v, 0), 255)) }
