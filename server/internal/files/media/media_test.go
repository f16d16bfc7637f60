package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/webp"
)

func TestPNGWithGPSExifComesBackWithoutIt(t *testing.T) {
	pic := quadrants(64, 48)
	orig := encodePNG(t, pic)
	for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		exif := exifTIFF(order, 0)
		upload := insertAfterIHDR(orig,
			pngChunk("eXIf", exif),
			pngChunk("tEXt", []byte("Comment\x00"+secretText)),
			pngChunk("tIME", []byte{0x07, 0xea, 12, 2, 6, 0, 0}),
			pngChunk("gAMA", binary.BigEndian.AppendUint32(nil, 45455)), // kept: it changes how pixels show
		)
		if !bytes.Contains(upload, latitudeBytes(order)) {
			t.Fatal("test setup: the upload does not hold the latitude")
		}
		r, err := inspectBytes(t, upload, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Type != "image/png" || r.Width != 64 || r.Height != 48 {
			t.Fatalf("got %s %d×%d, want image/png 64×48", r.Type, r.Width, r.Height)
		}
		if r.Clean == nil {
			t.Fatal("Clean is nil: the metadata was not stripped")
		}
		for _, leak := range [][]byte{[]byte("eXIf"), []byte("tEXt"), []byte("tIME"), []byte(secretMake), []byte(secretText), latitudeBytes(order)} {
			if bytes.Contains(r.Clean, leak) {
				t.Errorf("the cleaned PNG still holds %q", leak)
			}
		}
		if !bytes.Contains(r.Clean, []byte("gAMA")) {
			t.Error("the gAMA chunk was dropped")
		}
		// The cleaned file decodes (CRCs valid) to the same pixels.
		got, err := png.Decode(bytes.NewReader(r.Clean))
		if err != nil {
			t.Fatalf("the cleaned PNG does not decode: %v", err)
		}
		for y := 0; y < 48; y++ {
			for x := 0; x < 64; x++ {
				if !near(got.At(x, y), pic.At(x, y), 0) {
					t.Fatalf("pixel %d,%d is %v, want %v", x, y, got.At(x, y), pic.At(x, y))
				}
			}
		}
	}
}

func TestPNGWithoutMetadataIsStoredAsItIs(t *testing.T) {
	r, err := inspectBytes(t, encodePNG(t, quadrants(10, 10)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Clean != nil {
		t.Errorf("Clean = %d bytes, want nil (nothing to strip)", len(r.Clean))
	}
	if r.ThumbType != "image/jpeg" || r.ThumbWidth != 10 || r.ThumbHeight != 10 {
		t.Errorf("preview %s %d×%d, want an opaque image's JPEG, 10×10 (never scaled up)", r.ThumbType, r.ThumbWidth, r.ThumbHeight)
	}
}

func TestJPEGExifGPSGoneOrientationKept(t *testing.T) {
	// Stored 400×300 in quadrants; orientation 6 says "turn it 90°
	// clockwise to show it": displayed 300×400, its top-left corner
	// being the stored bottom-left (blue).
	pic := quadrants(400, 300)
	orig := encodeJPEG(t, pic, 95)
	icc := jpegSegment(0xe2, append([]byte("ICC_PROFILE\x00\x01\x01"), bytes.Repeat([]byte{7}, 64)...))
	adobe := jpegSegment(0xee, []byte("Adobe\x00\x64\x00\x00\x00\x00\x01"))
	for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		upload := insertAfterSOI(orig,
			jpegSegment(0xe0, []byte("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")),
			jpegSegment(0xe1, append([]byte("Exif\x00\x00"), exifTIFF(order, 6)...)),
			jpegSegment(0xe1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>"+secretText+"</x:xmpmeta>")),
			icc,
			jpegSegment(0xe2, []byte("MPF\x00II*\x00")),
			jpegSegment(0xed, []byte("Photoshop 3.0\x008BIM"+secretText)),
			jpegSegment(0xfe, []byte(secretText)),
			adobe,
		)
		upload = append(upload, []byte("trailing video "+secretText)...)

		r, err := inspectBytes(t, upload, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Type != "image/jpeg" || r.Width != 300 || r.Height != 400 {
			t.Fatalf("got %s %d×%d, want image/jpeg 300×400 (turned)", r.Type, r.Width, r.Height)
		}
		if r.Clean == nil {
			t.Fatal("Clean is nil")
		}
		for _, leak := range [][]byte{[]byte(secretMake), []byte(secretText), latitudeBytes(order), []byte("xmpmeta"), []byte("MPF\x00")} {
			if bytes.Contains(r.Clean, leak) {
				t.Errorf("the cleaned JPEG still holds %q", leak)
			}
		}
		for name, kept := range map[string][]byte{"JFIF APP0": []byte("JFIF\x00"), "ICC APP2": icc, "Adobe APP14": adobe} {
			if !bytes.Contains(r.Clean, kept) {
				t.Errorf("the cleaned JPEG lost its %s", name)
			}
		}
		// The orientation survives in a minimal Exif segment of its own,
		// right after the JFIF APP0.
		seg := orientationSegment(6)
		if i := bytes.Index(r.Clean, seg); i != 2+18 {
			t.Errorf("the orientation segment is at %d, want 20 (after APP0)", i)
		}
		if _, o, err := cleanJPEG(r.Clean); err != nil || o != 6 {
			t.Errorf("the cleaned JPEG's orientation = %d, %v; want 6", o, err)
		}
		if !bytes.HasSuffix(r.Clean, []byte{0xff, 0xd9}) {
			t.Error("the cleaned JPEG does not end at its EOI")
		}
		// Pixels unchanged: the entropy-coded data was copied, not re-encoded.
		want, _ := jpeg.Decode(bytes.NewReader(orig))
		got, err := jpeg.Decode(bytes.NewReader(r.Clean))
		if err != nil {
			t.Fatalf("the cleaned JPEG does not decode: %v", err)
		}
		if !bytes.Equal(got.(*image.YCbCr).Y, want.(*image.YCbCr).Y) || !bytes.Equal(got.(*image.YCbCr).Cr, want.(*image.YCbCr).Cr) {
			t.Error("the cleaned JPEG's pixels differ from the upload's")
		}

		th := decodeThumb(t, r)
		if r.ThumbType != "image/jpeg" || r.ThumbWidth != 240 || r.ThumbHeight != 320 {
			t.Fatalf("preview %s %d×%d, want image/jpeg 240×320", r.ThumbType, r.ThumbWidth, r.ThumbHeight)
		}
		corners := []struct {
			x, y int
			want color.RGBA
		}{{4, 4, bottomLeft}, {235, 4, topLeft}, {4, 315, bottomRight}, {235, 315, topRight}}
		for _, c := range corners {
			if got := th.At(c.x, c.y); !near(got, c.want, 24) {
				t.Errorf("preview pixel %d,%d is %v, want %v (turned upright)", c.x, c.y, got, c.want)
			}
		}
	}
}

func TestJPEGOrientations(t *testing.T) {
	// Each orientation's displayed top-left corner, of quadrants().
	want := map[int]color.RGBA{1: topLeft, 2: topRight, 3: bottomRight, 4: bottomLeft, 5: topLeft, 6: bottomLeft, 7: bottomRight, 8: topRight}
	orig := encodeJPEG(t, quadrants(80, 40), 95)
	for o := 1; o <= 8; o++ {
		upload := insertAfterSOI(orig, jpegSegment(0xe1, append([]byte("Exif\x00\x00"), exifTIFF(binary.BigEndian, o)...)))
		r, err := inspectBytes(t, upload, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		w, h := 80, 40
		if o >= 5 {
			w, h = 40, 80
		}
		if r.Width != w || r.Height != h || r.ThumbWidth != w || r.ThumbHeight != h {
			t.Errorf("orientation %d: %d×%d, preview %d×%d; want %d×%d", o, r.Width, r.Height, r.ThumbWidth, r.ThumbHeight, w, h)
		}
		if got := decodeThumb(t, r).At(2, 2); !near(got, want[o], 24) {
			t.Errorf("orientation %d: top-left is %v, want %v", o, got, want[o])
		}
		_, kept, _ := cleanJPEG(r.Clean)
		if kept != o {
			t.Errorf("orientation %d: the cleaned file says %d", o, kept)
		}
		if o == 1 && bytes.Contains(r.Clean, []byte("Exif")) {
			t.Error("orientation 1: an Exif segment was written back")
		}
	}
}

func TestTruncatedImagesAreDamaged(t *testing.T) {
	pic := quadrants(200, 150)
	for name, full := range map[string][]byte{
		"png":  encodePNG(t, pic),
		"jpeg": encodeJPEG(t, pic, 90),
		"gif":  encodeGIF(t, pic),
	} {
		for _, keep := range []int{len(full) / 2, len(full) - 3, 40} {
			_, err := inspectBytes(t, full[:keep], Limits{})
			if !errors.Is(err, ErrDamaged) {
				t.Errorf("%s cut to %d of %d bytes: err = %v, want ErrDamaged", name, keep, len(full), err)
				continue
			}
			if !strings.HasPrefix(err.Error(), "the image is damaged or incomplete: ") {
				t.Errorf("%s: error %q is not a sentence for the user", name, err)
			}
		}
	}
	_, err := inspectBytes(t, encodePNG(t, pic)[:len(encodePNG(t, pic))/2], Limits{})
	if want := "the image is damaged or incomplete: unexpected EOF"; err == nil || err.Error() != want {
		t.Errorf("truncated PNG: %v, want %q", err, want)
	}
}

func TestDamagedPNGChecksum(t *testing.T) {
	p := encodePNG(t, quadrants(20, 20))
	p[40] ^= 0xff // inside IDAT: its CRC no longer matches
	if _, err := inspectBytes(t, p, Limits{}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("err = %v, want ErrDamaged", err)
	}
}

func TestBombHeaderIsRefusedBeforeDecoding(t *testing.T) {
	// An IHDR claiming 100000×100000 and almost nothing after it.
	ihdr := binary.BigEndian.AppendUint32(nil, 100000)
	ihdr = binary.BigEndian.AppendUint32(ihdr, 100000)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	bomb := append(append([]byte(nil), pngSignature...), pngChunk("IHDR", ihdr)...)
	bomb = append(bomb, pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00})...)
	bomb = append(bomb, pngChunk("IEND", nil)...)
	_, err := inspectBytes(t, bomb, Limits{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if want := "the image is 100000×100000 pixels, more than the 50 megapixels this server takes"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestDeflateBombIsRefusedQuicklyWithoutItsPixels(t *testing.T) {
	// 20000×20000 pixels (400 megapixels, 50 MB of 1-bit rows) in
	// tens of kilobytes.
	bomb := zeroPNG(t, 20000, 20000)
	t.Logf("bomb: %d bytes for 20000×20000 pixels", len(bomb))
	if len(bomb) > 200<<10 {
		t.Fatalf("test setup: the bomb is %d bytes", len(bomb))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := inspectBytes(t, bomb, Limits{})
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 2<<20 {
		t.Errorf("refusing the bomb allocated %d bytes, want < 2 MiB", allocated)
	}
	if took > time.Second {
		t.Errorf("refusing the bomb took %v", took)
	}

	// Within a tighter budget, an image just over it is refused and one
	// at it is taken.
	small := zeroPNG(t, 500, 200)
	if _, err := inspectBytes(t, small, Limits{MaxPixels: 99_999}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("500×200 with MaxPixels 99999: err = %v, want ErrTooLarge", err)
	} else if want := "the image is 500×200 pixels, more than the 99999 pixels this server takes"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if _, err := inspectBytes(t, small, Limits{MaxPixels: 100_000}); err != nil {
		t.Errorf("500×200 with MaxPixels 100000: %v", err)
	}
}

func TestZeroSizedImageIsRefused(t *testing.T) {
	for _, m := range []image.Image{image.NewRGBA(image.Rect(0, 0, 0, 5)), image.NewGray(image.Rect(0, 0, 5, 0))} {
		var b bytes.Buffer
		_ = gif.Encode(&b, m, nil) // GIF writes a zero size; PNG refuses to
		if b.Len() == 0 {
			continue
		}
		if _, err := inspectBytes(t, b.Bytes(), Limits{}); !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%v: err = %v, want a refusal", m.Bounds(), err)
		}
	}
	ihdr := append(binary.BigEndian.AppendUint32(nil, 0), 0, 0, 0, 10, 8, 2, 0, 0, 0)
	p := append(append([]byte(nil), pngSignature...), pngChunk("IHDR", ihdr)...)
	if _, err := inspectBytes(t, p, Limits{}); !errors.Is(err, ErrDamaged) {
		t.Errorf("PNG 0×10: err = %v, want ErrDamaged", err)
	}
}

func encodeGIF(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestGIFFirstFramePreviewAndMetadata(t *testing.T) {
	pal := color.Palette{color.RGBA{200, 0, 0, 255}, color.RGBA{0, 0, 200, 255}, color.RGBA{0, 200, 0, 255}}
	frame := func(i uint8) *image.Paletted {
		m := image.NewPaletted(image.Rect(0, 0, 500, 250), pal)
		for j := range m.Pix {
			m.Pix[j] = i
		}
		return m
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: []*image.Paletted{frame(0), frame(1), frame(2)}, Delay: []int{10, 10, 10}}); err != nil {
		t.Fatal(err)
	}
	orig := b.Bytes()
	// After the header, screen and global table if any: a comment and
	// an XMP application extension.
	at := 13
	if orig[10]&0x80 != 0 {
		at += 3 << (orig[10]&7 + 1)
	}
	comment := append([]byte{0x21, 0xfe, byte(len(secretText))}, secretText...)
	comment = append(comment, 0)
	xmp := append([]byte{0x21, 0xff, 11}, "XMP DataXMP"...)
	xmp = append(xmp, byte(len(secretText)))
	xmp = append(append(xmp, secretText...), 0)
	upload := append(append(append(append([]byte(nil), orig[:at]...), comment...), xmp...), orig[at:]...)
	if _, err := gif.DecodeAll(bytes.NewReader(upload)); err != nil {
		t.Fatalf("test setup: %v", err)
	}

	r, err := inspectBytes(t, upload, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != "image/gif" || r.Width != 500 || r.Height != 250 {
		t.Fatalf("got %s %d×%d", r.Type, r.Width, r.Height)
	}
	if !bytes.Equal(r.Clean, orig) {
		t.Errorf("the cleaned GIF (%d bytes) is not the GIF without its comment and XMP (%d bytes)", len(r.Clean), len(orig))
	}
	if !bytes.Contains(r.Clean, []byte("NETSCAPE2.0")) {
		t.Error("the looping extension was dropped")
	}
	all, err := gif.DecodeAll(bytes.NewReader(r.Clean))
	if err != nil || len(all.Image) != 3 {
		t.Fatalf("the cleaned GIF: %v", err)
	}
	th := decodeThumb(t, r)
	if r.ThumbType != "image/jpeg" || r.ThumbWidth != 320 || r.ThumbHeight != 160 {
		t.Errorf("preview %s %d×%d, want image/jpeg 320×160", r.ThumbType, r.ThumbWidth, r.ThumbHeight)
	}
	if got := th.At(160, 80); !near(got, pal[0], 16) {
		t.Errorf("preview colour %v, want the first frame's %v", got, pal[0])
	}
}

func TestGIFFrameSmallerThanScreen(t *testing.T) {
	pal := color.Palette{color.RGBA{0, 0, 200, 255}}
	m := image.NewPaletted(image.Rect(10, 10, 30, 30), pal)
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: []*image.Paletted{m}, Delay: []int{0}, Config: image.Config{ColorModel: pal, Width: 40, Height: 40}}); err != nil {
		t.Fatal(err)
	}
	r, err := inspectBytes(t, b.Bytes(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	th := decodeThumb(t, r)
	if r.ThumbType != "image/png" || r.ThumbWidth != 40 || r.ThumbHeight != 40 {
		t.Fatalf("preview %s %d×%d, want image/png 40×40 (the screen, transparent around the frame)", r.ThumbType, r.ThumbWidth, r.ThumbHeight)
	}
	if _, _, _, a := th.At(2, 2).RGBA(); a != 0 {
		t.Errorf("outside the frame alpha = %d, want 0", a)
	}
	if !near(th.At(20, 20), pal[0], 0) {
		t.Errorf("inside the frame %v", th.At(20, 20))
	}
}

func TestTransparentPNGGetsPNGPreview(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 640, 320))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+3] = 255, 255
	}
	m.SetNRGBA(639, 319, color.NRGBA{}) // a single transparent pixel
	r, err := inspectBytes(t, encodePNG(t, m), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	decodeThumb(t, r)
	if r.ThumbType != "image/png" || r.ThumbWidth != 320 || r.ThumbHeight != 160 {
		t.Errorf("preview %s %d×%d, want image/png 320×160", r.ThumbType, r.ThumbWidth, r.ThumbHeight)
	}
	// And an opaque one a JPEG, within a smaller ThumbSize.
	m.SetNRGBA(639, 319, color.NRGBA{255, 0, 0, 255})
	r, err = inspectBytes(t, encodePNG(t, m), Limits{ThumbSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if th := decodeThumb(t, r); r.ThumbType != "image/jpeg" || r.ThumbWidth != 100 || r.ThumbHeight != 50 || !near(th.At(50, 25), color.RGBA{255, 0, 0, 255}, 8) {
		t.Errorf("preview %s %d×%d, want image/jpeg 100×50, red", r.ThumbType, r.ThumbWidth, r.ThumbHeight)
	}
}

func TestWebP(t *testing.T) {
	rose, err := os.ReadFile("testdata/yellow_rose.lossy-with-alpha.webp")
	if err != nil {
		t.Fatal(err)
	}
	// Add EXIF and XMP chunks after the VP8X one, with their flags, as a
	// camera app writes them.
	chunk := func(id string, data []byte) []byte {
		c := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
		c = append(c, data...)
		if len(data)%2 == 1 {
			c = append(c, 0)
		}
		return c
	}
	const vp8xEnd = 12 + 8 + 10
	upload := append([]byte(nil), rose[:vp8xEnd]...)
	upload = append(upload, chunk("EXIF", exifTIFF(binary.LittleEndian, 1))...)
	upload = append(upload, chunk("XMP ", []byte("<x:xmpmeta>"+secretText+"</x:xmpmeta>"))...)
	upload = append(upload, rose[vp8xEnd:]...)
	upload[20] |= webpEXIFFlag | webpXMPFlag
	binary.LittleEndian.PutUint32(upload[4:], uint32(len(upload)-8))
	if _, err := webp.Decode(bytes.NewReader(upload)); err != nil {
		t.Fatalf("test setup: %v", err)
	}

	r, err := inspectBytes(t, upload, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != "image/webp" || r.Width != 400 || r.Height != 301 {
		t.Fatalf("got %s %d×%d", r.Type, r.Width, r.Height)
	}
	if !bytes.Equal(r.Clean, rose) {
		t.Errorf("the cleaned WebP (%d bytes) is not the WebP without EXIF and XMP (%d bytes)", len(r.Clean), len(rose))
	}
	decodeThumb(t, r)
	if r.ThumbType != "image/png" || r.ThumbWidth != 320 || r.ThumbHeight != 241 {
		t.Errorf("preview %s %d×%d, want image/png 320×241 (it has alpha)", r.ThumbType, r.ThumbWidth, r.ThumbHeight)
	}

	plain, err := os.ReadFile("testdata/video-001.lossy.webp")
	if err != nil {
		t.Fatal(err)
	}
	r, err = inspectBytes(t, plain, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Clean != nil || r.ThumbType != "image/jpeg" || r.Width != 150 || r.Height != 103 {
		t.Errorf("plain WebP: Clean %d bytes, %s, %d×%d", len(r.Clean), r.ThumbType, r.Width, r.Height)
	}
	if _, err := inspectBytes(t, plain[:len(plain)/2], Limits{}); !errors.Is(err, ErrDamaged) {
		t.Errorf("truncated WebP: err = %v, want ErrDamaged", err)
	}
}

func TestOtherFilesAreTypeOnly(t *testing.T) {
	random := make([]byte, 4096)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rnd.UintN(256))
	}
	random[0] = 0xf1 // not the start of any signature
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"pdf", "application/pdf", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")},
		{"random", "application/octet-stream", random},
		{"text", "text/plain; charset=utf-8", []byte("hello, world\n")},
		{"zip", "application/zip", []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00")},
		{"heic", "image/heic", append([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), random[:100]...)},
		{"empty", "text/plain; charset=utf-8", nil},
		// Never served as an image or a page: no script runs from a file.
		{"svg", "text/xml; charset=utf-8", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)},
		{"html", "text/html; charset=utf-8", []byte("<!DOCTYPE html><script>alert(1)</script>")},
	} {
		r, err := inspectBytes(t, c.data, Limits{})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if r.Type != c.want || r.Clean != nil || r.Thumb != nil || r.Width != 0 || r.Height != 0 {
			t.Errorf("%s: %+v, want type %s only", c.name, *r, c.want)
		}
	}
}

func TestPNGNamedJPEGIsSniffed(t *testing.T) {
	// The bytes decide, whatever the name or the client says: a PNG
	// is decoded as a PNG, and bytes that start like one but are not
	// are refused, never passed on as an image.
	p := encodePNG(t, quadrants(8, 8))
	r, err := inspectBytes(t, p, Limits{})
	if err != nil || r.Type != "image/png" {
		t.Fatalf("%v %v", r, err)
	}
	fake := append(append([]byte(nil), p[:8]...), "not a png at all"...)
	if _, err := inspectBytes(t, fake, Limits{}); !errors.Is(err, ErrDamaged) {
		t.Errorf("fake PNG: err = %v, want ErrDamaged", err)
	}
}

func TestZeroPNGIsAValidImage(t *testing.T) {
	// The bombs above are real PNGs: a small one decodes to black.
	p := zeroPNG(t, 300, 200)
	m, err := png.Decode(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	if m.Bounds().Dx() != 300 || !near(m.At(299, 199), color.Black, 0) {
		t.Fatalf("%v %v", m.Bounds(), m.At(299, 199))
	}
	r, err := inspectBytes(t, p, Limits{})
	if err != nil || r.ThumbWidth != 300 || r.ThumbHeight != 200 {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestGIFWithManyFramesDecodesOnlyTheFirst(t *testing.T) {
	// 5000 frames of 200×200: 200 megapixels in all, each within the
	// budget. Only the first is decoded; the rest are copied as bytes.
	pal := color.Palette{color.RGBA{0, 0, 200, 255}, color.RGBA{200, 0, 0, 255}}
	first := image.NewPaletted(image.Rect(0, 0, 200, 200), pal)
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: []*image.Paletted{first, first}, Delay: []int{5, 5}}); err != nil {
		t.Fatal(err)
	}
	one := b.Bytes()
	// one = header … frame … frame … trailer: repeat the last frame
	// (graphic control extension and image) up to 5000.
	frameAt := bytes.LastIndex(one, []byte{0x21, 0xf9, 0x04})
	frame := one[frameAt : len(one)-1]
	many := append([]byte(nil), one[:frameAt]...)
	for i := 0; i < 4999; i++ {
		many = append(many, frame...)
	}
	many = append(many, 0x3b)
	t.Logf("%d frames in %d bytes", 5000, len(many))

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r, err := inspectBytes(t, many, Limits{MaxPixels: 1_000_000})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if r.Width != 200 || r.Height != 200 || r.Clean != nil {
		t.Fatalf("%d×%d, Clean %d bytes", r.Width, r.Height, len(r.Clean))
	}
	// The upload itself, its cleaned copy (compared, then dropped), one
	// 40000-pixel frame and the preview: well under 8 bytes per byte.
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > uint64(4*len(many))+4<<20 {
		t.Errorf("allocated %d bytes for a %d-byte GIF", allocated, len(many))
	}
}

func TestJPEGStrayBytesBeforeMarker(t *testing.T) {
	j := encodeJPEG(t, quadrants(32, 32), 90)
	// Junk after the first segment (a DQT), which Go's decoder skips.
	if j[2] != 0xff || j[3] != 0xdb {
		t.Fatalf("test setup: the encoder's first segment is % x", j[2:4])
	}
	at := 4 + int(binary.BigEndian.Uint16(j[4:]))
	odd := append(append(append([]byte(nil), j[:at]...), 0x00, 0x12, 0x34), j[at:]...)
	r, err := inspectBytes(t, odd, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Clean, j) {
		t.Errorf("the stray bytes were not dropped: %d bytes, want %d", len(r.Clean), len(j))
	}
}

func TestJPEGWithThousandsOfScansIsRefused(t *testing.T) {
	// Every scan is a pass over the whole image: a file of thousands of
	// scans is refused before any is decoded.
	j := encodeJPEG(t, quadrants(64, 64), 80)
	sos := bytes.Index(j, []byte{0xff, 0xda})
	scan := j[sos : len(j)-2] // SOS header and its entropy-coded data
	many := append([]byte(nil), j[:sos]...)
	for i := 0; i < 2000; i++ {
		many = append(many, scan...)
	}
	many = append(many, 0xff, 0xd9)
	start := time.Now()
	_, err := inspectBytes(t, many, Limits{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if want := "the image has more than 256 scans, more than this server decodes"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("refusing took %v", took)
	}
	// 256 scans are decoded (Go's decoder reads the extra baseline
	// scans) and the preview made.
	few := append([]byte(nil), j[:sos]...)
	for i := 0; i < 256; i++ {
		few = append(few, scan...)
	}
	few = append(few, 0xff, 0xd9)
	if _, err := inspectBytes(t, few, Limits{}); errors.Is(err, ErrTooLarge) {
		t.Errorf("256 scans: %v", err)
	}
}

func TestAnimatedWebPFirstFramePreview(t *testing.T) {
	plain, err := os.ReadFile("testdata/video-001.lossy.webp") // 150×103, one VP8 chunk
	if err != nil {
		t.Fatal(err)
	}
	upload, clean := animatedWebP(plain)
	le24 := func(v int) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16)} }

	r, err := inspectBytes(t, upload, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != "image/webp" || r.Width != 150 || r.Height != 103 {
		t.Fatalf("%s %d×%d; want image/webp 150×103", r.Type, r.Width, r.Height)
	}
	// The preview is the first frame, as the still image shows it.
	still, err := inspectBytes(t, plain, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Thumb, still.Thumb) || r.ThumbType != "image/jpeg" {
		t.Errorf("the animation's preview (%s, %d bytes) is not its first frame's (%d bytes)", r.ThumbType, len(r.Thumb), len(still.Thumb))
	}
	// A frame outside the canvas, or cut short, is refused.
	bad := bytes.Clone(upload)
	copy(bad[bytes.Index(bad, []byte("ANMF"))+8:], le24(10)) // x = 20
	if _, err := inspectBytes(t, bad, Limits{}); !errors.Is(err, ErrDamaged) {
		t.Errorf("frame outside the canvas: err = %v, want ErrDamaged", err)
	}
	bad = bytes.Clone(upload)
	copy(bad[bytes.Index(bad, []byte("ANMF"))+8+6:], le24(99)) // width 100, not the VP8's 150
	if _, err := inspectBytes(t, bad, Limits{}); !errors.Is(err, ErrDamaged) {
		t.Errorf("frame size mismatch: err = %v, want ErrDamaged", err)
	}
	if !bytes.Equal(r.Clean, clean) {
		t.Errorf("the cleaned animation (%d bytes) is not the upload without EXIF (%d bytes)", len(r.Clean), len(clean))
	}
}

func TestDecoderPanicIsDamaged(t *testing.T) {
	// Defence in depth: a decoder that panics is a refused image, not a
	// crashed server.
	f := format{
		config: func(io.Reader) (image.Config, error) { return image.Config{Width: 1, Height: 1}, nil },
		decode: func(io.Reader) (image.Image, error) { panic("index out of range") },
		clean:  func(b []byte) ([]byte, error) { return b, nil },
	}
	_, err := inspectImage([]byte("x"), "image/png", f, Limits{}.WithDefaults())
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "panic: index out of range") {
		t.Fatalf("err = %v, want ErrDamaged saying the decoder failed", err)
	}
	f.config = func(io.Reader) (image.Config, error) { panic("boom") }
	if _, err := inspectImage([]byte("x"), "image/png", f, Limits{}.WithDefaults()); !errors.Is(err, ErrDamaged) {
		t.Fatalf("config panic: err = %v, want ErrDamaged", err)
	}
}

func TestDecodeMemoryIsBounded(t *testing.T) {
	// The memory a decoder takes is estimated from the header and
	// bounded before decoding: a progressive JPEG holds 4 bytes per
	// sample of coefficients, a 16-bit PNG 8 bytes per pixel.
	j := encodeJPEG(t, quadrants(16, 16), 80) // YCbCr 4:2:0: 1.5 samples per pixel
	sof := bytes.Index(j, []byte{0xff, 0xc0})
	binary.BigEndian.PutUint16(j[sof+5:], 3000) // claim 3000×3000
	binary.BigEndian.PutUint16(j[sof+7:], 3000)
	lim := Limits{MaxPixels: 10_000_000, MaxDecodeBytes: 60_000_000}
	// Baseline: 9 megapixels × 1.5 = 13.5 MB, within the budget; it is
	// then refused as damaged (the data is that of 16×16 pixels).
	if _, err := inspectBytes(t, j, lim); !errors.Is(err, ErrDamaged) {
		t.Errorf("baseline 3000×3000: err = %v, want ErrDamaged (within the memory budget)", err)
	}
	j[sof+1] = 0xc2 // progressive: 9 megapixels × 1.5 × 5 = 67.5 MB
	_, err := inspectBytes(t, j, lim)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("progressive 3000×3000: err = %v, want ErrTooLarge", err)
	}
	if want := "the image is 3000×3000 pixels in a form that takes 67 MB to decode, more than the 60 MB this server gives one image"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}

	png16 := func(depth byte) []byte {
		ihdr := binary.BigEndian.AppendUint32(nil, 3000)
		ihdr = binary.BigEndian.AppendUint32(ihdr, 3000)
		ihdr = append(ihdr, depth, 6, 0, 0, 0) // RGBA
		p := append(append([]byte(nil), pngSignature...), pngChunk("IHDR", ihdr)...)
		return append(p, pngChunk("IEND", nil)...)
	}
	if _, err := inspectBytes(t, png16(8), lim); !errors.Is(err, ErrDamaged) {
		t.Errorf("8-bit RGBA PNG 3000×3000 (36 MB): err = %v, want ErrDamaged", err)
	}
	if _, err := inspectBytes(t, png16(16), lim); !errors.Is(err, ErrTooLarge) {
		t.Errorf("16-bit RGBA PNG 3000×3000 (72 MB): err = %v, want ErrTooLarge", err)
	}
	// The default budget takes a 50-megapixel progressive colour photo.
	budget := Limits{}.WithDefaults().MaxDecodeBytes
	if got := decodeCost(j, "image/jpeg", image.Config{Width: 10000, Height: 5000}); got != 375_000_000 || got > budget {
		t.Errorf("50-megapixel progressive JPEG: %d bytes", got)
	}
}

func TestEveryColourModelGetsAPreview(t *testing.T) {
	// The decoders return many image types; each scales and encodes.
	rect := image.Rect(0, 0, 400, 50)
	want := color.RGBA{200, 200, 200, 255}
	gray := image.NewGray(rect)
	gray16 := image.NewGray16(rect)
	rgba64 := image.NewNRGBA64(rect)
	pal := image.NewPaletted(rect, color.Palette{color.Black, want})
	for y := 0; y < rect.Dy(); y++ {
		for x := 0; x < rect.Dx(); x++ {
			gray.SetGray(x, y, color.Gray{200})
			gray16.SetGray16(x, y, color.Gray16{200 * 257})
			rgba64.SetNRGBA64(x, y, color.NRGBA64{200 * 257, 200 * 257, 200 * 257, 0xffff})
			pal.SetColorIndex(x, y, 1)
		}
	}
	for name, data := range map[string][]byte{
		"gray png":     encodePNG(t, gray),
		"gray16 png":   encodePNG(t, gray16),
		"nrgba64 png":  encodePNG(t, rgba64),
		"paletted png": encodePNG(t, pal),
		"gray jpeg":    encodeJPEG(t, gray, 90),
		"gif":          encodeGIF(t, pal),
	} {
		r, err := inspectBytes(t, data, Limits{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		th := decodeThumb(t, r)
		if r.ThumbWidth != 320 || r.ThumbHeight != 40 || r.ThumbType != "image/jpeg" {
			t.Errorf("%s: preview %s %d×%d, want image/jpeg 320×40", name, r.ThumbType, r.ThumbWidth, r.ThumbHeight)
		}
		if got := th.At(160, 20); !near(got, want, 6) {
			t.Errorf("%s: preview colour %v, want %v", name, got, want)
		}
	}
}

func TestPNGTrailingBytesAreDropped(t *testing.T) {
	p := encodePNG(t, quadrants(8, 8))
	r, err := inspectBytes(t, append(bytes.Clone(p), secretText...), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Clean, p) {
		t.Errorf("Clean is %d bytes, want the PNG up to its IEND (%d)", len(r.Clean), len(p))
	}
}
