package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"os"
	"strings"
	"testing"
)

// FuzzInspect checks that no input panics, every refusal is ErrDamaged
// or ErrTooLarge, an accepted image keeps to the limits, and its
// cleaned content is itself a clean image of the same size (cleaning
// twice changes nothing).
func FuzzInspect(f *testing.F) {
	pic := quadrants(24, 16)
	p := encodePNG(f, pic)
	j := encodeJPEG(f, pic, 80)
	seeds := [][]byte{
		p,
		insertAfterIHDR(p, pngChunk("eXIf", exifTIFF(binary.LittleEndian, 6)), pngChunk("tEXt", []byte("a\x00b"))),
		j,
		insertAfterSOI(j, jpegSegment(0xe1, append([]byte("Exif\x00\x00"), exifTIFF(binary.BigEndian, 6)...)), jpegSegment(0xfe, []byte("hi"))),
		encodeJPEG(f, image.NewGray(image.Rect(0, 0, 9, 9)), 50),
		encodeGIF(f, pic),
		zeroPNG(f, 400, 300), // over the fuzz budget
		p[:len(p)/2],
		j[:len(j)-10],
		[]byte("%PDF-1.4\n"),
	}
	var g bytes.Buffer
	pal := color.Palette{color.Transparent, color.RGBA{1, 2, 3, 255}}
	_ = gif.EncodeAll(&g, &gif.GIF{Image: []*image.Paletted{image.NewPaletted(image.Rect(2, 2, 6, 6), pal), image.NewPaletted(image.Rect(0, 0, 8, 8), pal)}, Delay: []int{1, 1}, Config: image.Config{ColorModel: pal, Width: 8, Height: 8}})
	seeds = append(seeds, g.Bytes())
	for _, name := range []string{"testdata/video-001.lossy.webp"} {
		if w, err := os.ReadFile(name); err == nil {
			animated, _ := animatedWebP(w)
			seeds = append(seeds, w, animated)
		}
	}
	for _, s := range seeds {
		f.Add(s)
	}
	lim := Limits{MaxPixels: 1 << 16, ThumbSize: 32}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Inspect(bytes.NewReader(data), int64(len(data)), lim)
		if err != nil {
			if !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v is neither ErrDamaged nor ErrTooLarge", err)
			}
			if strings.Contains(err.Error(), "panic") {
				t.Fatalf("a panic was recovered: %v", err)
			}
			return
		}
		if r.Type == "" {
			t.Fatal("no type")
		}
		if r.Thumb == nil {
			if r.Width != 0 {
				t.Fatalf("%s %d×%d without a preview", r.Type, r.Width, r.Height)
			}
			return
		}
		if int64(r.Width)*int64(r.Height) > lim.MaxPixels || r.Width <= 0 || r.Height <= 0 {
			t.Fatalf("accepted %d×%d", r.Width, r.Height)
		}
		if r.ThumbWidth > 32 || r.ThumbHeight > 32 || r.ThumbWidth <= 0 || r.ThumbHeight <= 0 {
			t.Fatalf("preview %d×%d", r.ThumbWidth, r.ThumbHeight)
		}
		if r.Clean == nil {
			return
		}
		again, err := Inspect(bytes.NewReader(r.Clean), int64(len(r.Clean)), lim)
		if err != nil {
			t.Fatalf("the cleaned image is refused: %v", err)
		}
		if again.Type != r.Type || again.Width != r.Width || again.Height != r.Height {
			t.Fatalf("cleaned: %s %d×%d, was %s %d×%d", again.Type, again.Width, again.Height, r.Type, r.Width, r.Height)
		}
		if again.Clean != nil {
			t.Fatalf("cleaning the cleaned image changed it again (%d → %d bytes)", len(r.Clean), len(again.Clean))
		}
	})
}
