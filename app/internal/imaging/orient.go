package imaging

import (
	"encoding/binary"

	"chat/internal/exiforient"
)

// JPEG markers read to find the Exif orientation.
const (
	markerSOI  = 0xd8
	markerAPP1 = 0xe1
	markerSOS  = 0xda
)

// jpegOrientation returns the Exif Orientation (1..8) of a JPEG, 1 when
// data is not a JPEG or says nothing. The server keeps a minimal APP1
// Exif segment with only this tag in the stored original (and already
// applies it to the file's Width/Height and to the preview), so the
// full-size view must apply it too.
func jpegOrientation(data []byte) int {
	if len(data) < 4 || data[0] != 0xff || data[1] != markerSOI {
		return 1
	}
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xff {
			return 1
		}
		marker := data[i+1]
		if marker == 0xff { // fill byte
			i++
			continue
		}
		if marker == markerSOS || (marker >= 0xd0 && marker <= 0xd9) {
			return 1 // the scan starts: no Exif before it
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if n < 2 || i+2+n > len(data) {
			return 1
		}
		payload := data[i+4 : i+2+n]
		if marker == markerAPP1 && len(payload) >= 6 && string(payload[:6]) == "Exif\x00\x00" {
			return exiforient.FromTIFF(payload[6:])
		}
		i += 2 + n
	}
	return 1
}
