package media

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/draw"

	"chat/internal/exiforient"
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
	out := exiforient.Apply(dst, orientation)
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

// scale draws src into dst. Catmull-Rom alone costs in proportion to
// the source's pixels times the reduction (about 1 s for a 4000×3000
// photo to 320×240), so a large reduction first averages boxes of
// pixels down to between 2 and 4 times the target size (each source
// pixel read once: an exact area average, no aliasing), and
// Catmull-Rom makes the last step.
func scale(dst *image.RGBA, src image.Image) {
	sb, db := src.Bounds(), dst.Bounds()
	kx, ky := max(1, sb.Dx()/(2*db.Dx())), max(1, sb.Dy()/(2*db.Dy()))
	if kx*ky >= 4 {
		src = boxReduce(src, kx, ky)
		sb = src.Bounds()
	}
	draw.CatmullRom.Scale(dst, db, src, sb, draw.Src, nil)
}

// boxReduce returns src with each kx × ky box of pixels averaged into
// one (the boxes at the right and bottom edges may be smaller). It
// converts src to RGBA a strip of ky rows at a time, so it needs no
// full-size copy.
func boxReduce(src image.Image, kx, ky int) *image.RGBA {
	b := src.Bounds()
	w, h := (b.Dx()+kx-1)/kx, (b.Dy()+ky-1)/ky
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	strip := image.NewRGBA(image.Rect(0, 0, b.Dx(), ky))
	sums := make([]uint64, 4*w)
	for oy := 0; oy < h; oy++ {
		y0 := b.Min.Y + oy*ky
		rows := min(ky, b.Max.Y-y0)
		draw.Draw(strip, image.Rect(0, 0, b.Dx(), rows), src, image.Pt(b.Min.X, y0), draw.Src)
		clear(sums)
		for r := 0; r < rows; r++ {
			row := strip.Pix[r*strip.Stride : r*strip.Stride+4*b.Dx()]
			for ox := 0; ox < w; ox++ {
				s := sums[4*ox : 4*ox+4]
				box := row[4*ox*kx : 4*min((ox+1)*kx, b.Dx())]
				for i := 0; i < len(box); i += 4 {
					s[0] += uint64(box[i])
					s[1] += uint64(box[i+1])
					s[2] += uint64(box[i+2])
					s[3] += uint64(box[i+3])
				}
			}
		}
		line := out.Pix[oy*out.Stride:]
		for ox := 0; ox < w; ox++ {
			n := uint64(rows * (min((ox+1)*kx, b.Dx()) - ox*kx))
			for c := 0; c < 4; c++ {
				line[4*ox+c] = byte((sums[4*ox+c] + n/2) / n)
			}
		}
	}
	return out
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

// onCanvas returns the first frame of an animation (GIF, WebP) drawn
// at its place on the canvas: a frame may cover only part of it, the
// rest being transparent.
func onCanvas(frame image.Image, at image.Rectangle, cfg image.Config) image.Image {
	canvas := image.Rect(0, 0, cfg.Width, cfg.Height)
	if at == canvas && frame.Bounds() == canvas {
		return frame
	}
	out := image.NewRGBA(canvas)
	draw.Draw(out, canvas, image.NewUniform(color.Transparent), image.Point{}, draw.Src)
	draw.Draw(out, at, frame, frame.Bounds().Min, draw.Over)
	return out
}
