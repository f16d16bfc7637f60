package chatapp_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gioui.org/io/key"
	"gioui.org/x/explorer"

	"chat/app/internal/chatapp"
	"chat/app/internal/settings"
	"chat/client"
	"chat/internal/testserver"
	"chat/protocol"
)

// dialogs stands in for the system's file dialogs (the xdg portal, the
// browser's file input), which need a person: each ChooseFile opens the
// next real file queued, each CreateFile creates a real file in a
// directory. The window tests drive the real dialogs' protocols.
type dialogs struct {
	mu      sync.Mutex
	choose  []string
	saveDir string
	saved   chan string
}

func (d *dialogs) ChooseFile(...string) (io.ReadCloser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.choose) == 0 {
		return nil, explorer.ErrUserDecline
	}
	path := d.choose[0]
	d.choose = d.choose[1:]
	return os.Open(path)
}

func (d *dialogs) CreateFile(name string) (io.WriteCloser, error) {
	f, err := os.Create(filepath.Join(d.saveDir, name))
	if err != nil {
		return nil, err
	}
	return savedFile{f, d.saved}, nil
}

type savedFile struct {
	*os.File
	saved chan string
}

func (f savedFile) Close() error {
	err := f.File.Close()
	f.saved <- f.Name()
	return err
}

func (d *dialogs) queue(path string) {
	d.mu.Lock()
	d.choose = append(d.choose, path)
	d.mu.Unlock()
}

// writePNG writes a w×h PNG with a gradient (so it does not compress to
// nothing) and returns its path and bytes.
func writePNG(t *testing.T, dir, name string, w, h int) (string, []byte) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: uint8(x ^ y), A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, buf.Bytes()
}

// fileMessage waits for the peer's message carrying a file named name.
func (p *peer) fileMessage(name string) client.Message {
	p.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m := <-p.msgs:
			if m.File != nil && m.File.Name == name {
				return m
			}
		case <-deadline:
			p.t.Fatalf("%s did not receive the file %s", p.c.Name(), name)
		}
	}
}

// TestSharingFilesThroughTheApp: the app against the real server, with
// bob on the client library. Alice attaches a picture: bob gets it with
// its preview's size, and the same bytes; her row shows the preview,
// loaded from the server and decoded, and a click shows it at full size.
// Bob's PDF shows as a file row whose Save writes the same bytes. A file
// over the server's limit is refused before any upload, with a sentence.
func TestSharingFilesThroughTheApp(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-max-upload", "1MiB"}})
	dir := t.TempDir()
	d := &dialogs{saveDir: t.TempDir(), saved: make(chan string, 4)}
	r := startRigOpts(t, srv.Addr, settings.Open(t.TempDir()), image.Pt(900, 720), func(o *chatapp.Options) {
		o.Tune = fastBackoff
		o.Files = d
	})
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("connected")
	bob := newPeer(t, srv.Addr, "bob")
	r.waitShows("bob joined")

	photo, photoBytes := writePNG(t, dir, "photo.png", 640, 480)
	d.queue(photo)
	r.click("Attach a file")
	m := bob.fileMessage("photo.png")
	f := m.File
	if !f.IsImage() || f.Width != 640 || f.Height != 480 || f.ThumbWidth != 320 || f.ThumbHeight != 240 || f.Type != "image/png" {
		t.Fatalf("bob got the file %+v, want a 640x480 PNG with a 320x240 preview", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, _, err := bob.c.FetchFile(ctx, "general", f.ID, 1<<20, nil)
	if err != nil || !bytes.Equal(got, photoBytes) {
		t.Fatalf("bob fetched %d bytes (err %v), want the %d sent", len(got), err, len(photoBytes))
	}
	r.waitFor("alice's preview to load", func() bool {
		n, ok := r.Find("picture photo.png")
		return ok && !strings.Contains(n.Text, "loading")
	})
	n, _ := r.Find("picture photo.png")
	if sz := n.Bounds.Size(); sz != image.Pt(320, 240) {
		t.Fatalf("the preview shows at %v, want 320x240", sz)
	}
	r.click("picture photo.png")
	r.waitFor("the full-size picture", func() bool {
		n, ok := r.Find("full size photo.png")
		return ok && !strings.Contains(n.Text, "loading")
	})
	r.click("Close")
	r.waitShows("picture photo.png")

	pdf := []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	if _, err := bob.c.SendFile("general", client.Attachment{Name: "minutes.pdf", Size: int64(len(pdf)), Content: bytes.NewReader(pdf)}); err != nil {
		t.Fatal(err)
	}
	r.waitShows("minutes.pdf")
	r.mustShow("PDF")
	r.click("Save")
	select {
	case path := <-d.saved:
		saved, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(saved, pdf) {
			t.Fatalf("saved %q (err %v), want the PDF bob sent", saved, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("nothing was saved")
	}
	r.waitShows("Saved minutes.pdf")

	big := filepath.Join(dir, "backup.tar")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), 3<<19), 0o600); err != nil { // 1.5 MiB: over the 1 MiB limit
		t.Fatal(err)
	}
	d.queue(big)
	r.click("Attach a file")
	r.waitShows("backup.tar is 1.5 MB: this server takes files up to 1 MB.")
}

// TestNoAttachOnAServerWithoutFiles: connected to a server started with
// -max-upload 0 (it takes no files), the app shows no attach button
// rather than one that can only be refused.
func TestNoAttachOnAServerWithoutFiles(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-max-upload", "0"}})
	r := startRigOpts(t, srv.Addr, settings.Open(t.TempDir()), image.Pt(900, 720), func(o *chatapp.Options) {
		o.Tune = fastBackoff
		o.Files = &dialogs{saveDir: t.TempDir(), saved: make(chan string, 1)}
	})
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("connected") // the same event says the server takes no files
	r.mustShow("Send")
	r.mustNotShow("Attach a file")
}

// noisePNG is a PNG of random pixels: it does not compress, so its size
// is about 4·w·h bytes.
func noisePNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Uint32())
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// holdParts is a client.Conn that, while hold is set, holds back the
// PART frames the server sends (a server or link that stopped sending
// a file), until released.
type holdParts struct {
	client.Conn
	hold    *atomic.Bool
	release chan struct{}
}

func (c holdParts) ReadFrame() ([]byte, error) {
	body, err := c.Conn.ReadFrame()
	if err == nil && c.hold.Load() && protocol.Type(body[0]) == protocol.TypePart {
		<-c.release
	}
	return body, err
}

// TestPictureFetchWaitsWhileItMoves: a full-size picture that takes
// longer than the app's stall bound to arrive (the server's file rate)
// still loads, because parts keep coming; one whose parts stop coming is
// given up after the stall bound, with a sentence in the view.
func TestPictureFetchWaitsWhileItMoves(t *testing.T) {
	const stall = time.Second
	srv := testserver.Start(t, testserver.Options{Args: []string{"-file-rate", "512KiB"}})
	var hold atomic.Bool
	release := make(chan struct{})
	defer close(release)
	r := startRigOpts(t, srv.Addr, settings.Open(t.TempDir()), image.Pt(900, 720), func(o *chatapp.Options) {
		o.FetchStall = stall
		o.Tune = func(c *client.Config) {
			fastBackoff(c)
			c.Dial = func(ctx context.Context, addr string) (client.Conn, error) {
				conn, err := client.DialTCP(ctx, addr)
				if err != nil {
					return nil, err
				}
				return holdParts{Conn: conn, hold: &hold, release: release}, nil
			}
		}
	})
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("connected")
	bob := newPeer(t, srv.Addr, "bob")

	// 2 MiB: past the server's 1 MiB burst, the rest comes at 512 KiB/s,
	// a part about every 125 ms: 2 s, twice the stall bound.
	big := noisePNG(t, 724, 724)
	if _, err := bob.c.SendFile("general", client.Attachment{Name: "big.png", Size: int64(len(big)), Content: bytes.NewReader(big)}); err != nil {
		t.Fatal(err)
	}
	r.waitFor("the preview of big.png", func() bool {
		n, ok := r.Find("picture big.png")
		return ok && !strings.Contains(n.Text, "loading")
	})
	start := time.Now()
	r.click("picture big.png")
	r.waitFor("the full-size big.png", func() bool {
		n, ok := r.Find("full size big.png")
		return ok && !strings.Contains(n.Text, "loading")
	})
	if took := time.Since(start); took < stall {
		t.Fatalf("the full-size picture came in %v, less than the stall bound: the test shows nothing", took)
	}
	r.click("Close")

	small := noisePNG(t, 100, 100)
	if _, err := bob.c.SendFile("general", client.Attachment{Name: "small.png", Size: int64(len(small)), Content: bytes.NewReader(small)}); err != nil {
		t.Fatal(err)
	}
	r.waitFor("the preview of small.png", func() bool {
		n, ok := r.Find("picture small.png")
		return ok && !strings.Contains(n.Text, "loading")
	})
	hold.Store(true)
	r.click("picture small.png")
	r.waitShows("The server sent nothing of the file for 1s.")
}
