package ui

import (
	"container/list"
	"fmt"
	"image"
	"strings"

	"gioui.org/f32"
	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"

	"chat/protocol"
)

// Pictures and files (issue 16): the view models and intents of
// attaching a file, its upload's progress, the previews shown inline, the
// full-size view and saving a file. The UI never reads files or the
// network: the app loop opens the system's file picker, uploads through
// the client library's outbox, fetches and decodes pictures on its own
// goroutines and reports back through UI.Apply.

// AttachIntent asks the loop to let the user choose a file (the system's
// picker) and send it to Room, answering message Reply (0: none). A
// FileQueued follows when it went into the outbox, an AttachFailed when
// it could not (too big, unreadable; nothing when the user cancelled).
type AttachIntent struct {
	Room  string
	Reply uint64
}

// LoadImageIntent asks for picture File (a message's preview, or with
// Full the file itself) of a message of Room, decoded off the UI
// goroutine; an ImageLoaded answers.
type LoadImageIntent struct {
	Room string
	File string
	Full bool
}

// SaveFileIntent asks the loop to save File, carried by a message of
// Room, where the user chooses (the system's save dialog); a FileSaved
// answers.
type SaveFileIntent struct {
	Room string
	File protocol.File
}

func (AttachIntent) isIntent()    {}
func (LoadImageIntent) isIntent() {}
func (SaveFileIntent) isIntent()  {}

// FileQueued reports that a file the user chose went into the outbox as
// message ID of Room: its row shows at once, with the upload's progress.
type FileQueued struct {
	Room, ID string
	Name     string
	Size     int64
	Reply    uint64
}

// AttachFailed says why a file chosen for Room could not be sent
// (Reason is a sentence for the user).
type AttachFailed struct{ Room, Reason string }

// UploadProgress reports the bytes of upload ID (a FileQueued's) the
// server confirmed; Done once it has the whole file (the message follows).
type UploadProgress struct {
	Room, ID   string
	Sent, Size int64
	Done       bool
}

// ImageLoaded answers a LoadImageIntent: Image is the decoded picture of
// File (nil with Err, a sentence, when it could not be fetched or
// decoded).
type ImageLoaded struct {
	File  string
	Image *image.RGBA
	Err   string
	// Transient says the failure may pass (not connected, a timeout, the
	// server unavailable): it is shown, and the picture asked for again
	// after the next reconnect; other failures (gone, forbidden,
	// damaged, too many pixels) are remembered for good.
	Transient bool
}

// FileSaved answers a SaveFileIntent: Err says why it was not saved;
// empty Err and Name set, it was. Cancelled: the user closed the dialog.
type FileSaved struct {
	Room, Name string
	Err        string
	Cancelled  bool
}

// ImageCacheBytes bounds the decoded pictures the UI keeps: previews and
// full-size views alike, least recently shown dropped first. A 320×320
// preview costs 400 KiB, so about 160 previews stay at once: more than a
// screen shows.
const ImageCacheBytes = 64 << 20

// fullBox bounds the size a picture is decoded to for the full-size
// view: a phone photo of 12 megapixels is shown from at most 16 MiB.
var fullBox = image.Pt(2048, 2048)

// FullBox is the box full-size pictures are decoded to fit (see
// LoadImageIntent).
func FullBox() image.Point { return fullBox }

// imageCache holds decoded pictures by file id, bounded in bytes. It also
// remembers which pictures were asked for, so each is asked once while
// it is on its way, and which failed, so a damaged one is not asked for
// at every frame.
type imageCache struct {
	max, used int64
	lru       *list.List // of *cachedImage, most recently shown first
	byID      map[string]*list.Element
	asked     map[string]bool
	failed    map[string]string
	transient map[string]bool // failures in failed asked for again on reconnect
	// peak is the most the cache held, for the benchmark.
	peak int64
}

type cachedImage struct {
	id    string
	op    paint.ImageOp
	size  image.Point
	bytes int64
}

func newImageCache(max int64) *imageCache {
	return &imageCache{max: max, lru: list.New(), byID: map[string]*list.Element{}, asked: map[string]bool{}, failed: map[string]string{}, transient: map[string]bool{}}
}

// maxFailed bounds the failures remembered.
const maxFailed = 1000

// put takes a loaded picture (or its failure).
func (c *imageCache) put(e ImageLoaded) {
	delete(c.asked, e.File)
	if e.Image == nil {
		if len(c.failed) >= maxFailed {
			clear(c.failed)
			clear(c.transient)
		}
		c.failed[e.File] = e.Err
		if e.Transient {
			c.transient[e.File] = true
		}
		return
	}
	delete(c.failed, e.File)
	delete(c.transient, e.File)
	if el, ok := c.byID[e.File]; ok {
		c.remove(el)
	}
	size := e.Image.Bounds().Size()
	ci := &cachedImage{id: e.File, op: paint.NewImageOp(e.Image), size: size, bytes: int64(size.X) * int64(size.Y) * 4}
	c.byID[e.File] = c.lru.PushFront(ci)
	c.used += ci.bytes
	for c.used > c.max && c.lru.Len() > 1 {
		c.remove(c.lru.Back())
	}
	c.peak = max(c.peak, c.used)
}

func (c *imageCache) remove(el *list.Element) {
	ci := c.lru.Remove(el).(*cachedImage)
	delete(c.byID, ci.id)
	c.used -= ci.bytes
}

// get returns picture id if it is held, marking it recently shown; else,
// unless it is on its way or failed, it asks for it through ask.
func (c *imageCache) get(id string, ask func()) (*cachedImage, bool) {
	if el, ok := c.byID[id]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*cachedImage), true
	}
	if !c.asked[id] && c.failed[id] == "" {
		c.asked[id] = true
		ask()
	}
	return nil, false
}

// forgetAsked lets pictures asked for, or that failed for a passing
// reason, be asked again: after a reconnect the loop's fetches may have
// failed with the connection.
func (c *imageCache) forgetAsked() {
	clear(c.asked)
	for id := range c.transient {
		delete(c.failed, id)
	}
	clear(c.transient)
}

// Used is what the cache holds, in bytes, and the most it held.
func (u *UI) ImageCacheUsed() (used, peak int64) { return u.images.used, u.images.peak }

// previewSize is the size a message's preview is shown at: its own size
// in dp, scaled down to fit width. Known from the message before the
// preview loads, so the row keeps its height when it comes.
func previewSize(gtx layout.Context, f *protocol.File, width int) image.Point {
	w, h := int(f.ThumbWidth), int(f.ThumbHeight)
	if w <= 0 || h <= 0 {
		w, h = 320, 320*int(max(1, f.Height))/int(max(1, f.Width))
	}
	size := image.Pt(gtx.Dp(unit.Dp(w)), gtx.Dp(unit.Dp(h)))
	return fitIn(size, image.Pt(width, gtx.Dp(400)))
}

// fitIn scales size down to fit box, keeping its aspect.
func fitIn(size, box image.Point) image.Point {
	if size.X <= 0 || size.Y <= 0 {
		return image.Point{}
	}
	if size.X <= box.X && size.Y <= box.Y {
		return size
	}
	if int64(size.X)*int64(box.Y) >= int64(size.Y)*int64(box.X) {
		return image.Pt(box.X, max(1, int(int64(size.Y)*int64(box.X)/int64(size.X))))
	}
	return image.Pt(max(1, int(int64(size.X)*int64(box.Y)/int64(size.Y))), box.Y)
}

// drawImage draws ci scaled to fit size at the origin, keeping its
// aspect (centred): a picture whose shape differs from the box, say an
// unturned photo, is never stretched.
func drawImage(gtx layout.Context, ci *cachedImage, size image.Point) {
	defer clip.Rect{Max: size}.Push(gtx.Ops).Pop()
	s := min(float32(size.X)/float32(max(1, ci.size.X)), float32(size.Y)/float32(max(1, ci.size.Y)))
	off := f32.Pt((float32(size.X)-s*float32(ci.size.X))/2, (float32(size.Y)-s*float32(ci.size.Y))/2)
	tr := op.Affine(f32.AffineId().Scale(f32.Point{}, f32.Pt(s, s)).Offset(off)).Push(gtx.Ops)
	ci.op.Filter = paint.FilterLinear
	ci.op.Add(gtx.Ops)
	paint.PaintOp{}.Add(gtx.Ops)
	tr.Pop()
}

// fileControls are a file row's buttons, kept in its rowView.
type fileControls struct {
	open, save widget.Clickable
}

func (v *rowView) files() *fileControls {
	if v.fc == nil {
		v.fc = &fileControls{}
	}
	return v.fc
}

// HumanSize is a size as people read it: 1.2 MB, 340 KB, 12 bytes (in
// units of 1024, as the server's limits are: 25 MiB shows as 25 MB).
func HumanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<30))) + " GB"
	case n >= 1<<20:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<20))) + " MB"
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KB", float64(n)/(1<<10))
	case n == 1:
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}

// trimZero drops a ".0": "25.0" is "25".
func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// typeName is a MIME type as a row shows it: "PDF", "PNG image", or the
// type itself.
func typeName(mime string) string {
	mime, _, _ = strings.Cut(mime, ";")
	switch mime {
	case "application/pdf":
		return "PDF"
	case "text/plain":
		return "text"
	case "application/zip":
		return "ZIP archive"
	case "application/octet-stream", "":
		return "file"
	}
	if kind, sub, ok := strings.Cut(mime, "/"); ok && kind == "image" {
		return strings.ToUpper(sub) + " image"
	}
	return mime
}

// attachment lays out what a message row shows of its file: the upload's
// progress while it goes, then the picture's preview (at its final size
// from the start) or the file's name, size, type and a Save button. It
// is laid out within bubble, width the most it may take.
func attachment(gtx layout.Context, u *UI, c *chatScreen, r *row) layout.Dimensions {
	th := u.th
	v := r.shown()
	fc := v.files()
	if r.file == nil {
		// Our own file on its way: its name and the upload's progress.
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				l := bold(label(th, 14, r.upName, th.Fg))
				l.MaxLines = 1
				return l.Layout(gtx)
			}),
			layout.Rigid(layout.Spacer{Height: 4}.Layout),
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				gtx.Constraints.Min.X = min(gtx.Constraints.Max.X, gtx.Dp(220))
				gtx.Constraints.Max.X = gtx.Constraints.Min.X
				p := float32(0)
				if r.upSize > 0 {
					p = float32(r.upSent) / float32(r.upSize)
				}
				pb := material.ProgressBar(&th.Theme, p)
				pb.TrackColor = th.Divider
				return pb.Layout(gtx)
			}),
			layout.Rigid(layout.Spacer{Height: 2}.Layout),
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				txt := "uploading " + HumanSize(r.upSent) + " of " + HumanSize(r.upSize)
				if r.status == statusFailed {
					txt = "not sent"
				} else if r.upDone {
					txt = "uploaded " + HumanSize(r.upSize)
				}
				return label(th, 11, txt, th.Muted).Layout(gtx)
			}),
		)
	}
	f := r.file
	if f.IsImage() {
		for fc.open.Clicked(gtx) {
			c.viewing, c.viewingRoom = f, c.room
			delete(u.images.failed, f.ID) // a full view that failed before is tried again
			// The click is read while this frame lays out the list: the
			// view shows in the next one, which nothing else may ask for.
			gtx.Execute(op.InvalidateCmd{})
		}
		size := previewSize(gtx, f, gtx.Constraints.Max.X)
		return fc.open.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
			ci, ok := u.images.get(f.Thumb, func() { u.emit(LoadImageIntent{Room: c.room, File: f.Thumb}) })
			desc := "picture " + f.Name
			if !ok {
				desc += " (loading)"
			}
			semantic.DescriptionOp(desc).Add(gtx.Ops)
			if ok {
				drawImage(gtx, ci, size)
			} else {
				fillRounded(gtx.Ops, size, gtx.Dp(6), th.Divider)
				if why := u.images.failed[f.Thumb]; why != "" {
					g := gtx
					g.Constraints = layout.Exact(size)
					layout.Center.Layout(g, label(th, 12, "Preview not available", th.Muted).Layout)
				}
			}
			return layout.Dimensions{Size: size}
		})
	}
	for fc.save.Clicked(gtx) {
		u.emit(SaveFileIntent{Room: c.room, File: *f})
	}
	return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
				layout.Rigid(func(gtx layout.Context) layout.Dimensions {
					l := bold(label(th, 14, f.Name, th.Fg))
					l.MaxLines = 1
					return l.Layout(gtx)
				}),
				layout.Rigid(label(th, 12, HumanSize(int64(f.Size))+" · "+typeName(f.Type), th.Muted).Layout),
			)
		}),
		layout.Rigid(layout.Spacer{Width: 12}.Layout),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			b := material.Button(&th.Theme, &fc.save, "Save")
			b.TextSize = 13
			b.Inset = layout.Inset{Top: 6, Bottom: 6, Left: 12, Right: 12}
			return b.Layout(gtx)
		}),
	)
}

// viewer is the full-size view of the picture c.viewing, over the
// conversation: the picture fitted to the window (its preview, larger,
// until the original is decoded), with Close and Save.
func (c *chatScreen) viewer(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	f := c.viewing
	for c.viewClose.Clicked(gtx) {
		c.viewing, c.viewNote = nil, ""
		gtx.Execute(op.InvalidateCmd{}) // the conversation shows in the next frame
	}
	for c.viewSave.Clicked(gtx) {
		u.emit(SaveFileIntent{Room: c.viewingRoom, File: *f})
	}
	if c.viewing == nil {
		return layout.Dimensions{}
	}
	gtx.Constraints.Min = gtx.Constraints.Max
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx layout.Context) layout.Dimensions {
			return layout.Inset{Top: 8, Bottom: 8, Left: 16, Right: 8}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Flexed(1, func(gtx layout.Context) layout.Dimensions {
						l := bold(label(th, 14, f.Name+" · "+fmt.Sprintf("%d×%d", f.Width, f.Height)+" · "+HumanSize(int64(f.Size)), th.Fg))
						l.MaxLines = 1
						return l.Layout(gtx)
					}),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						if c.viewNote == "" {
							return layout.Dimensions{}
						}
						return layout.Inset{Right: 12}.Layout(gtx, label(th, 13, c.viewNote, th.Muted).Layout)
					}),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						b := material.Button(&th.Theme, &c.viewSave, "Save")
						b.TextSize = 13
						return b.Layout(gtx)
					}),
					layout.Rigid(layout.Spacer{Width: 8}.Layout),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						return iconButton(th, &c.viewClose, u.icons.close, "Close").Layout(gtx)
					}),
				)
			})
		}),
		layout.Flexed(1, func(gtx layout.Context) layout.Dimensions {
			return layout.UniformInset(16).Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				box := gtx.Constraints.Max
				size := fitIn(image.Pt(int(f.Width), int(f.Height)), box)
				if size.X < box.X && size.Y < box.Y {
					// A small picture is shown at its own size in dp, not
					// in pixels.
					size = fitIn(image.Pt(gtx.Dp(unit.Dp(f.Width)), gtx.Dp(unit.Dp(f.Height))), box)
				}
				ci, ok := u.images.get(f.ID, func() { u.emit(LoadImageIntent{Room: c.viewingRoom, File: f.ID, Full: true}) })
				if !ok {
					ci, ok = u.images.get(f.Thumb, func() { u.emit(LoadImageIntent{Room: c.viewingRoom, File: f.Thumb}) })
				}
				return layout.Center.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
					area := clip.Rect{Max: size}.Push(gtx.Ops)
					desc := "full size " + f.Name
					if _, full := u.images.byID[f.ID]; !full {
						desc += " (loading)"
					}
					semantic.DescriptionOp(desc).Add(gtx.Ops)
					area.Pop()
					if ok {
						drawImage(gtx, ci, size)
					} else {
						fillRounded(gtx.Ops, size, 0, th.Divider)
					}
					if why := u.images.failed[f.ID]; why != "" {
						gtx.Constraints = layout.Exact(size)
						layout.Center.Layout(gtx, label(th, 14, why, th.Error).Layout)
					}
					return layout.Dimensions{Size: size}
				})
			})
		}),
	)
}
