// Package exiforient reads the Exif Orientation tag and turns a picture
// the way it says, for the server (which applies it to an image's size
// and preview, and keeps it in the stored original) and the app (which
// applies it to the full-size view), so the two agree.
package exiforient

import (
	"encoding/binary"
	"image"
)

// FromTIFF reads tag 0x0112 (Orientation) of IFD0 in the TIFF structure
// of an Exif segment (after its "Exif\0\0" header); 1 (upright) when it
// is missing or not one of the 8 orientations.
func FromTIFF(tiff []byte) int {
	if len(tiff) < 8 {
		return 1
	}
	var order binary.ByteOrder
	switch string(tiff[:4]) {
	case "II*\x00":
		order = binary.LittleEndian
	case "MM\x00*":
		order = binary.BigEndian
	default:
		return 1
	}
	ifd := int64(order.Uint32(tiff[4:]))
	if ifd < 8 || ifd+2 > int64(len(tiff)) {
		return 1
	}
	count := int64(order.Uint16(tiff[ifd:]))
	for i := int64(0); i < count; i++ {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(tiff)) {
			return 1
		}
		if order.Uint16(tiff[e:]) != 0x0112 {
			continue
		}
		// SHORT (3), count 1: the value is in the first 2 bytes of the
		// value field.
		if order.Uint16(tiff[e+2:]) != 3 || order.Uint32(tiff[e+4:]) != 1 {
			return 1
		}
		if o := int(order.Uint16(tiff[e+8:])); o >= 1 && o <= 8 {
			return o
		}
		return 1
	}
	return 1
}

// Apply returns m turned as orientation o says to show it (1 = as
// stored; 2-8 mirror and/or rotate); m itself for 1.
func Apply(m *image.RGBA, o int) *image.RGBA {
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
