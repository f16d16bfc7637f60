package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"chat/client"
	"chat/internal/modcmd"
	"chat/protocol"
)

// Files: /upload PATH [caption] sends a file to the current room (the
// upload goes on in the background, through the outbox like a line: it
// resumes after a reconnect), /download ID PATH saves the file of
// message ID (its number [12] in the current room, or a file id). A file
// message prints as "alice sent photo.jpg (1.2 MB): caption".

// sending is an upload of /upload, until its message is stored or given up.
type sending struct {
	file  *os.File
	name  string
	size  int64
	room  string
	shown time.Time // last progress line printed (a terminal only)
	pct   int64     // percentage of that line
}

// progressEvery is the least time between two progress lines of a
// transfer on a terminal.
const progressEvery = time.Second

// progressTold is the least time between two notes of a download's
// progress to the terminal's loop, which waits at the end of input as
// long as downloads make progress.
const progressTold = 100 * time.Millisecond

// fileCommand handles /upload and /download; it reports false for a line
// that is neither. It returns the id of a message sent.
func (t *term) fileCommand(cmd, arg string) (id string, ok bool) {
	switch cmd {
	case "/upload":
		return t.upload(arg), true
	case "/download":
		t.download(arg)
		return "", true
	}
	return "", false
}

// uploadArg splits "PATH [caption]": the whole argument when it names a
// file (a path with spaces), else the first word.
func uploadArg(arg string) (path, caption string) {
	if _, err := os.Stat(arg); err == nil {
		return arg, ""
	}
	path, caption, _ = strings.Cut(arg, " ")
	return path, strings.TrimSpace(caption)
}

func (t *term) upload(arg string) string {
	room := t.current
	if arg == "" {
		t.fail("usage: /upload PATH [caption]")
		return ""
	}
	if room == "" {
		t.fail("/upload: you are in no room; /join one")
		return ""
	}
	t.numbersOn() // so that the file's message shows the number /download takes
	path, caption := uploadArg(arg)
	fail := func(format string, args ...any) string {
		t.refused++
		t.fail("/upload %s: "+format, append([]any{clean(path)}, args...)...)
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail("no such file")
		}
		return fail("%v", err)
	}
	st, err := f.Stat()
	switch {
	case err != nil:
		f.Close()
		return fail("%v", err)
	case st.IsDir():
		f.Close()
		return fail("is a directory; give a file")
	case !st.Mode().IsRegular():
		f.Close()
		return fail("is not a regular file")
	}
	name := filepath.Base(path)
	id, err := t.c.SendFile(room, client.Attachment{Name: name, Size: st.Size(), Content: f, Caption: caption})
	if err != nil {
		f.Close()
		if errors.Is(err, client.ErrUnsupported) {
			return fail("the server does not take files")
		}
		return fail("%v", err)
	}
	t.uploads[id] = &sending{file: f, name: name, size: st.Size(), room: room}
	return id
}

// uploading prints an upload's progress on a terminal (about once a
// second), and one line when the file is stored, in a pipe too.
func (t *term) uploading(e client.Uploading) {
	s := t.uploads[e.ID]
	if s == nil {
		return
	}
	if e.Done {
		fmt.Fprintf(t.out, "%s-- uploaded %s (%s)\n", t.prefix(e.Room), clean(s.name), client.FormatSize(s.size))
		return
	}
	if !t.tty || e.Size <= 0 {
		return
	}
	pct := e.Sent * 100 / e.Size
	if time.Since(s.shown) < progressEvery || pct == s.pct {
		return
	}
	s.shown, s.pct = time.Now(), pct
	fmt.Fprintf(t.out, "%s-- uploading %s: %d%% (%s of %s)\n", t.prefix(e.Room), clean(s.name), pct,
		client.FormatSize(e.Sent), client.FormatSize(e.Size))
}

// uploadDone forgets the upload of id, its message stored or given up.
func (t *term) uploadDone(id string) {
	if s := t.uploads[id]; s != nil {
		s.file.Close()
		delete(t.uploads, id)
	}
}

// uploadRefused prints the refusal of uploads (by their ids); it reports
// whether every id of e was one.
func (t *term) uploadRefused(e client.RoomError) bool {
	if len(e.Unsent) == 0 || e.Err == nil {
		return false
	}
	for _, id := range e.Unsent {
		if t.uploads[id] == nil {
			return false
		}
	}
	for _, id := range e.Unsent {
		s := t.uploads[id]
		var text string
		switch e.Err.Code {
		case protocol.CodeTooBig:
			text = "refused: too big"
		case protocol.CodeQuota:
			text = "refused: over the upload quota"
		case protocol.CodeMuted:
			text = "refused: you are muted in " + t.label(e.Room)
		default:
			text = "refused"
		}
		if detail := clean(modcmd.ErrorText(e.Err)); detail != "" {
			text += " (" + detail + ")"
		}
		t.fail("/upload %s: %s", clean(s.name), text)
		t.uploadDone(id)
	}
	return true
}

// fileLine is what a file message prints after its sender: " sent
// photo.jpg (1.2 MB)".
func fileLine(f *protocol.File) string {
	return fmt.Sprintf(" sent %s (%s)", clean(f.Name), client.FormatSize(int64(min(f.Size, 1<<62))))
}

// rememberFile keeps the file of message seq, for /download SEQ.
func (v *view) rememberFile(seq uint64, f *protocol.File) {
	if v.files == nil || len(v.files) >= maxRecent {
		v.files = map[uint64]*protocol.File{}
	}
	v.files[seq] = f
}

// fileID reports whether s looks like a file id (a SHA-256 in hex).
func fileID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// download saves the file of message SEQ (or the file id) of the current
// room to PATH (a directory: under the file's name), in the background.
func (t *term) download(arg string) {
	which, path, _ := strings.Cut(strings.TrimSpace(arg), " ")
	path = strings.TrimSpace(path)
	room := t.current
	v := t.views[room]
	switch {
	case which == "" || path == "":
		t.fail("usage: /download ID PATH (ID: the message's number [SEQ] in this room, or a file id; PATH: a file or a directory)")
		return
	case v == nil:
		t.fail("/download: you are in no room; /join one")
		return
	}
	t.numbersOn()
	fail := func(format string, args ...any) {
		t.refused++
		t.fail("/download %s: "+format, append([]any{clean(which)}, args...)...)
	}
	var file *protocol.File
	if id := strings.ToLower(which); fileID(id) {
		file = &protocol.File{ID: id, Name: id}
		for _, f := range v.files {
			if f.ID == id || f.Thumb == id {
				file = &protocol.File{ID: id, Name: f.Name, Size: f.Size}
				break
			}
		}
	} else {
		seq, err := strconv.ParseUint(strings.Trim(which, "[]#"), 10, 64)
		if err != nil || seq == 0 {
			fail("not a message number or a file id")
			return
		}
		if file = v.files[seq]; file == nil {
			fail("no file in message %s of %s (that this terminal has shown)", seqLabel(seq), v.label)
			return
		}
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, safeName(file.Name))
	}
	if _, err := os.Lstat(path); err == nil {
		fail("%s exists already; give another path", clean(path))
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), partPattern(filepath.Base(path)))
	if err != nil {
		fail("%v", err)
		return
	}
	t.downloads++
	t.transfers.Add(1)
	go func() {
		defer t.transfers.Done()
		var shown, told time.Time
		_, err := t.c.Download(context.Background(), room, file.ID, tmp, func(got, size int64) {
			show := t.tty && time.Since(shown) >= progressEvery && got < size
			if !show && time.Since(told) < progressTold {
				return
			}
			told = time.Now()
			if show {
				shown = told
			}
			t.later(func() {
				t.moved = true // the end of input waits on
				if show {
					fmt.Fprintf(t.out, "-- downloading %s: %d%% (%s of %s)\n", clean(file.Name), got*100/size,
						client.FormatSize(got), client.FormatSize(size))
				}
			})
		})
		var size int64
		if err == nil {
			var st os.FileInfo
			if st, err = tmp.Stat(); err == nil {
				size = st.Size()
			}
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = placeDownload(tmp.Name(), path)
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
		t.later(func() {
			t.downloads--
			t.moved = true // the others are waited for from here
			if err != nil {
				var perr *protocol.Error
				if errors.As(err, &perr) && perr.Code == protocol.CodeNotFound {
					err = errors.New("no message of this room has that file (deleted, or never sent here)")
				} else if errors.As(err, &perr) {
					err = errors.New(modcmd.ErrorText(perr))
				}
				fail("%v", err)
				return
			}
			fmt.Fprintf(t.out, "-- downloaded %s (%s) to %s\n", clean(file.Name), client.FormatSize(size), clean(path))
		})
	}()
}

// partPattern is the os.CreateTemp pattern of a download's partial file
// next to base: hidden, and within the 255 bytes of a file name however
// long base is (its first 64 bytes are kept).
func partPattern(base string) string {
	if len(base) > 64 {
		base = strings.ToValidUTF8(base[:64], "")
	}
	return "." + base + ".*.part"
}

// errExists is placeDownload's error for a path that exists.
var errExists = errors.New("exists already")

// placeDownload gives the complete download tmp its name path, never replacing a
// file there (another /download to the same place may have finished
// first): a hard link, which fails if path exists, then tmp goes. Where
// links are not supported, a rename after checking again.
func placeDownload(tmp, path string) error {
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		os.Remove(tmp)
		return nil
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s %w; give another path", clean(path), errExists)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s %w; give another path", clean(path), errExists)
	}
	return os.Rename(tmp, path)
}

// safeName is a file name from the server made safe to create in a
// directory: no directories, no hidden or empty name.
func safeName(name string) string {
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || unsafeRune(r) {
			return '_'
		}
		return r
	}, name)
	name = strings.TrimLeft(name, ".")
	if name == "" {
		name = "download"
	}
	return name
}

// fileHelp is the help of the commands above.
var fileHelp = [][2]string{
	{"/upload PATH [CAPTION]", "send the file PATH to the current room, with an optional caption"},
	{"/download ID PATH", "save the file of message ID ([SEQ], or a file id) to PATH (a directory: under its name)"},
}
