package imaging

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"testing"
)

func encodePNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		img.Set(x, 0, color.NRGBA{R: 200, A: 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeScalesDownToTheBox(t *testing.T) {
	img, err := Decode(encodePNG(t, 400, 100), 1<<20, image.Pt(200, 200))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got != image.Pt(200, 50) {
		t.Fatalf("size %v, want 200x50", got)
	}
	if c := img.RGBAAt(10, 0); c.R < 50 || img.RGBAAt(10, 40).A != 0 {
		t.Fatalf("the first row lost its red: %v", c)
	}
}

func TestDecodeKeepsSmallImages(t *testing.T) {
	img, err := Decode(encodePNG(t, 30, 20), 1<<20, image.Pt(200, 200))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got != image.Pt(30, 20) {
		t.Fatalf("size %v, want 30x20", got)
	}
}

func TestDecodeRefusesTooManyPixelsAndDamage(t *testing.T) {
	data := encodePNG(t, 300, 300)
	if _, err := Decode(data, 300*300-1, image.Point{}); !errors.Is(err, ErrTooManyPixels) {
		t.Fatalf("err %v, want ErrTooManyPixels", err)
	}
	if _, err := Decode(data[:len(data)/2], 1<<20, image.Point{}); err == nil {
		t.Fatal("a truncated PNG decoded")
	}
	if _, err := Decode([]byte("%PDF-1.4"), 1<<20, image.Point{}); err == nil {
		t.Fatal("a PDF decoded as a picture")
	}
}

func TestFit(t *testing.T) {
	for _, c := range []struct{ size, box, want image.Point }{
		{image.Pt(320, 240), image.Pt(160, 160), image.Pt(160, 120)},
		{image.Pt(240, 320), image.Pt(160, 160), image.Pt(120, 160)},
		{image.Pt(10, 10), image.Pt(160, 160), image.Pt(10, 10)},
		{image.Pt(5000, 1), image.Pt(100, 100), image.Pt(100, 1)},
		{image.Pt(50, 50), image.Point{}, image.Pt(50, 50)},
	} {
		if got := Fit(c.size, c.box); got != c.want {
			t.Errorf("Fit(%v, %v) = %v, want %v", c.size, c.box, got, c.want)
		}
	}
}
