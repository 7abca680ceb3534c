package data

import (
	"fmt"
	"image"
)

// ImageToCHW converts img to ch×size×size float32 pixels in [0,1], written
// into dst, exactly as the image-folder reader converts the files it reads
// (see the package notes): colour through the standard library's colour
// model, gray copied to R, G and B or RGB turned into BT.601 luma, the
// centred square of side min(width, height) resampled to size×size (area
// averaging when shrinking, linear interpolation when growing). It is the
// conversion an inference program needs to see images as the model saw them
// in training; normalisation is left to the caller.
//
// It returns an error (starting "data:") for a nil or empty image, a
// channel count other than 1 or 3, a size outside 1..MaxImageSize, an
// image of more than MaxImagePixels pixels, or a dst of the wrong length.
func ImageToCHW(img image.Image, ch, size int, dst []float32) error {
	if img == nil {
		return fmt.Errorf("data: ImageToCHW: nil image, expected a decoded image")
	}
	if ch != 1 && ch != 3 {
		return fmt.Errorf("data: ImageToCHW: %d channels requested, expected 1 or 3", ch)
	}
	if size < 1 || size > MaxImageSize {
		return fmt.Errorf("data: ImageToCHW: size %d, expected 1..%d", size, MaxImageSize)
	}
	if want := ch * size * size; len(dst) != want {
		return fmt.Errorf("data: ImageToCHW: dst has %d values, expected %d (%d×%d×%d)", len(dst), want, ch, size, size)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return fmt.Errorf("data: ImageToCHW: image of %d×%d pixels, expected a non-empty image", w, h)
	}
	if int64(w)*int64(h) > MaxImagePixels {
		return fmt.Errorf("data: ImageToCHW: image of %d×%d pixels, expected at most %d pixels", w, h, MaxImagePixels)
	}
	s := min(w, h)
	x0, y0 := (w-s)/2, (h-s)/2
	crop := image.Rect(b.Min.X+x0, b.Min.Y+y0, b.Min.X+x0+s, b.Min.Y+y0+s)
	if s == size {
		toPlanes(img, crop, ch, dst)
		return nil
	}
	src := make([]float32, ch*s*s)
	toPlanes(img, crop, ch, src)
	resample(src, ch, s, size, dst)
	return nil
}
