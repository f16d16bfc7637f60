package chatapp

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"gioui.org/x/explorer"

	"chat/app/internal/imaging"
	"chat/app/internal/ui"
	"chat/client"
	"chat/protocol"
)

// Pictures and files (issue 16): the loop's side of the UI's
// AttachIntent, LoadImageIntent and SaveFileIntent. The system's file
// dialogs and the network wait on goroutines of their own; what the
// client must do (SendFile) comes back to the loop, which owns it.

// FilePicker is the system's file dialogs: *explorer.Explorer (gioui.org/x/explorer)
// on desktop, Android and in the browser. Both calls block until the user
// has chosen; explorer.ErrUserDecline says they cancelled.
type FilePicker interface {
	ChooseFile(extensions ...string) (io.ReadCloser, error)
	CreateFile(name string) (io.WriteCloser, error)
}

// Bounds of the pictures fetched and decoded.
const (
	maxThumbBytes = 4 << 20          // a preview is a 320×320 JPEG or PNG: far less
	imageFetches  = 4                // pictures fetched and decoded at once
	fetchStall    = 30 * time.Second // a picture's fetch with no part arriving: given up
)

// maxPixels is the most pixels decoded for a full-size view (one at a
// time): a 64 Mpx JPEG decodes to ~96 MiB (YCbCr; 256 MiB for RGBA
// formats) on desktop; a browser tab's WASM heap or a phone has less to
// give, so there pictures over 24 Mpx show their preview with a note.
var maxPixels = func() int64 {
	if runtime.GOOS == "js" || runtime.GOOS == "android" {
		return 24 << 20
	}
	return 64 << 20
}()

// thumbBox bounds a decoded preview (the server makes them at most
// 320×320; a bigger one is scaled down).
var thumbBox = image.Pt(320, 320)

// chosen is a file the user picked for room, ready to go into the outbox.
type chosen struct {
	session uint64
	room    string
	reply   uint64
	name    string
	size    int64
	content io.ReaderAt
	closer  io.Closer // nil: nothing to close
	err     error     // the file could not be read
	// over is set when the file is larger than the size read (a
	// stream read up to a bound): it is refused, never sent in part.
	over bool
}

// attach opens the picker on its own goroutine: it blocks until the user
// has chosen (the browser's even longer).
func (l *loop) attach(in ui.AttachIntent) {
	picker, session := l.opts.Files, l.session
	if picker == nil {
		l.post(session, ui.AttachFailed{Room: in.Room, Reason: "Files cannot be chosen on this device."})
		return
	}
	limit := int64(0)
	if l.c != nil {
		limit = l.c.MaxUpload()
	}
	if l.c != nil && l.online && limit == 0 {
		// Said before the dialog: no file is read to be refused.
		l.post(session, ui.AttachFailed{Room: in.Room, Reason: "This server does not take files."})
		return
	}
	go func() {
		rc, err := picker.ChooseFile()
		if errors.Is(err, explorer.ErrUserDecline) {
			return
		}
		ch := chosen{session: session, room: in.Room, reply: in.Reply}
		if err != nil {
			ch.err = err
		} else {
			ch.name, ch.size, ch.content, ch.closer, ch.over, ch.err = readChosen(rc, limit)
		}
		l.inbox.put(ch)
	}()
}

// readChosen makes a file the picker returned into an attachment. A
// desktop file (*os.File) is read where it is, as the upload goes; a
// browser's or Android's stream is read into memory, at most limit+1
// bytes (0: no limit known yet, the server's 25 MiB default is assumed)
// so that an oversized one is known without reading it all: over is then
// set, and size is the bytes read (the file is larger).
func readChosen(rc io.ReadCloser, limit int64) (name string, size int64, content io.ReaderAt, closer io.Closer, over bool, err error) {
	if f, ok := rc.(*os.File); ok {
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return "", 0, nil, nil, false, err
		}
		return filepath.Base(f.Name()), st.Size(), f, f, false, nil
	}
	defer rc.Close()
	if limit <= 0 {
		limit = 25 << 20
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(rc, limit+1)); err != nil {
		return "", 0, nil, nil, false, err
	}
	data := buf.Bytes()
	if int64(len(data)) > limit {
		over, data = true, data[:limit]
	}
	// The browser's picker (explorer on js) does not pass the file's
	// name on: it is named after its type.
	name = "file"
	if exts, _ := mime.ExtensionsByType(http.DetectContentType(data)); len(exts) > 0 {
		name = strings.SplitN(http.DetectContentType(data), "/", 2)[0] + preferredExt(exts)
	}
	return name, int64(len(data)), bytes.NewReader(data), nil, over, nil
}

// preferredExt picks the usual extension among exts (".jpg" over ".jpe").
func preferredExt(exts []string) string {
	for _, e := range exts {
		switch e {
		case ".jpg", ".png", ".gif", ".webp", ".pdf", ".txt":
			return e
		}
	}
	return exts[0]
}

// sendChosen puts a chosen file into the outbox, after checking its size
// against the server's limit, so that a file too big is refused at once
// with a clear sentence, not after an upload.
func (l *loop) sendChosen(ch chosen) {
	fail := func(reason string) {
		if ch.closer != nil {
			ch.closer.Close()
		}
		l.post(ch.session, ui.AttachFailed{Room: ch.room, Reason: reason})
	}
	switch {
	case ch.session != l.session:
		fail("")
		return
	case ch.err != nil:
		fail(sentence("cannot read the file: " + ch.err.Error()))
		return
	case l.c == nil:
		fail("Not connected: the file was not sent.")
		return
	case ch.size == 0:
		fail(ch.name + " is empty: there is nothing to send.")
		return
	}
	if limit := l.c.MaxUpload(); l.online && limit == 0 {
		fail("This server does not take files.")
		return
	} else if ch.over && limit > 0 && limit <= ch.size {
		fail(fmt.Sprintf("%s is larger than %s: this server takes files up to %s.", ch.name, ui.HumanSize(ch.size), ui.HumanSize(limit)))
		return
	} else if ch.over {
		// Read before the server's limit was known, up to the usual
		// 25 MiB: never send a part of it.
		fail(fmt.Sprintf("%s is larger than %s, the most read before the server said its limit: choose it again.", ch.name, ui.HumanSize(ch.size)))
		return
	} else if limit > 0 && ch.size > limit {
		fail(fmt.Sprintf("%s is %s: this server takes files up to %s.", ch.name, ui.HumanSize(ch.size), ui.HumanSize(limit)))
		return
	}
	id, err := l.c.SendFile(ch.room, client.Attachment{Name: ch.name, Size: ch.size, Content: ch.content, Reply: ch.reply})
	if err != nil {
		fail(sentence("not sent: " + err.Error()))
		return
	}
	if ch.closer != nil {
		l.uploads[id] = ch.closer
	}
	l.opts.Logger.Debug("file queued", "room", ch.room, "id", fmt.Sprintf("%x", id), "name", ch.name, "size", ch.size)
	l.post(l.session, ui.FileQueued{Room: protocol.Key(ch.room), ID: id, Name: ch.name, Size: ch.size, Reply: ch.reply})
}

// uploadEnded closes the file of upload id, which the client no longer
// reads (acknowledged, or given up).
func (l *loop) uploadEnded(id string) {
	if f, ok := l.uploads[id]; ok {
		f.Close()
		delete(l.uploads, id)
	}
}

// loadImage fetches and decodes a picture on a goroutine of its own
// (at most imageFetches at once), off the UI's and the loop's.
func (l *loop) loadImage(in ui.LoadImageIntent) {
	c, session := l.c, l.session
	if c == nil {
		l.post(session, ui.ImageLoaded{File: in.File, Err: "Not connected.", Transient: true})
		return
	}
	stall := cmp.Or(l.opts.FetchStall, fetchStall)
	l.images.push(func() {
		// No deadline for the whole: a 25 MiB picture over a slow link
		// takes minutes. A fetch that stops moving (the connection lost,
		// a server that stopped answering) is given up after stall.
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		stalled := fmt.Errorf("the server sent nothing of the file for %v", stall)
		watchdog := time.AfterFunc(stall, func() { cancel(stalled) })
		defer watchdog.Stop()
		maxBytes, box := int64(maxThumbBytes), thumbBox
		if in.Full {
			maxBytes, box = max(c.MaxUpload(), maxThumbBytes), ui.FullBox()
		}
		out := ui.ImageLoaded{File: in.File}
		data, _, err := c.FetchFile(ctx, in.Room, in.File, maxBytes, func(got, size int64) { watchdog.Reset(stall) })
		if err != nil && context.Cause(ctx) == stalled {
			err = stalled
		}
		transient := err != nil && !permanentFetchError(err)
		if err == nil {
			pixels := maxPixels
			if in.Full {
				l.decoding <- struct{}{}
			} else {
				pixels = 4 * int64(thumbBox.X) * int64(thumbBox.Y) // a preview is small
			}
			out.Image, err = imaging.Decode(data, pixels, box) // its failures stay
			if in.Full {
				<-l.decoding
			}
		}
		if err != nil {
			out.Err, out.Transient = fileError(err), transient
			l.opts.Logger.Debug("picture not loaded", "room", in.Room, "file", in.File, "err", err)
		} else {
			l.opts.Logger.Debug("picture loaded", "room", in.Room, "file", in.File, "full", in.Full,
				"width", out.Image.Bounds().Dx(), "height", out.Image.Bounds().Dy())
		}
		l.post(session, out)
	})
}

// saveFile asks where to save a file and downloads it there, on a goroutine
// of its own.
func (l *loop) saveFile(in ui.SaveFileIntent) {
	c, session, picker := l.c, l.session, l.opts.Files
	done := func(s ui.FileSaved) {
		s.Room, s.Name = in.Room, in.File.Name
		l.post(session, s)
	}
	switch {
	case picker == nil:
		done(ui.FileSaved{Err: "files cannot be saved on this device"})
		return
	case c == nil:
		done(ui.FileSaved{Err: "not connected"})
		return
	}
	go func() {
		// Downloaded first, then written where the user chooses: the
		// system's dialog creates (truncates) the target at once, so a
		// download that fails must not have reached it (a partial file
		// under the real name, or a truncated browser download).
		content, err := downloadAside(c, in.Room, in.File)
		if err != nil {
			done(ui.FileSaved{Err: fileError(err)})
			return
		}
		defer content.Close()
		w, err := picker.CreateFile(in.File.Name)
		if errors.Is(err, explorer.ErrUserDecline) {
			done(ui.FileSaved{Cancelled: true})
			return
		}
		if err != nil {
			done(ui.FileSaved{Err: err.Error()})
			return
		}
		_, err = io.Copy(w, content)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			done(ui.FileSaved{Err: sentence("not saved: " + err.Error())})
			return
		}
		l.opts.Logger.Debug("file saved", "room", in.Room, "file", in.File.ID, "name", in.File.Name)
		done(ui.FileSaved{})
	}()
}

// errLongerThanSaid stops a download that sends more than the file's size.
var errLongerThanSaid = errors.New("the server sent more than the file's size")

// aside is a downloaded file waiting to be written where the user
// chooses: a temporary file where there is a file system, else memory.
type aside struct {
	io.Reader
	tmp *os.File // nil: in memory
}

func (a *aside) Close() error {
	if a.tmp == nil {
		return nil
	}
	a.tmp.Close()
	return os.Remove(a.tmp.Name())
}

// downloadAside downloads f whole, at most f.Size bytes (the server
// bounds it by its -max-upload), into a temporary file, or into memory
// where there is no file system (the browser).
func downloadAside(c *client.Client, room string, f protocol.File) (*aside, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tmp, err := os.CreateTemp("", "chat-download-*")
	if err != nil {
		var buf bytes.Buffer
		if _, err := c.Download(ctx, room, f.ID, &boundedWriter{w: &buf, left: int64(f.Size)}, nil); err != nil {
			return nil, err
		}
		return &aside{Reader: &buf}, nil
	}
	a := &aside{Reader: tmp, tmp: tmp}
	if _, err := c.Download(ctx, room, f.ID, &boundedWriter{w: tmp, left: int64(f.Size)}, nil); err != nil {
		a.Close()
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// boundedWriter refuses to write more than left bytes.
type boundedWriter struct {
	w    io.Writer
	left int64
}

func (b *boundedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > b.left {
		return 0, errLongerThanSaid
	}
	b.left -= int64(len(p))
	return b.w.Write(p)
}

// permanentFetchError tells a fetch's failure that asking again would
// not mend: the file gone, not ours to see, the server without files, or
// a file over the bound.
func permanentFetchError(err error) bool {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		switch perr.Code {
		case protocol.CodeNotFound, protocol.CodeForbidden, protocol.CodeTooBig, protocol.CodeInvalid:
			return true
		}
		return false
	}
	return errors.Is(err, client.ErrUnsupported)
}

// fileError words a failed fetch for the user.
func fileError(err error) string {
	var perr *protocol.Error
	switch {
	case errors.Is(err, client.ErrUnsupported):
		return "This server does not serve files."
	case errors.Is(err, context.DeadlineExceeded):
		return "The server did not send the file in time."
	case errors.Is(err, imaging.ErrTooManyPixels):
		return "The picture is too large to show at full size on this device: this is its preview."
	case errors.As(err, &perr):
		switch perr.Code {
		case protocol.CodeNotFound:
			return "The file is no longer there."
		case protocol.CodeForbidden:
			return "Only the conversation's members may fetch its files."
		}
		if perr.Text != "" {
			return sentence(perr.Text)
		}
	}
	return sentence(err.Error())
}

// uploadRefused words the refusal of an upload (RoomError with the
// upload's id in Unsent).
func uploadRefused(e *protocol.Error) string {
	switch e.Code {
	case protocol.CodeTooBig:
		return "the file is larger than this server takes"
	case protocol.CodeQuota:
		return "no room left for your files on this server"
	case protocol.CodeInvalid:
		if e.Text != "" {
			return e.Text
		}
		return "the server refused the file"
	}
	if e.Text != "" {
		return e.Text
	}
	return e.Error()
}
