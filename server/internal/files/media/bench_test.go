package media

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/image/draw"
)

// photo returns a w × h picture with what makes a photo costly to
// encode and scale: smooth gradients, edges and noise.
func photo(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	rnd := rand.New(rand.NewPCG(7, 7))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := m.PixOffset(x, y)
			n := byte(rnd.UintN(24))
			m.Pix[i] = byte(x*255/w) + n
			m.Pix[i+1] = byte(y*255/h) + n
			m.Pix[i+2] = byte((x/97+y/61)%2*160) + n
			m.Pix[i+3] = 255
		}
	}
	return m
}

// BenchmarkInspectPhoto inspects a 4000×3000 JPEG as a phone sends it
// (with an Exif segment to strip): the whole server-side cost of one
// photo, decode, clean and preview.
func BenchmarkInspectPhoto(b *testing.B) {
	j := encodeJPEG(b, photo(4000, 3000), 85)
	j = insertAfterSOI(j, jpegSegment(0xe1, append([]byte("Exif\x00\x00"), exifTIFF(binary.BigEndian, 6)...)))
	b.SetBytes(int64(len(j)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := Inspect(bytes.NewReader(j), int64(len(j)), Limits{})
		if err != nil || r.ThumbWidth != 240 || r.ThumbHeight != 320 {
			b.Fatalf("%v %v", r, err)
		}
	}
}

// BenchmarkScale compares ways to make a 320×240 preview of a decoded
// 4000×3000 photo.
func BenchmarkScale(b *testing.B) {
	src, err := jpeg.Decode(bytes.NewReader(encodeJPEG(b, photo(4000, 3000), 85)))
	if err != nil {
		b.Fatal(err)
	}
	dst := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for _, c := range []struct {
		name  string
		scale func()
	}{
		{"CatmullRom", func() { draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil) }},
		{"ApproxBiLinear", func() { draw.ApproxBiLinear.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil) }},
		{"BiLinear", func() { draw.BiLinear.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil) }},
		{"TwoStep", func() { scale(dst, src) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				c.scale()
			}
		})
	}
}

// TestPreviewScaleQuality compares the preview's scaling with the exact
// area average of a noisy photo reduced 10 times: the box-then-
// Catmull-Rom path must be as close as Catmull-Rom alone (which costs
// some 30 times more on a photo) and closer than a bilinear shortcut.
func TestPreviewScaleQuality(t *testing.T) {
	rgba := photo(500, 400)
	ycbcr, err := jpeg.Decode(bytes.NewReader(encodeJPEG(t, rgba, 100)))
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []image.Image{rgba, ycbcr} {
		want := boxReduce(src, 10, 10) // exact: 500×400 is 50×40 boxes of 10×10
		psnr := func(scale func(dst *image.RGBA)) float64 {
			dst := image.NewRGBA(image.Rect(0, 0, 50, 40))
			scale(dst)
			var se float64
			for i := range dst.Pix {
				d := float64(dst.Pix[i]) - float64(want.Pix[i])
				se += d * d
			}
			return 10 * math.Log10(255*255/(se/float64(len(dst.Pix))))
		}
		ours := psnr(func(dst *image.RGBA) { scale(dst, src) })
		catmullRom := psnr(func(dst *image.RGBA) { draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil) })
		bilinear := psnr(func(dst *image.RGBA) { draw.ApproxBiLinear.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil) })
		t.Logf("%T: PSNR against the area average: ours %.1f dB, Catmull-Rom %.1f dB, ApproxBiLinear %.1f dB", src, ours, catmullRom, bilinear)
		if ours < catmullRom-1 || ours < bilinear+3 {
			t.Errorf("%T: the preview's scaling is %.1f dB; Catmull-Rom %.1f, ApproxBiLinear %.1f", src, ours, catmullRom, bilinear)
		}
	}
}

func TestBoxReduceEdges(t *testing.T) {
	// 5×3 reduced by 2×2: the last column and row are boxes of 1.
	src := image.NewGray(image.Rect(0, 0, 5, 3))
	for i := range src.Pix {
		src.Pix[i] = byte(10 * i)
	}
	got := boxReduce(src, 2, 2)
	if got.Bounds() != image.Rect(0, 0, 3, 2) {
		t.Fatalf("bounds %v", got.Bounds())
	}
	// Box (0,0): pixels 0,10,50,60 → 30; box (2,0): 40,90 → 65;
	// box (2,1): 140 alone.
	for _, c := range []struct{ x, y, v int }{{0, 0, 30}, {2, 0, 65}, {0, 1, 105}, {2, 1, 140}} {
		if v := int(got.RGBAAt(c.x, c.y).R); v != c.v {
			t.Errorf("box %d,%d = %d, want %d", c.x, c.y, v, c.v)
		}
	}
}
