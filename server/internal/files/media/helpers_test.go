package media

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

// Colours of the four quadrants of quadrants(): a picture whose
// orientation can be told from any corner.
var (
	topLeft     = color.RGBA{220, 30, 30, 255}  // red
	topRight    = color.RGBA{30, 200, 30, 255}  // green
	bottomLeft  = color.RGBA{30, 30, 220, 255}  // blue
	bottomRight = color.RGBA{240, 240, 40, 255} // yellow
)

// quadrants returns a w × h picture in four coloured quadrants.
func quadrants(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := topLeft
			switch {
			case x >= w/2 && y < h/2:
				c = topRight
			case x < w/2 && y >= h/2:
				c = bottomLeft
			case x >= w/2 && y >= h/2:
				c = bottomRight
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, m image.Image, quality int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngChunk returns a PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// insertAfterIHDR puts chunks after a PNG's IHDR (signature 8 bytes +
// IHDR 25).
func insertAfterIHDR(p []byte, chunks ...[]byte) []byte {
	out := append([]byte(nil), p[:33]...)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, p[33:]...)
}

// The secrets hand-built metadata carries, which must not survive.
const (
	secretMake = "LeakyPhone 3000"
	secretText = "Home, 12 Rue de la Paix"
)

// gpsLatitude is the GPS IFD's latitude, 48° 52' 9.31", as its bytes.
var gpsLatitude = []uint32{48, 1, 52, 1, 931, 100}

// exifTIFF builds the TIFF structure of an Exif block as a phone
// writes it: IFD0 with Make, Orientation (when not 0) and a pointer to
// a GPS IFD holding a latitude and its reference.
func exifTIFF(order byteOrder, orientation int) []byte {
	type entry struct {
		tag, typ uint16
		count    uint32
		value    []byte // inline when ≤ 4 bytes, else at an offset
	}
	ifd0 := []entry{{0x010f, 2, uint32(len(secretMake) + 1), append([]byte(secretMake), 0)}}
	if orientation != 0 {
		ifd0 = append(ifd0, entry{0x0112, 3, 1, order.AppendUint16(nil, uint16(orientation))})
	}
	ifd0 = append(ifd0, entry{0x8825, 4, 1, nil}) // GPS IFD offset, set below
	var lat []byte
	for _, v := range gpsLatitude {
		lat = order.AppendUint32(lat, v)
	}
	gps := []entry{{0x0001, 2, 2, []byte("N\x00")}, {0x0002, 5, 3, lat}}

	var b []byte
	if order.String() == binary.LittleEndian.String() {
		b = []byte("II*\x00")
	} else {
		b = []byte("MM\x00*")
	}
	b = order.AppendUint32(b, 8)
	size := func(es []entry) int { return 2 + 12*len(es) + 4 }
	gpsAt := 8 + size(ifd0) + len(secretMake) + 1
	if gpsAt%2 == 1 {
		gpsAt++
	}
	ifd0[len(ifd0)-1].value = order.AppendUint32(nil, uint32(gpsAt))
	write := func(es []entry, at int) {
		extra := at + size(es)
		var tail []byte
		b = order.AppendUint16(b, uint16(len(es)))
		for _, e := range es {
			b = order.AppendUint16(b, e.tag)
			b = order.AppendUint16(b, e.typ)
			b = order.AppendUint32(b, e.count)
			if len(e.value) <= 4 {
				v := append(append([]byte(nil), e.value...), make([]byte, 4-len(e.value))...)
				b = append(b, v...)
			} else {
				b = order.AppendUint32(b, uint32(extra+len(tail)))
				tail = append(tail, e.value...)
			}
		}
		b = order.AppendUint32(b, 0)
		b = append(b, tail...)
	}
	write(ifd0, 8)
	for len(b) < gpsAt {
		b = append(b, 0)
	}
	write(gps, gpsAt)
	return b
}

// latitudeBytes are the GPS latitude as exifTIFF writes it.
func latitudeBytes(order byteOrder) []byte {
	var lat []byte
	for _, v := range gpsLatitude {
		lat = order.AppendUint32(lat, v)
	}
	return lat
}

// jpegSegment returns a JPEG marker segment.
func jpegSegment(marker byte, payload []byte) []byte {
	s := []byte{0xff, marker}
	s = binary.BigEndian.AppendUint16(s, uint16(len(payload)+2))
	return append(s, payload...)
}

// insertAfterSOI puts segments right after a JPEG's SOI.
func insertAfterSOI(j []byte, segs ...[]byte) []byte {
	out := append([]byte(nil), j[:2]...)
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, j[2:]...)
}

// zeroPNG returns a w × h 1-bit greyscale PNG of zeros: a deflate
// bomb far smaller than its pixels. Its IDAT is one compressed block of
// zero rows repeated (a sync-flushed deflate block refers only to the
// zeros before it), so making it does not compress every row.
func zeroPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 1, 0, 0, 0, 0) // depth 1, greyscale, deflate, filter 0, no interlace
	rowLen := 1 + (w+7)/8              // the filter byte, then the pixels
	const rowsPerBlock = 100
	var block bytes.Buffer
	f, _ := flate.NewWriter(&block, flate.BestCompression)
	if _, err := f.Write(make([]byte, rowLen*rowsPerBlock)); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	idat := []byte{0x78, 0xda} // zlib header, best compression
	for y := 0; y+rowsPerBlock <= h; y += rowsPerBlock {
		idat = append(idat, block.Bytes()...)
	}
	if h%rowsPerBlock != 0 {
		t.Fatalf("test setup: h must be a multiple of %d", rowsPerBlock)
	}
	idat = append(idat, 0x03, 0x00) // an empty final block
	// The Adler-32 of n zeros: a = 1, b = n mod 65521.
	n := uint64(rowLen) * uint64(h)
	idat = binary.BigEndian.AppendUint32(idat, uint32(n%65521)<<16|1)
	out := append([]byte(nil), pngSignature...)
	out = append(out, pngChunk("IHDR", ihdr)...)
	out = append(out, pngChunk("IDAT", idat)...)
	return append(out, pngChunk("IEND", nil)...)
}

// near reports whether two colours differ by at most tol per channel
// (JPEG is lossy).
func near(a, b color.Color, tol int) bool {
	r1, g1, b1, a1 := a.RGBA()
	r2, g2, b2, a2 := b.RGBA()
	d := func(x, y uint32) bool { return abs(int(x>>8)-int(y>>8)) <= tol }
	return d(r1, r2) && d(g1, g2) && d(b1, b2) && d(a1, a2)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// decodeThumb decodes a Result's preview and checks its type and size.
func decodeThumb(t *testing.T, r *Result) image.Image {
	t.Helper()
	var m image.Image
	var err error
	switch r.ThumbType {
	case "image/jpeg":
		m, err = jpeg.Decode(bytes.NewReader(r.Thumb))
	case "image/png":
		m, err = png.Decode(bytes.NewReader(r.Thumb))
	default:
		t.Fatalf("preview type %q", r.ThumbType)
	}
	if err != nil {
		t.Fatalf("preview does not decode: %v", err)
	}
	if b := m.Bounds(); b.Dx() != r.ThumbWidth || b.Dy() != r.ThumbHeight {
		t.Fatalf("preview is %v, Result says %d×%d", b, r.ThumbWidth, r.ThumbHeight)
	}
	return m
}

func inspectBytes(t testing.TB, data []byte, lim Limits) (*Result, error) {
	t.Helper()
	return Inspect(bytes.NewReader(data), int64(len(data)), lim)
}

// byteOrder is binary.LittleEndian or binary.BigEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// animatedWebP returns an animation of two frames of the still WebP
// plain (a VP8 chunk), with an EXIF chunk, and that animation as it
// should be cleaned.
func animatedWebP(plain []byte) (upload, clean []byte) {
	vp8 := plain[12:]
	le24 := func(v int) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16)} }
	chunk := func(id string, data []byte) []byte {
		c := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
		c = append(c, data...)
		if len(data)%2 == 1 {
			c = append(c, 0)
		}
		return c
	}
	vp8x := append([]byte{webpAnimationFlag | webpEXIFFlag, 0, 0, 0}, le24(149)...)
	vp8x = append(vp8x, le24(102)...) // 150×103
	frame := append(append(append(append(le24(0), le24(0)...), le24(149)...), le24(102)...), le24(100)...)
	frame = append(append(frame, 0), vp8...)
	body := []byte("WEBP")
	body = append(body, chunk("VP8X", vp8x)...)
	body = append(body, chunk("ANIM", []byte{0, 0, 0, 0, 0, 0})...)
	body = append(body, chunk("ANMF", frame)...)
	body = append(body, chunk("ANMF", frame)...)
	clean = append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	clean = append(clean, body...)
	clean[20] &^= webpEXIFFlag
	body = append(body, chunk("EXIF", exifTIFF(binary.LittleEndian, 1))...)
	upload = append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	upload = append(upload, body...)
	return upload, clean
}
