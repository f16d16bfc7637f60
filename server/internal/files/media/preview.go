package media

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/draw"
)

// thumbQuality is the JPEG quality of previews.
const thumbQuality = 80

type thumb struct {
	data []byte
	typ  string
	w, h int
}

// preview scales img to fit in size × size (never up), turns it upright
// as its EXIF orientation says, and encodes it: PNG when any pixel is
// not opaque, else JPEG.
func preview(img image.Image, orientation, size int) (thumb, error) {
	b := img.Bounds()
	w, h := fit(b.Dx(), b.Dy(), size)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	scale(dst, img)
	out := orient(dst, orientation)
	var buf bytes.Buffer
	t := thumb{w: out.Bounds().Dx(), h: out.Bounds().Dy()}
	if opaque(img) {
		t.typ = "image/jpeg"
		if err := jpeg.Encode(&buf, out, &jpeg.Options{Quality: thumbQuality}); err != nil {
			return thumb{}, fmt.Errorf("encoding the preview: %w", err)
		}
	} else {
		t.typ = "image/png"
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		if err := enc.Encode(&buf, out); err != nil {
			return thumb{}, fmt.Errorf("encoding the preview: %w", err)
		}
	}
	t.data = buf.Bytes()
	return t, nil
}

// fit returns w × h scaled down to fit in size × size, keeping the
// aspect ratio (at least 1 pixel each way); never scaled up.
func fit(w, h, size int) (int, int) {
	if w <= size && h <= size {
		return w, h
	}
	if w >= h {
		return size, max(1, int((int64(h)*int64(size)+int64(w)/2)/int64(w)))
	}
	return max(1, int((int64(w)*int64(size)+int64(h)/2)/int64(h))), size
}

// scale draws src into dst. A large reduction goes in two steps: a
// fast bilinear pass to twice the target size, then Catmull-Rom, whose
// cost grows with the reduction factor when it works on the original
// alone.
func scale(dst *image.RGBA, src image.Image) {
	sb, db := src.Bounds(), dst.Bounds()
	if sb.Dx() > 4*db.Dx() && sb.Dy() > 4*db.Dy() {
		mid := image.NewRGBA(image.Rect(0, 0, 2*db.Dx(), 2*db.Dy()))
		draw.ApproxBiLinear.Scale(mid, mid.Bounds(), src, sb, draw.Src, nil)
		src, sb = mid, mid.Bounds()
	}
	draw.CatmullRom.Scale(dst, db, src, sb, draw.Src, nil)
}

// opaque reports whether every pixel of img is fully opaque.
func opaque(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return o.Opaque()
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if _, _, _, a := img.At(x, y).RGBA(); a != 0xffff {
				return false
			}
		}
	}
	return true
}

// orient returns m turned as EXIF orientation o says to show it
// (1 = as stored; 2-8 mirror and/or rotate).
func orient(m *image.RGBA, o int) *image.RGBA {
	if o < 2 || o > 8 {
		return m
	}
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var dx, dy int
			switch o {
			case 2: // mirrored horizontally
				dx, dy = w-1-x, y
			case 3: // rotated 180°
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored vertically
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // rotated 90° clockwise to show
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // rotated 90° counter-clockwise to show
				dx, dy = y, w-1-x
			}
			i, j := m.PixOffset(b.Min.X+x, b.Min.Y+y), out.PixOffset(dx, dy)
			copy(out.Pix[j:j+4], m.Pix[i:i+4])
		}
	}
	return out
}

// gifCanvas returns a GIF's first frame on its logical screen: a frame
// may cover only part of it, the rest being transparent.
func gifCanvas(img image.Image, cfg image.Config) image.Image {
	screen := image.Rect(0, 0, cfg.Width, cfg.Height)
	if img.Bounds() == screen {
		return img
	}
	canvas := image.NewRGBA(screen)
	draw.Draw(canvas, screen, image.NewUniform(color.Transparent), image.Point{}, draw.Src)
	draw.Draw(canvas, img.Bounds(), img, img.Bounds().Min, draw.Over)
	return canvas
}
