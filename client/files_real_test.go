package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // previews are JPEG
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// testPNG is a real PNG of w×h pixels.
func testPNG(t *testing.T, w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func attach(name string, data []byte, caption string) client.Attachment {
	return client.Attachment{Name: name, Size: int64(len(data)), Content: bytes.NewReader(data), Caption: caption}
}

// TestFileSentBetweenTwoClientsAndDownloaded runs the whole flow on the
// real server: alice sends a file and an image with SendFile (progress
// up to Done, then Acked); bob gets both messages with their File, and
// downloads the file (its SHA-256 is the File.ID and the content is the
// same) and the image's preview (a real image, smaller); a history page
// carries the files too; a file that no message of the room carries is
// refused not-found.
func TestFileSentBetweenTwoClientsAndDownloaded(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice"})
	bob := joined(t, client.Config{Addr: srv.Addr, Name: "bob"})
	if alice.C.MaxUpload() <= 0 {
		t.Fatalf("MaxUpload = %d from a server with files", alice.C.MaxUpload())
	}
	data := randomContent(700_000)
	pic := testPNG(t, 640, 400)
	id, err := alice.C.SendFile("general", attach("/tmp/report.bin", data, "the report"))
	if err != nil {
		t.Fatal(err)
	}
	picID, err := alice.C.SendFile("general", attach("pic.png", pic, ""))
	if err != nil {
		t.Fatal(err)
	}
	done := waitEvent(t, alice, func(e client.Uploading) bool { return e.ID == id && e.Done })
	if done.Sent != int64(len(data)) || done.Size != int64(len(data)) || done.Room != "general" {
		t.Errorf("last progress %+v", done)
	}
	waitEvent(t, alice, func(e client.Acked) bool { return e.ID == id })
	waitEvent(t, alice, func(e client.Acked) bool { return e.ID == picID })

	got := waitEvent(t, bob, func(e client.Message) bool { return e.ID == id })
	f := got.File
	if f == nil || f.Name != "report.bin" || f.Size != uint64(len(data)) || f.ID != sha(data) || got.Text != "the report" || got.Deleted {
		t.Fatalf("bob got %+v with file %+v", got, f)
	}
	var buf bytes.Buffer
	var calls int
	var last int64
	mime, err := bob.C.Download(context.Background(), "general", f.ID, &buf, func(n, size int64) { calls, last = calls+1, n })
	if err != nil {
		t.Fatal(err)
	}
	if sha(buf.Bytes()) != sha(data) || last != int64(len(data)) || calls < 2 || mime == "" {
		t.Errorf("downloaded %d bytes (sha %s…, %d progress calls, mime %q); want the %d sent", buf.Len(), sha(buf.Bytes())[:8], calls, mime, len(data))
	}

	img := waitEvent(t, bob, func(e client.Message) bool { return e.ID == picID })
	if img.File == nil || !img.File.IsImage() || img.File.Type != "image/png" || img.File.Width != 640 || img.File.Height != 400 || img.Text != "" || img.Deleted {
		t.Fatalf("bob got the image as %+v with file %+v", img, img.File)
	}
	thumb, tmime, err := bob.C.FetchFile(context.Background(), "general", img.File.Thumb, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(thumb))
	if err != nil || !strings.HasSuffix(tmime, format) || cfg.Width != int(img.File.ThumbWidth) || cfg.Width > 320 || cfg.Height > 320 {
		t.Errorf("preview: %v, %s (%s) %dx%d, file says %dx%d", err, tmime, format, cfg.Width, cfg.Height, img.File.ThumbWidth, img.File.ThumbHeight)
	}
	if _, _, err := bob.C.FetchFile(context.Background(), "general", img.File.ID, 100, nil); err == nil {
		t.Error("FetchFile of a file over its max: no error")
	}

	if err := bob.C.History("general", 0, 10); err != nil {
		t.Fatal(err)
	}
	page := waitEvent(t, bob, func(e client.Page) bool { return e.Room == "general" })
	files := 0
	for _, m := range page.Messages {
		if m.File != nil && (m.File.ID == f.ID || m.File.ID == img.File.ID) {
			files++
		}
	}
	if files != 2 {
		t.Errorf("the history page has %d of the 2 files: %+v", files, page.Messages)
	}

	_, err = bob.C.Download(context.Background(), "general", sha([]byte("never sent")), &buf, nil)
	var perr *protocol.Error
	if !errors.As(err, &perr) || perr.Code != protocol.CodeNotFound {
		t.Errorf("download of a file no message carries: %v, want not-found", err)
	}
}

// uploadTap counts the UPLOAD data a client writes, cuts its first
// connection once more than cutAt bytes went, and records the UPLOADED
// frames read on each connection.
type uploadTap struct {
	cutAt int

	mu       sync.Mutex
	sent     int
	perConn  map[int]int // UPLOAD data bytes by connection
	conns    int
	uploaded map[int][]*protocol.Uploaded // by connection, from 1
}

type uploadConn struct {
	client.Conn
	tap *uploadTap
	n   int
}

func (u *uploadTap) dial(ctx context.Context, addr string) (client.Conn, error) {
	c, err := client.DialTCP(ctx, addr)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.conns++
	return &uploadConn{Conn: c, tap: u, n: u.conns}, nil
}

func (c *uploadConn) WriteFrames(frames [][]byte, deadline time.Time) error {
	n := 0
	for _, f := range frames {
		if m, _ := protocol.Decode(f[protocol.LengthSize:]); m != nil {
			if up, ok := m.(*protocol.Upload); ok {
				n += len(up.Data)
			}
		}
	}
	err := c.Conn.WriteFrames(frames, deadline)
	c.tap.mu.Lock()
	c.tap.sent += n
	if c.tap.perConn == nil {
		c.tap.perConn = map[int]int{}
	}
	c.tap.perConn[c.n] += n
	cut := c.n == 1 && c.tap.sent > c.tap.cutAt
	c.tap.mu.Unlock()
	if cut {
		c.Conn.Close() // the connection dies mid-upload
	}
	return err
}

func (c *uploadConn) ReadFrame() ([]byte, error) {
	body, err := c.Conn.ReadFrame()
	if err == nil {
		if m, _ := protocol.Decode(body); m != nil {
			if up, ok := m.(*protocol.Uploaded); ok {
				c.tap.mu.Lock()
				if c.tap.uploaded == nil {
					c.tap.uploaded = map[int][]*protocol.Uploaded{}
				}
				c.tap.uploaded[c.n] = append(c.tap.uploaded[c.n], up)
				c.tap.mu.Unlock()
			}
		}
	}
	return body, err
}

// TestUploadResumesAfterAKilledConnection: the connection dies when half
// of a file is sent; after the reconnect the client sends the begin
// frame, the server answers with what it has (more than 0), and the
// client goes on from there: in all it sends less than 1.5 times the
// file, and the file arrives whole.
func TestUploadResumesAfterAKilledConnection(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	data := randomContent(3 << 20)
	tp := &uploadTap{cutAt: len(data) / 2}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	bob := joined(t, client.Config{Addr: srv.Addr, Name: "bob"})
	id, err := alice.C.SendFile("general", attach("big.bin", data, "resumed"))
	if err != nil {
		t.Fatal(err)
	}
	waitReconnecting(t, alice, 1)
	waitEvent(t, alice, func(e client.Acked) bool { return e.ID == id })
	got := waitEvent(t, bob, func(e client.Message) bool { return e.ID == id })
	if got.File == nil || got.File.ID != sha(data) {
		t.Fatalf("bob got %+v", got)
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.conns < 2 || len(tp.uploaded[2]) == 0 {
		t.Fatalf("%d connections, UPLOADED on the second: %v", tp.conns, tp.uploaded[2])
	}
	if begin := tp.uploaded[2][0]; begin.Received == 0 || begin.File != nil {
		t.Errorf("the server's answer to the begin frame after the reconnect: %+v; want some bytes received", begin)
	}
	if tp.sent >= len(data)*3/2 {
		t.Errorf("%d bytes of UPLOAD data sent for a file of %d: the upload started over", tp.sent, len(data))
	}
	// The first progress after the reconnect says what the server had.
	var after []client.Uploading
	reconnected := false
	for _, ev := range alice.Events() {
		switch e := ev.(type) {
		case client.StateChanged:
			reconnected = reconnected || e.State == client.Reconnecting
		case client.Uploading:
			if reconnected {
				after = append(after, e)
			}
		}
	}
	if len(after) == 0 || after[0].Sent != int64(tp.uploaded[2][0].Received) {
		t.Errorf("progress after the reconnect %+v; want first the server's %d", after, tp.uploaded[2][0].Received)
	}
}

// TestUploadOverTheLimitsIsRefused: a file over -max-upload is refused
// by SendFile at once once the client knows the limit, and by the server
// (too-big, as a RoomError with the upload's id) when it was queued
// before; a file over the name's quota is refused (quota) and the
// client goes on: a small file after it is sent.
func TestUploadOverTheLimitsIsRefused(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-max-upload", "100000", "-upload-quota", "150KB", "-upload-total", "1MiB"}})
	tp := &tap{}
	tp.holdDials()
	alice := clienttest.New(t, fast(client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial}))
	if err := alice.C.Join("general"); err != nil {
		t.Fatal(err)
	}
	// Queued before the client knows the limit: the server refuses it.
	big, err := alice.C.SendFile("general", attach("big.bin", randomContent(100_001), ""))
	if err != nil {
		t.Fatal(err)
	}
	tp.releaseDials()
	refusal := waitEvent(t, alice, func(e client.RoomError) bool { return len(e.Unsent) == 1 && e.Unsent[0] == big })
	if refusal.Err.Code != protocol.CodeTooBig || !refusal.Stays || refusal.Room != "general" {
		t.Errorf("refusal %+v (%v)", refusal, refusal.Err)
	}
	if got := alice.C.MaxUpload(); got != 100000 {
		t.Errorf("MaxUpload = %d, want 100000", got)
	}
	if _, err := alice.C.SendFile("general", attach("big.bin", randomContent(100_001), "")); err == nil ||
		!strings.Contains(err.Error(), "100.0 kB") {
		t.Errorf("SendFile over MaxUpload: %v", err)
	}

	first, err := alice.C.SendFile("general", attach("a.bin", randomContent(90_000), ""))
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, alice, func(e client.Acked) bool { return e.ID == first })
	over, err := alice.C.SendFile("general", attach("b.bin", randomContent(90_001), ""))
	if err != nil {
		t.Fatal(err)
	}
	refusal = waitEvent(t, alice, func(e client.RoomError) bool { return len(e.Unsent) == 1 && e.Unsent[0] == over })
	if refusal.Err.Code != protocol.CodeQuota || !refusal.Stays {
		t.Errorf("refusal over the quota: %+v (%v)", refusal, refusal.Err)
	}
	small, err := alice.C.SendFile("general", attach("c.txt", []byte("small enough"), "still going"))
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, alice, func(e client.Acked) bool { return e.ID == small })
	if p := alice.C.Pending(); len(p) != 0 {
		t.Errorf("still pending: %d", len(p))
	}
}

// TestUploadResumesOnAnotherNodeOfACluster: two chat servers on one NATS.
// alice's connection to the first dies mid-upload; she reconnects to the
// second, which answers the begin frame with what the first had stored
// (partial uploads live in JetStream), and the upload goes on from
// there, not from 0. bob, on the first node, downloads the file whole.
func TestUploadResumesOnAnotherNodeOfACluster(t *testing.T) {
	url := startNATS(t)
	one := testserver.Start(t, testserver.Options{Args: []string{"-nats", url}})
	two := testserver.Start(t, testserver.Options{Args: []string{"-nats", url}})
	data := randomContent(2<<20 + 999)
	tp := &uploadTap{cutAt: len(data) / 2}
	alice := joined(t, client.Config{Addr: one.Addr, Addrs: []string{two.Addr}, Name: "alice", Dial: tp.dial})
	bob := joined(t, client.Config{Addr: one.Addr, Name: "bob"})
	id, err := alice.C.SendFile("general", attach("cluster.bin", data, ""))
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, alice, func(e client.Acked) bool { return e.ID == id })
	got := waitEvent(t, bob, func(e client.Message) bool { return e.ID == id })
	if got.File == nil || got.File.ID != sha(data) {
		t.Fatalf("bob got %+v", got)
	}
	var buf bytes.Buffer
	if _, err := bob.C.Download(context.Background(), "general", got.File.ID, &buf, nil); err != nil || sha(buf.Bytes()) != sha(data) {
		t.Fatalf("bob's download: %d bytes, %v", buf.Len(), err)
	}
	var addrs []string
	for _, ev := range alice.Events() {
		if s, ok := ev.(client.StateChanged); ok && s.State == client.Connected {
			addrs = append(addrs, s.Addr)
		}
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if len(addrs) < 2 || addrs[1] != two.Addr {
		t.Errorf("alice connected to %v; want the second node after the first", addrs)
	}
	if len(tp.uploaded[2]) == 0 || tp.uploaded[2][0].Received == 0 {
		t.Errorf("the second node's answer to the begin frame: %v; want some bytes received", tp.uploaded[2])
	}
	// The second node's answer to the begin frame is exact: the store
	// fences the upload there, so chunks of the lost connection that the
	// first node still stores after it are refused, and the second
	// connection sends exactly the rest. (The first connection's bytes
	// in flight when it died are lost whatever the server does: in all
	// about 1.3 to 1.5 times the file go.)
	if len(tp.uploaded[2]) > 0 {
		if want := int64(len(data)) - int64(tp.uploaded[2][0].Received); int64(tp.perConn[2]) != want {
			t.Errorf("the second connection sent %d bytes of data; want %d, the rest after the begin answer", tp.perConn[2], want)
		}
	}
	t.Logf("%d bytes of UPLOAD data sent for a file of %d; UPLOADED: %s", tp.sent, len(data), tp.answers())
}

// answers lists the UPLOADED frames, by connection.
func (u *uploadTap) answers() string {
	var b strings.Builder
	for n := 1; n <= u.conns; n++ {
		fmt.Fprintf(&b, "\nconnection %d (%d bytes of data sent):", n, u.perConn[n])
		for _, up := range u.uploaded[n] {
			fmt.Fprintf(&b, " %d", up.Received)
			if up.File != nil {
				b.WriteString(" (file)")
			}
		}
	}
	return b.String()
}

// TestFileOfADeletedMessageAndOfAMutedName: bob deletes his file
// message; alice sees it deleted without its file (Deleted, File nil)
// and can no longer download the file (not-found). Muted by alice, bob's
// next SendFile is refused (muted) as a RoomError naming it, and nothing
// stays pending.
func TestFileOfADeletedMessageAndOfAMutedName(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "alice"}, "mods")
	bob, _ := inRoom(t, client.Config{Addr: srv.Addr, Name: "bob"}, "mods")
	data := randomContent(50_000)
	id, err := bob.C.SendFile("mods", attach("gone.bin", data, ""))
	if err != nil {
		t.Fatal(err)
	}
	ack := waitEvent(t, bob, func(e client.Acked) bool { return e.ID == id })
	got := waitEvent(t, alice, func(e client.Message) bool { return e.ID == id })
	if got.File == nil || got.Deleted {
		t.Fatalf("alice got %+v", got)
	}
	del, err := bob.C.Delete("mods", ack.Seq)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, bob, func(e client.Acked) bool { return e.ID == del })
	u := waitEvent(t, alice, func(e client.Updated) bool { return e.Kind == protocol.ChangeDelete && e.Target == ack.Seq })
	if u.Message == nil || !u.Message.Deleted || u.Message.File != nil {
		t.Fatalf("the deleted message: %+v", u.Message)
	}
	var buf bytes.Buffer
	_, err = alice.C.Download(context.Background(), "mods", got.File.ID, &buf, nil)
	var perr *protocol.Error
	if !errors.As(err, &perr) || perr.Code != protocol.CodeNotFound {
		t.Errorf("download of a deleted message's file: %v, want not-found", err)
	}

	if _, err := moderate(t, alice.C, "mods", client.Moderation{Action: protocol.ModMute, Target: "bob", For: time.Hour}); err != nil {
		t.Fatal(err)
	}
	waitModEvent(t, bob, protocol.ModMute)
	id, err = bob.C.SendFile("mods", attach("muted.bin", data, "hear me"))
	if err != nil {
		t.Fatal(err)
	}
	re := waitRoomError(t, bob, "mods", protocol.CodeMuted)
	if !re.Stays || len(re.Unsent) != 1 || re.Unsent[0] != id {
		t.Fatalf("muted: %+v", re)
	}
	if p := bob.C.Pending(); len(p) != 0 {
		t.Fatalf("pending after muted: %q", p)
	}
}
