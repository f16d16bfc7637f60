package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"strings"

	"golang.org/x/image/webp"
)

// Defaults for zero Limits fields.
const (
	DefaultMaxPixels = 50_000_000
	DefaultThumbSize = 320
)

// WithDefaults returns l with zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.ThumbSize <= 0 {
		l.ThumbSize = DefaultThumbSize
	}
	if l.MaxDecodeBytes <= 0 {
		l.MaxDecodeBytes = 8 * l.MaxPixels
	}
	return l
}

// sniffLen is how much of the content net/http's sniffer looks at.
const sniffLen = 512

// Inspect reads the size bytes of r, sniffs their type and, for a PNG,
// JPEG, GIF or WebP image, checks it, strips its metadata and makes its
// preview. Any other content is stored as it is: the Result then holds
// only its Type.
//
// An image that is too large (more than lim.MaxPixels) is refused with
// an error wrapping ErrTooLarge before any pixel is decoded; one that
// does not decode (truncated, damaged, or a decoder panic) is refused
// with an error wrapping ErrDamaged. The error's text is a sentence for
// the user.
//
// Memory: an image is read whole (size bytes) and then decoded, which
// takes up to lim.MaxDecodeBytes (estimated from its header, refused
// with ErrTooLarge above that; 400 MB by default); callers bound how
// many Inspect calls run at once.
func Inspect(r io.ReaderAt, size int64, lim Limits) (res *Result, err error) {
	lim = lim.WithDefaults()
	if size < 0 {
		return nil, fmt.Errorf("inspecting a file of %d bytes", size)
	}
	head := make([]byte, min(size, sniffLen))
	if n, err := r.ReadAt(head, 0); n < len(head) {
		return nil, fmt.Errorf("reading the file: %w", err)
	}
	typ := Sniff(head)
	decoder, ok := decoders[typ]
	if !ok {
		return &Result{Type: typ}, nil
	}
	data := make([]byte, size)
	if n, err := r.ReadAt(data, 0); n < len(data) {
		return nil, fmt.Errorf("reading the file: %w", err)
	}
	// The decoders run under their own recover; this one keeps a bug in
	// the cleaners or the preview from taking the server down too.
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, &damagedError{cause: fmt.Sprintf("inspecting it failed (panic: %v)", p)}
		}
	}()
	return inspectImage(data, typ, decoder, lim)
}

// format decodes one image type with the standard (or x/image)
// decoder of that type only, never through image.Decode's registry,
// so a file sniffed as one type is never decoded as another.
type format struct {
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
	clean  func([]byte) ([]byte, error)
}

var decoders = map[string]format{
	"image/png":  {png.DecodeConfig, png.Decode, cleanPNG},
	"image/jpeg": {jpeg.DecodeConfig, jpeg.Decode, nil}, // cleaned with its orientation, below
	"image/gif":  {gif.DecodeConfig, gif.Decode, cleanGIF},
	"image/webp": {webp.DecodeConfig, webp.Decode, cleanWebP},
}

func inspectImage(data []byte, typ string, f format, lim Limits) (*Result, error) {
	cfg, err := safeConfig(f, data)
	if err != nil {
		return nil, damaged(err)
	}
	w, h := int64(cfg.Width), int64(cfg.Height)
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("%w: it has no pixels (%d×%d)", ErrDamaged, w, h)
	}
	// w and h come from at most 32-bit fields, so w*h cannot overflow.
	if w*h > lim.MaxPixels {
		return nil, &tooLargeError{w: w, h: h, max: lim.MaxPixels}
	}

	if cost := decodeCost(data, typ, cfg); cost > lim.MaxDecodeBytes {
		return nil, &costlyError{w: w, h: h, cost: cost, max: lim.MaxDecodeBytes}
	}

	res := &Result{Type: typ, Width: cfg.Width, Height: cfg.Height}
	// Clean first: walking the structure is cheap, finds a truncated
	// file before its pixels are decoded, and bounds a JPEG's scans.
	orientation := 1
	var clean []byte
	if typ == "image/jpeg" {
		clean, orientation, err = cleanJPEG(data)
	} else {
		clean, err = f.clean(data)
	}
	if errors.Is(err, ErrTooLarge) {
		return nil, err
	}
	if err != nil {
		return nil, damaged(err)
	}
	if orientation >= 5 {
		res.Width, res.Height = res.Height, res.Width
	}
	if !bytes.Equal(clean, data) {
		res.Clean = clean
	}
	var img image.Image
	if typ == "image/webp" && webpAnimated(data) {
		// x/image/webp decodes no animation: the preview is the first
		// frame, decoded as a still image of its own.
		img, err = webpFirstFrameImage(data, cfg, f)
	} else {
		img, err = safeDecode(f, data)
	}
	if err != nil {
		return nil, damaged(err)
	}
	if b := img.Bounds(); int64(b.Dx())*int64(b.Dy()) > lim.MaxPixels {
		// Defence in depth: the decoders keep to their header.
		return nil, &tooLargeError{w: int64(b.Dx()), h: int64(b.Dy()), max: lim.MaxPixels}
	}
	if typ == "image/gif" {
		img = onCanvas(img, img.Bounds(), cfg)
	}
	thumb, err := preview(img, orientation, lim.ThumbSize)
	if err != nil {
		return nil, err
	}
	res.Thumb, res.ThumbType = thumb.data, thumb.typ
	res.ThumbWidth, res.ThumbHeight = thumb.w, thumb.h
	return res, nil
}

// safeConfig and safeDecode turn a decoder's panic into an error: the
// decoders are not expected to panic on any input, and this keeps a
// bug in one from taking the server down.
func safeConfig(f format, data []byte) (cfg image.Config, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the decoder failed (panic: %v)", p)
		}
	}()
	return f.config(bytes.NewReader(data))
}

func safeDecode(f format, data []byte) (img image.Image, err error) {
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("the decoder failed (panic: %v)", p)
		}
	}()
	return f.decode(bytes.NewReader(data))
}

// damaged wraps a decoder's error in ErrDamaged, as a sentence: the
// data ending early is "unexpected EOF" whichever decoder saw it; other
// causes are the decoder's words without its package prefix.
func damaged(err error) error {
	msg := err.Error()
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || strings.HasSuffix(msg, "not enough pixel data") {
		return &damagedError{cause: "unexpected EOF"}
	}
	for _, prefix := range []string{"png: ", "gif: ", "webp: ", "vp8: ", "vp8l: ", "riff: ", "invalid format: ", "invalid JPEG format: "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return &damagedError{cause: msg}
}

type damagedError struct{ cause string }

func (e *damagedError) Error() string { return ErrDamaged.Error() + ": " + e.cause }
func (e *damagedError) Unwrap() error { return ErrDamaged }

type tooLargeError struct{ w, h, max int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("the image is %d×%d pixels, more than the %s this server takes", e.w, e.h, megapixels(e.max))
}
func (e *tooLargeError) Unwrap() error { return ErrTooLarge }

type costlyError struct{ w, h, cost, max int64 }

func (e *costlyError) Error() string {
	return fmt.Sprintf("the image is %d×%d pixels in a form that takes %d MB to decode, more than the %d MB this server gives one image", e.w, e.h, e.cost/1_000_000, e.max/1_000_000)
}
func (e *costlyError) Unwrap() error { return ErrTooLarge }

func megapixels(n int64) string {
	if n%1_000_000 == 0 {
		return fmt.Sprintf("%d megapixels", n/1_000_000)
	}
	return fmt.Sprintf("%d pixels", n)
}

// Sniff returns the MIME type of content from its first bytes: what
// net/http's sniffer says, plus the types it does not know.
func Sniff(head []byte) string {
	if len(head) > sniffLen {
		head = head[:sniffLen]
	}
	if len(head) >= 12 && string(head[4:8]) == "ftyp" {
		switch string(head[8:12]) {
		case "heic", "heix", "heim", "heis":
			return "image/heic"
		case "hevc", "hevx":
			return "image/heic-sequence"
		case "mif1", "msf1":
			return "image/heif"
		case "avif", "avis":
			return "image/avif"
		}
	}
	return http.DetectContentType(head)
}

// webpFirstFrameImage decodes the first frame of an animated WebP and
// puts it on the canvas.
func webpFirstFrameImage(data []byte, cfg image.Config, f format) (image.Image, error) {
	still, at, err := webpFirstFrame(data)
	if err != nil {
		return nil, err
	}
	if !at.In(image.Rect(0, 0, cfg.Width, cfg.Height)) {
		return nil, fmt.Errorf("the first frame (%v) is outside the %d×%d canvas", at, cfg.Width, cfg.Height)
	}
	frame, err := safeDecode(f, still)
	if err != nil {
		return nil, err
	}
	if frame.Bounds().Size() != at.Size() {
		return nil, fmt.Errorf("the first frame is %v, its header says %v", frame.Bounds().Size(), at.Size())
	}
	return onCanvas(frame, at, cfg), nil
}
