package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"chat/internal/exiforient"
)

// maxJPEGScans bounds the scans of a progressive JPEG: each scan is a
// pass over the whole image, so a small file of thousands of empty
// scans would cost minutes to decode. Encoders write about 10
// (libjpeg's default script) and rarely more than a few dozen.
const maxJPEGScans = 256

// tooManyScansError refuses a JPEG of more than maxJPEGScans scans.
type tooManyScansError struct{ scans int }

func (e *tooManyScansError) Error() string {
	return fmt.Sprintf("the image has more than %d scans, more than this server decodes", maxJPEGScans)
}
func (e *tooManyScansError) Unwrap() error { return ErrTooLarge }

// JPEG markers the cleaner looks at.
const (
	jpegSOI  = 0xd8
	jpegEOI  = 0xd9
	jpegSOS  = 0xda
	jpegAPP0 = 0xe0
	jpegAPP1 = 0xe1 // Exif, XMP
	jpegAPP2 = 0xe2 // ICC profile (kept), MPF and FlashPix (dropped)
	jpegAP13 = 0xed // Photoshop resources with IPTC
	jpegCOM  = 0xfe
)

var (
	exifHeader = []byte("Exif\x00\x00")
	iccHeader  = []byte("ICC_PROFILE\x00")
)

// cleanJPEG drops the APP1 segments (Exif and XMP), APP13 (IPTC), COM,
// APP2 segments other than the ICC profile (the MPF index of images
// appended after the end), and anything after the end of the image. It
// keeps every other segment and the entropy-coded data as they are. It
// returns the Exif orientation it found (1 when none) and, when that is
// not 1, writes it back in a minimal Exif segment of its own holding
// nothing else, so viewers still show the picture upright.
func cleanJPEG(data []byte) (clean []byte, orientation int, err error) {
	if len(data) < 2 || data[0] != 0xff || data[1] != jpegSOI {
		return nil, 1, errStructure
	}
	orientation = 1
	sawExif := false
	out := make([]byte, 0, len(data))
	out = append(out, data[:2]...)
	insertAt := len(out) // after SOI and the JFIF APP0 segments that must lead
	leading := true
	scans := 0
	p := 2
	for {
		// A marker: 0xff, maybe more 0xff fill bytes, the marker's code.
		if p >= len(data) {
			return nil, 1, io.ErrUnexpectedEOF
		}
		if data[p] != 0xff {
			// Stray bytes before a marker, which decoders skip (libjpeg
			// warns "extraneous bytes before marker"): dropped.
			p++
			continue
		}
		start := p
		for p < len(data) && data[p] == 0xff {
			p++
		}
		if p >= len(data) {
			return nil, 1, io.ErrUnexpectedEOF
		}
		m := data[p]
		p++
		switch {
		case m == jpegEOI:
			out = append(out, 0xff, jpegEOI)
			if orientation != 1 {
				out = insertOrientation(out, insertAt, orientation)
			}
			return out, orientation, nil
		case m == jpegSOI || m == 0:
			return nil, 1, errStructure
		case m == 0x01 || (m >= 0xd0 && m <= 0xd7): // no length
			out = append(out, data[start:p]...)
			continue
		}
		if len(data)-p < 2 {
			return nil, 1, io.ErrUnexpectedEOF
		}
		n := int(binary.BigEndian.Uint16(data[p:]))
		if n < 2 {
			return nil, 1, errStructure
		}
		end := p + n
		if end > len(data) {
			return nil, 1, io.ErrUnexpectedEOF
		}
		payload := data[p+2 : end]
		keep := true
		switch m {
		case jpegAPP1:
			keep = false
			if !sawExif && bytes.HasPrefix(payload, exifHeader) {
				sawExif = true
				orientation = exiforient.FromTIFF(payload[len(exifHeader):])
			}
		case jpegAPP2:
			keep = bytes.HasPrefix(payload, iccHeader)
		case jpegAP13, jpegCOM:
			keep = false
		}
		if keep {
			out = append(out, 0xff, m)
			out = append(out, data[p:end]...)
		}
		if leading {
			if m == jpegAPP0 && keep {
				insertAt = len(out)
			} else {
				leading = false
			}
		}
		p = end
		if m == jpegSOS {
			if scans++; scans > maxJPEGScans {
				return nil, 1, &tooManyScansError{scans}
			}
			// Entropy-coded data: up to the next marker, 0xff 0x00
			// being a stuffed 0xff and 0xff 0xd0-0xd7 restart markers.
			q := p
			for q < len(data) {
				if data[q] != 0xff {
					q++
					continue
				}
				if q+1 >= len(data) {
					return nil, 1, io.ErrUnexpectedEOF
				}
				if next := data[q+1]; next == 0 || (next >= 0xd0 && next <= 0xd7) {
					q += 2
					continue
				}
				break
			}
			out = append(out, data[p:q]...)
			p = q
		}
	}
}

// orientationSegment returns an APP1 Exif segment holding only an
// IFD0 with the Orientation tag: 34 bytes with nothing else to leak.
func orientationSegment(o int) []byte {
	seg := []byte{0xff, jpegAPP1, 0, 34}
	seg = append(seg, exifHeader...)
	seg = append(seg, 'M', 'M', 0, '*', 0, 0, 0, 8) // big-endian TIFF, IFD0 at 8
	seg = append(seg, 0, 1)                         // one entry
	seg = append(seg, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, byte(o), 0, 0)
	seg = append(seg, 0, 0, 0, 0) // no next IFD
	return seg
}

func insertOrientation(out []byte, at, o int) []byte {
	seg := orientationSegment(o)
	res := make([]byte, 0, len(out)+len(seg))
	res = append(res, out[:at]...)
	res = append(res, seg...)
	return append(res, out[at:]...)
}
