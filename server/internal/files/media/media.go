// Package media inspects an uploaded file: it sniffs its type from the
// content, and for an image checks it decodes within a pixel budget,
// strips its metadata (EXIF with GPS, XMP, text chunks) without
// re-encoding, and makes a small preview by decoding and re-encoding it
// with Go's image packages, so a malformed image never reaches a
// client's decoder as it was sent.
//
// What is stripped, per format (everything else is copied byte for
// byte; so is anything not listed):
//   - PNG: eXIf, tEXt, zTXt, iTXt and tIME chunks, and bytes after IEND.
//   - JPEG: APP1 (Exif, XMP), APP13 (IPTC), COM, APP2 other than the ICC
//     profile (MPF indexes images appended after the end), and bytes
//     after EOI (appended videos and depth maps). An Exif orientation
//     other than 1 is written back in a minimal Exif segment of its own
//     (only the Orientation tag), so viewers still show the photo
//     upright; Width, Height and the preview are the displayed ones.
//   - WebP: EXIF and XMP chunks (their VP8X flags cleared, the RIFF size
//     fixed), and bytes after the RIFF chunk. A WebP's or PNG's EXIF
//     orientation is neither applied nor kept (viewers disagree on it,
//     and cameras write JPEG): the preview and the cleaned original
//     agree, both as stored.
//   - GIF: comment extensions and application extensions other than
//     looping (NETSCAPE2.0, ANIMEXTS1.0), and bytes after the trailer.
//
// An animation's preview is its first frame (golang.org/x/image/webp
// decodes no animation: the first ANMF frame is decoded as a still
// image of its own); the other frames are walked (the file must be
// complete) but never decoded.
package media

import "errors"

// Limits bound the work on one image.
type Limits struct {
	MaxPixels int64 // width × height above this is refused (a decompression bomb)
	ThumbSize int   // the preview fits in ThumbSize × ThumbSize (default 320)
	// MaxDecodeBytes bounds the memory decoding one image takes, as
	// estimated from its header before decoding (default 8 bytes per
	// MaxPixels: 400 MB; a 50-megapixel photo takes 75 MB, a
	// progressive one 375 MB, a 16-bit PNG 400 MB).
	MaxDecodeBytes int64
}

// Result is what Inspect found.
type Result struct {
	Type          string // MIME type sniffed from the content, e.g. "image/jpeg", "application/pdf"
	Width, Height int    // an image's displayed size (after EXIF orientation); 0 for other files
	// Clean, when not nil, is the content to store instead of the upload:
	// the image without its metadata. Nil when the upload is stored as it
	// is (not an image, or nothing to strip).
	Clean []byte
	// Thumb is the preview (JPEG, or PNG for an image with transparency),
	// of ThumbType and ThumbWidth × ThumbHeight pixels; nil for other
	// files.
	Thumb                   []byte
	ThumbType               string
	ThumbWidth, ThumbHeight int
}

// ErrDamaged and ErrTooLarge are the causes of a refused image; the
// error's text is a sentence for the user.
var (
	ErrDamaged  = errors.New("the image is damaged or incomplete")
	ErrTooLarge = errors.New("the image has more pixels than this server takes")
)
