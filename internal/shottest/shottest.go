// Package shottest holds what the window and browser tests do with
// pictures: a framed one-colour PNG to share, and finding a colour's box
// and size in a screenshot.
package shottest

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"
)

// FramedPNG is a w×h PNG of colour c with an 8-pixel frame of half its
// brightness, so that the picture's edges show in screenshots.
func FramedPNG(t testing.TB, w, h int, c color.NRGBA) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	frame := color.NRGBA{R: c.R / 2, G: c.G / 2, B: c.B / 2, A: 255}
	for y := range h {
		for x := range w {
			if x < 8 || y < 8 || x >= w-8 || y >= h-8 {
				img.SetNRGBA(x, y, frame)
			} else {
				img.SetNRGBA(x, y, c)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ColorBox is the box of img's pixels within area (all of img for an
// empty area) whose colour is within 24 of c in each channel: JPEG
// previews shift colours a little.
func ColorBox(img image.Image, c color.NRGBA, area image.Rectangle) image.Rectangle {
	b := img.Bounds()
	if !area.Empty() {
		b = b.Intersect(area)
	}
	near := func(a uint32, b uint8) bool { d := int(a>>8) - int(b); return d > -24 && d < 24 }
	var r image.Rectangle
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r1, g1, b1, _ := img.At(x, y).RGBA()
			if near(r1, c.R) && near(g1, c.G) && near(b1, c.B) {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return r
}

// SizeNear reports whether r is w×h within 12 pixels each way.
func SizeNear(r image.Rectangle, w, h int) bool {
	return r.Dx() >= w-12 && r.Dx() <= w+12 && r.Dy() >= h-12 && r.Dy() <= h+12
}
