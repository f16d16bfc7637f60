// Package imaging decodes the pictures the app shows, off the UI
// goroutine: a message's preview, or an image shown at full size. It
// returns *image.RGBA, the form Gio uploads as it is (paint.NewImageOp
// would otherwise convert on the UI goroutine), scaled down to fit a box
// so that a huge photo costs at most the box's pixels in memory.
package imaging

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/gif" // formats the server accepts (it sniffs and checks them)
	_ "image/jpeg"
	_ "image/png"

	xdraw "golang.org/x/image/draw"
	_ "golang.org/x/image/webp"

	"chat/internal/exiforient"
)

// ErrTooManyPixels refuses an image larger than the decoder's bound,
// before its pixels are decoded.
var ErrTooManyPixels = errors.New("the picture has too many pixels to show")

// Decode decodes data, refusing images of more than maxPixels pixels
// (checked from the header, before decoding), and scales the result down
// to fit fit (keeping its aspect) when it is larger; fit zero keeps its
// size. A JPEG is turned as its Exif Orientation says (fit applies to
// the picture as shown), like the server's preview and File.Width/Height.
func Decode(data []byte, maxPixels int64, fit image.Point) (*image.RGBA, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a picture this app can show: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, ErrTooManyPixels
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("the picture is damaged: %w", err)
	}
	o := jpegOrientation(data)
	shown := src.Bounds().Size()
	if o >= 5 {
		shown = image.Pt(shown.Y, shown.X)
	}
	size := Fit(shown, fit)
	if o >= 5 {
		size = image.Pt(size.Y, size.X) // scaled as stored, turned below
	}
	dst := image.NewRGBA(image.Rectangle{Max: size})
	if size == src.Bounds().Size() {
		draw.Draw(dst, dst.Bounds(), src, src.Bounds().Min, draw.Src)
	} else {
		xdraw.ApproxBiLinear.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
	}
	return exiforient.Apply(dst, o), nil
}

// Fit is size scaled down, keeping its aspect, to fit box; size itself
// when it fits or box is zero. Neither side becomes less than one.
func Fit(size, box image.Point) image.Point {
	if box.X <= 0 || box.Y <= 0 || (size.X <= box.X && size.Y <= box.Y) {
		return size
	}
	// Scale by the smaller ratio, in integers: size.X/box.X vs size.Y/box.Y.
	if int64(size.X)*int64(box.Y) >= int64(size.Y)*int64(box.X) {
		return image.Pt(box.X, max(1, int(int64(size.Y)*int64(box.X)/int64(size.X))))
	}
	return image.Pt(max(1, int(int64(size.X)*int64(box.Y)/int64(size.Y))), box.Y)
}

// Bytes is what an RGBA image of size costs in memory.
func Bytes(size image.Point) int64 { return int64(size.X) * int64(size.Y) * 4 }
