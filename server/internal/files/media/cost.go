package media

import (
	"encoding/binary"
	"image"
	"image/color"
)

// decodeCost estimates the bytes of memory decoding an image takes
// (its pixels as the decoder holds them, and the decoder's own
// buffers), from its header, for Go's decoders.
func decodeCost(data []byte, typ string, cfg image.Config) int64 {
	px := int64(cfg.Width) * int64(cfg.Height)
	// The preview's own buffers: a strip of rows for the box average,
	// or a canvas for an animation's first frame.
	const canvas = 4
	switch typ {
	case "image/png":
		per := int64(pngBytesPerPixel(cfg.ColorModel))
		if len(data) > 28 && data[28] == 1 {
			// Adam7: each pass is decoded into an image of its own,
			// then copied into the whole.
			per *= 2
		}
		return px * per
	case "image/jpeg":
		return jpegCost(data, px)
	case "image/gif":
		return px * (1 + canvas) // the paletted frame, the canvas
	case "image/webp":
		// Lossy takes 2.5 bytes (YCbCr 4:2:0 and alpha), lossless 8
		// (ARGB words, then NRGBA): counted as lossless, whichever
		// chunk (maybe inside an animation frame) holds the image.
		var per int64 = 8
		if webpAnimated(data) {
			per += canvas
		}
		return px * per
	}
	return px * 4
}

func pngBytesPerPixel(m color.Model) int {
	switch m {
	case color.GrayModel:
		return 1
	case color.Gray16Model:
		return 2
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 4
}

// jpegCost returns the bytes Go's JPEG decoder takes for px pixels of
// data, from its frame header: one byte per sample of each component
// at its sampling, four more (an int32 per coefficient) for a
// progressive image's coefficients, and for CMYK the 4-byte image the
// planes are converted to.
func jpegCost(data []byte, px int64) int64 {
	sof, progressive := jpegFrameHeader(data)
	if len(sof) < 6 || sof[5] == 0 || len(sof) < 6+3*int(sof[5]) {
		return px * 20 // unknown: as much as a progressive CMYK image
	}
	n := int(sof[5])
	hmax, vmax := 1, 1
	for i := 0; i < n; i++ {
		hv := sof[6+3*i+1]
		hmax, vmax = max(hmax, int(hv>>4)), max(vmax, int(hv&15))
	}
	var blocks int64 // samples per pixel, times hmax × vmax
	for i := 0; i < n; i++ {
		hv := sof[6+3*i+1]
		blocks += int64(hv>>4) * int64(hv&15)
	}
	per := int64(1)
	if progressive {
		per += 4
	}
	cost := px * blocks * per / int64(hmax*vmax)
	if n == 4 {
		cost += 4 * px
	}
	return max(cost, px)
}

// jpegFrameHeader returns the payload of a JPEG's SOFn segment and
// whether it is progressive; nil when none comes before the first scan.
func jpegFrameHeader(data []byte) ([]byte, bool) {
	for p := 2; p+4 <= len(data); {
		if data[p] != 0xff {
			p++
			continue
		}
		m := data[p+1]
		if m == 0xff || m == 0x01 || (m >= 0xd0 && m <= 0xd9) {
			p += 2
			continue
		}
		n := int(binary.BigEndian.Uint16(data[p+2:]))
		if m == jpegSOS || n < 2 || p+2+n > len(data) {
			return nil, false
		}
		if m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc {
			return data[p+4 : p+2+n], m == 0xc2 || m == 0xc6 || m == 0xca || m == 0xce
		}
		p += 2 + n
	}
	return nil, false
}
