package imaging

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// quadrantsJPEG is a w×h JPEG stored in four colours (red top-left,
// green top-right, blue bottom-left, white bottom-right) with an APP1
// Exif segment after SOI saying orientation o, laid out as the server
// keeps it (big-endian TIFF, IFD0 with only the Orientation tag).
func quadrantsJPEG(t *testing.T, w, h, o int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{255, 0, 0, 255}
			switch {
			case x >= w/2 && y < h/2:
				c = color.RGBA{0, 255, 0, 255}
			case x < w/2 && y >= h/2:
				c = color.RGBA{0, 0, 255, 255}
			case x >= w/2 && y >= h/2:
				c = color.RGBA{255, 255, 255, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	seg := []byte{0xff, 0xe1, 0, 34}
	seg = append(seg, "Exif\x00\x00"...)
	seg = append(seg, 'M', 'M', 0, '*', 0, 0, 0, 8, 0, 1)
	seg = append(seg, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, byte(o), 0, 0)
	seg = append(seg, 0, 0, 0, 0)
	data := buf.Bytes()
	return append(append(append([]byte{}, data[:2]...), seg...), data[2:]...)
}

// near tells whether c is about want (JPEG blurs colours a little).
func near(c, want color.RGBA) bool {
	d := func(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
	return d(c.R, want.R) < 40 && d(c.G, want.G) < 40 && d(c.B, want.B) < 40
}

func TestDecodeTurnsAJPEGAsItsExifSays(t *testing.T) {
	red, green, blue, white := color.RGBA{255, 0, 0, 255}, color.RGBA{0, 255, 0, 255}, color.RGBA{0, 0, 255, 255}, color.RGBA{255, 255, 255, 255}
	// Stored 80×40; the displayed top-left corner of each orientation.
	for o, want := range map[int]color.RGBA{1: red, 2: green, 3: white, 4: blue, 5: red, 6: blue, 7: white, 8: green} {
		data := quadrantsJPEG(t, 80, 40, o)
		if got := jpegOrientation(data); got != o {
			t.Fatalf("orientation %d read as %d", o, got)
		}
		for _, box := range []image.Point{{}, {20, 20}} {
			img, err := Decode(data, 1<<20, box)
			if err != nil {
				t.Fatal(err)
			}
			size := image.Pt(80, 40)
			if o >= 5 {
				size = image.Pt(40, 80) // a portrait photo stays portrait, not stretched
			}
			size = Fit(size, box)
			if got := img.Bounds().Size(); got != size {
				t.Fatalf("orientation %d, box %v: %v, want %v", o, box, got, size)
			}
			if c := img.RGBAAt(1, 1); !near(c, want) {
				t.Errorf("orientation %d, box %v: top-left %v, want %v", o, box, c, want)
			}
		}
	}
}

func TestJPEGOrientationIgnoresOthers(t *testing.T) {
	for _, data := range [][]byte{nil, {0xff, 0xd8}, encodePNG(t, 4, 4), {0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff}} {
		if o := jpegOrientation(data); o != 1 {
			t.Errorf("%x: orientation %d, want 1", data, o)
		}
	}
}
