package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"io"
)

// The cleaners below copy an image's bytes, leaving out the parts that
// carry metadata (EXIF with its GPS position, XMP, comments, text) and
// whatever follows the image's end. They never re-encode the pixels.
// Each runs after the image's header decoded, and before its pixels
// are; a structure it cannot walk is an error (the image is damaged).

var errStructure = errors.New("its structure is broken")

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// pngDropped are the PNG chunks that hold metadata: EXIF, text (any of
// which may be a location or a name) and the time of the last change.
var pngDropped = map[string]bool{"eXIf": true, "tEXt": true, "zTXt": true, "iTXt": true, "tIME": true}

// cleanPNG drops the metadata chunks; the others are copied as they
// are, with their CRCs, which cover one chunk each.
func cleanPNG(data []byte) ([]byte, error) {
	if !bytes.HasPrefix(data, pngSignature) {
		return nil, errStructure
	}
	out := make([]byte, 0, len(data))
	out = append(out, pngSignature...)
	for p := len(pngSignature); ; {
		if len(data)-p < 12 {
			return nil, io.ErrUnexpectedEOF
		}
		n := int64(binary.BigEndian.Uint32(data[p:]))
		end := int64(p) + 12 + n
		if n > 1<<31-1 {
			return nil, errStructure
		}
		if end > int64(len(data)) {
			return nil, io.ErrUnexpectedEOF
		}
		typ := string(data[p+4 : p+8])
		if !pngDropped[typ] {
			out = append(out, data[p:end]...)
		}
		p = int(end)
		if typ == "IEND" {
			return out, nil
		}
	}
}

// cleanGIF drops comment extensions and application extensions other
// than the looping ones (NETSCAPE2.0, ANIMEXTS1.0), which is where XMP
// and other metadata go.
func cleanGIF(data []byte) ([]byte, error) {
	if len(data) < 13 || (string(data[:6]) != "GIF87a" && string(data[:6]) != "GIF89a") {
		return nil, errStructure
	}
	p := 13
	if flags := data[10]; flags&0x80 != 0 {
		p += 3 << (flags&7 + 1)
	}
	if p > len(data) {
		return nil, io.ErrUnexpectedEOF
	}
	out := make([]byte, 0, len(data))
	out = append(out, data[:p]...)
	// subBlocks returns the end of the sub-blocks starting at q.
	subBlocks := func(q int) (int, error) {
		for {
			if q >= len(data) {
				return 0, io.ErrUnexpectedEOF
			}
			n := int(data[q])
			q++
			if n == 0 {
				return q, nil
			}
			q += n
		}
	}
	for {
		if p >= len(data) {
			return nil, io.ErrUnexpectedEOF
		}
		switch data[p] {
		case 0x3b: // trailer
			return append(out, 0x3b), nil
		case 0x21: // extension
			if p+2 > len(data) {
				return nil, io.ErrUnexpectedEOF
			}
			end, err := subBlocks(p + 2)
			if err != nil {
				return nil, err
			}
			keep := true
			switch data[p+1] {
			case 0xfe: // comment
				keep = false
			case 0xff: // application
				id := data[p+2 : min(end, p+14)]
				keep = bytes.HasPrefix(id, []byte("\x0bNETSCAPE2.0")) || bytes.HasPrefix(id, []byte("\x0bANIMEXTS1.0"))
			}
			if keep {
				out = append(out, data[p:end]...)
			}
			p = end
		case 0x2c: // image descriptor, its colour table, LZW code size, data
			q := p + 10
			if q > len(data) {
				return nil, io.ErrUnexpectedEOF
			}
			if flags := data[p+9]; flags&0x80 != 0 {
				q += 3 << (flags&7 + 1)
			}
			end, err := subBlocks(q + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, data[p:end]...)
			p = end
		default:
			return nil, errStructure
		}
	}
}

// WebP VP8X flags.
const (
	webpAnimationFlag = 1 << 1
	webpXMPFlag       = 1 << 2
	webpEXIFFlag      = 1 << 3
)

// cleanWebP drops the EXIF and XMP chunks, clears their flags in the
// VP8X chunk, and sets the RIFF size to what remains.
func cleanWebP(data []byte) ([]byte, error) {
	if len(data) < 12 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WEBP" {
		return nil, errStructure
	}
	riffEnd := 8 + int64(binary.LittleEndian.Uint32(data[4:]))
	if riffEnd > int64(len(data)) {
		return nil, io.ErrUnexpectedEOF
	}
	out := make([]byte, 0, len(data))
	out = append(out, data[:12]...)
	vp8x := -1
	for p := int64(12); p < riffEnd; {
		if riffEnd-p < 8 {
			return nil, errStructure
		}
		n := int64(binary.LittleEndian.Uint32(data[p+4:]))
		end := p + 8 + n + n&1
		if end > riffEnd {
			if p+8+n != riffEnd { // an odd last chunk may miss its padding
				return nil, errStructure
			}
			end = riffEnd
		}
		switch string(data[p : p+4]) {
		case "EXIF", "XMP ":
		case "VP8X":
			vp8x = len(out)
			out = append(out, data[p:end]...)
		default:
			out = append(out, data[p:end]...)
		}
		p = end
	}
	if vp8x >= 0 && len(out) > vp8x+8 {
		out[vp8x+8] &^= webpEXIFFlag | webpXMPFlag
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out, nil
}

// webpAnimated reports whether a WebP's VP8X chunk says it is animated.
func webpAnimated(data []byte) bool {
	return len(data) >= 21 && string(data[12:16]) == "VP8X" && data[20]&webpAnimationFlag != 0
}

// webpFirstFrame returns the first frame of an animated WebP as a
// still WebP of its own, and where it goes on the canvas: the
// ANMF chunk's frame data (an optional ALPH chunk, then VP8 or VP8L)
// under a VP8X header of the frame's size.
func webpFirstFrame(data []byte) (still []byte, at image.Rectangle, err error) {
	for p := int64(12); p+8 <= int64(len(data)); {
		n := int64(binary.LittleEndian.Uint32(data[p+4:]))
		end := p + 8 + n
		if end > int64(len(data)) {
			return nil, image.Rectangle{}, io.ErrUnexpectedEOF
		}
		if string(data[p:p+4]) != "ANMF" {
			p = end + n&1
			continue
		}
		frame := data[p+8 : end]
		if len(frame) < 16 {
			return nil, image.Rectangle{}, errStructure
		}
		le24 := func(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 }
		x, y := 2*le24(frame[0:]), 2*le24(frame[3:])
		w, h := le24(frame[6:])+1, le24(frame[9:])+1
		sub := frame[16:]
		var flags byte
		if bytes.HasPrefix(sub, []byte("ALPH")) {
			flags = 1 << 4
		}
		vp8x := []byte{flags, 0, 0, 0, byte(w - 1), byte((w - 1) >> 8), byte((w - 1) >> 16), byte(h - 1), byte((h - 1) >> 8), byte((h - 1) >> 16)}
		still = []byte("RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00")
		still = append(still, vp8x...)
		still = append(still, sub...)
		binary.LittleEndian.PutUint32(still[4:], uint32(len(still)-8))
		return still, image.Rect(x, y, x+w, y+h), nil
	}
	return nil, image.Rectangle{}, errors.New("an animation without frames")
}
