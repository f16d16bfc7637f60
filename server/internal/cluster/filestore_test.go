package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/cluster/natstest"
	"chat/server/internal/files"
	"chat/server/internal/files/filestest"
	"chat/server/internal/history"
	"chat/server/internal/sqlite"
)

// fileNode is a node with its file store, on its own connection.
type fileNode struct {
	c   *Conn
	n   *Node
	rec *recorder
	fs  *FileStore
}

func startFileNode(t *testing.T, nc *natstest.Cluster, first int, name string, lim files.Limits) *fileNode {
	t.Helper()
	return startFileNodeWith(t, nc, first, name, FilesOptions{Limits: lim})
}

func startFileNodeWith(t *testing.T, nc *natstest.Cluster, first int, name string, opts FilesOptions) *fileNode {
	t.Helper()
	c := dial(t, nc, first, Options{Name: name})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts.CacheBytes = 1 << 20
	fs, err := c.Files(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fs.Close() })
	rec := newRecorder()
	n := node(t, c, rec, NodeOptions{ID: name, Files: fs})
	return &fileNode{c: c, n: n, rec: rec, fs: fs}
}

// upload sends content through Begin, Write in chunks and Finish.
func upload(t *testing.T, ctx context.Context, s files.Store, u files.Upload, content []byte) protocol.File {
	t.Helper()
	got, err := s.Begin(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	for got < int64(len(content)) {
		end := min(got+16<<10, int64(len(content)))
		if got, err = s.Write(ctx, u.Owner, u.ID, got, content[got:end]); err != nil {
			t.Fatal(err)
		}
	}
	f, err := s.Finish(ctx, u.Owner, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readAll(t *testing.T, ctx context.Context, s files.Store, room, id string) []byte {
	t.Helper()
	b, err := s.Open(ctx, room, id)
	if err != nil {
		t.Fatalf("open %s in %s: %v", id, room, err)
	}
	defer b.Close()
	out := make([]byte, b.Size())
	// In parts, as FETCHes read it.
	for off := int64(0); off < b.Size(); off += protocol.MaxPart {
		end := min(off+protocol.MaxPart, b.Size())
		if _, err := b.ReadAt(out[off:end], off); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	}
	return out
}

func publishWait(t *testing.T, ctx context.Context, fn *fileNode, p *broker.Publication) broker.Result {
	t.Helper()
	if err := fn.n.Publish(p); err != nil {
		t.Fatal(err)
	}
	if err := fn.n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	fn.rec.mu.Lock()
	defer fn.rec.mu.Unlock()
	for _, r := range fn.rec.results {
		if r.Request == p {
			if r.Err != nil {
				t.Fatalf("publish %s: %v", p.ID, r.Err)
			}
			return r
		}
	}
	t.Fatalf("no result for %s", p.ID)
	return broker.Result{}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// A file message keeps its file through reads, deliveries to another
// node, reactions and edits; a delete drops it with the text.
func TestMessagesCarryFiles(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startFileNode(t, nc, 0, "node-a", files.Limits{})
	b := startFileNode(t, nc, 0, "node-b", files.Limits{})
	if _, err := b.n.Subscribe(ctx, "room"); err != nil {
		t.Fatal(err)
	}
	f := &protocol.File{ID: hex.EncodeToString(make([]byte, 32)), Name: "a.png", Type: "image/png", Size: 10,
		Width: 4, Height: 3, Thumb: hex.EncodeToString(bytes.Repeat([]byte{1}, 32)), ThumbWidth: 4, ThumbHeight: 3}
	r := publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "m1", File: f})
	if r.Msg.File == nil || *r.Msg.File != *f || r.Msg.Text != "" {
		t.Fatalf("result: %+v", r.Msg)
	}
	b.rec.wait(t, 10*time.Second, "b's delivery", func(r *recorder) bool { return len(r.msgs) == 1 })
	if got := b.rec.msgs[0].File; got == nil || *got != *f {
		t.Fatalf("delivered: %+v", b.rec.msgs[0])
	}
	check := func(what string, want *protocol.File, text string) {
		t.Helper()
		for _, fn := range []*fileNode{a, b} {
			msgs, err := fn.n.Last(ctx, "room", 10)
			if err != nil {
				t.Fatal(err)
			}
			m := msgs[0]
			if m.Seq != 1 || m.Text != text || (m.File == nil) != (want == nil) || want != nil && *m.File != *want {
				t.Fatalf("%s: read %+v (file %+v)", what, m, m.File)
			}
		}
	}
	check("sent", f, "")
	r = publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "bob", ID: "r1",
		Change: &history.Change{Kind: protocol.ChangeReact, Target: 1, Text: protocol.Reactions[0]}})
	if st := r.Msg.Change.State; st == nil || st.File == nil || *st.File != *f {
		t.Fatalf("reaction's state: %+v", r.Msg.Change.State)
	}
	check("reacted", f, "")
	r = publishWait(t, ctx, b, &broker.Publication{Room: "room", Sender: "alice", ID: "e1",
		Change: &history.Change{Kind: protocol.ChangeEdit, Target: 1, Text: "a caption"}})
	if st := r.Msg.Change.State; st == nil || st.File == nil || st.Text != "a caption" {
		t.Fatalf("edit's state: %+v", r.Msg.Change.State)
	}
	check("edited", f, "a caption")
	b.rec.wait(t, 10*time.Second, "b's deliveries", func(r *recorder) bool { return len(r.msgs) == 3 })
	if st := b.rec.msgs[2].Change.State; st == nil || st.File == nil || *st.File != *f {
		t.Fatalf("delivered edit's state: %+v", b.rec.msgs[2])
	}
	r = publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "d1",
		Change: &history.Change{Kind: protocol.ChangeDelete, Target: 1}})
	if st := r.Msg.Change.State; st == nil || st.File != nil || st.Text != "" {
		t.Fatalf("delete's state: %+v", r.Msg.Change.State)
	}
	check("deleted", nil, "")
	// A deleted file message cannot be changed again.
	p := &broker.Publication{Room: "room", Sender: "alice", ID: "e2",
		Change: &history.Change{Kind: protocol.ChangeEdit, Target: 1, Text: "again"}}
	if err := a.n.Publish(p); err != nil {
		t.Fatal(err)
	}
	if err := a.n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	a.rec.mu.Lock()
	last := a.rec.results[len(a.rec.results)-1]
	a.rec.mu.Unlock()
	if last.Request != p || last.Err == nil {
		t.Fatalf("an edit of a deleted file message: %+v", last)
	}
}

// The whole flow on one node: upload in chunks (a chunk at the wrong
// offset is refused with the offset to go on from), finish, hold, send,
// read in parts by members' rooms only, delete, collect.
func TestFileStoreFlow(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startFileNode(t, nc, 0, "node-a", files.Limits{})
	content := randomBytes(300 << 10)
	u := files.Upload{Owner: "alice", ID: "up1", Room: "room", Name: "../dir/data.bin", Size: int64(len(content))}
	if got, err := a.fs.Begin(ctx, u); err != nil || got != 0 {
		t.Fatal(got, err)
	}
	if got, err := a.fs.Write(ctx, "alice", "up1", 0, content[:1000]); err != nil || got != 1000 {
		t.Fatal(got, err)
	}
	var oe *files.OffsetError
	if _, err := a.fs.Write(ctx, "alice", "up1", 5000, content[5000:6000]); !errors.As(err, &oe) || oe.Have != 1000 {
		t.Fatalf("a chunk at the wrong offset: %v", err)
	}
	if _, err := a.fs.Write(ctx, "bob", "up1", 1000, content[1000:2000]); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("another name's write: %v", err)
	}
	if _, err := a.fs.Finish(ctx, "alice", "up1"); !isInvalid(err) {
		t.Fatalf("finishing an incomplete upload: %v", err)
	}
	if name, total, err := a.fs.Usage(ctx, "alice"); err != nil || name != u.Size || total != u.Size {
		t.Fatalf("usage while uploading: %d %d %v", name, total, err)
	}
	f := upload(t, ctx, a.fs, u, content) // resumes at 1000
	sum := sha256.Sum256(content)
	if f.ID != hex.EncodeToString(sum[:]) || f.Size != uint64(len(content)) || f.Name != "data.bin" || f.Type != "application/octet-stream" {
		t.Fatalf("file: %+v", f)
	}
	if again, err := a.fs.Finish(ctx, "alice", "up1"); err != nil || again != f {
		t.Fatalf("finishing again: %+v %v", again, err)
	}
	if h, err := a.fs.Held(ctx, "alice", f.ID); err != nil || h != f {
		t.Fatalf("held: %+v %v", h, err)
	}
	if _, err := a.fs.Held(ctx, "bob", f.ID); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("held by another name: %v", err)
	}
	// Not readable before a message carries it.
	if _, err := a.fs.Open(ctx, "room", f.ID); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("open before the message: %v", err)
	}
	publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "up1", Text: "look", File: &f})
	if got := readAll(t, ctx, a.fs, "room", f.ID); !bytes.Equal(got, content) {
		t.Fatal("content read back differs")
	}
	// The file's name is searchable; the hit shows the caption.
	if err := a.n.SearchSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if hits, _, err := a.n.Search(ctx, history.Query{Text: "data.bin", Rooms: []string{"room"}}); err != nil || len(hits) != 1 || hits[0].Text != "look" {
		t.Fatalf("search by the file's name: %+v %v", hits, err)
	}
	if _, err := a.fs.Open(ctx, "elsewhere", f.ID); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("open in another room: %v", err)
	}
	// Once held and once carried: counted once.
	if name, total, err := a.fs.Usage(ctx, "alice"); err != nil || name != u.Size || total != u.Size {
		t.Fatalf("usage after sending: %d %d %v", name, total, err)
	}
	// The same content again is stored once.
	f2 := upload(t, ctx, a.fs, files.Upload{Owner: "bob", ID: "up2", Room: "room", Name: "copy.bin", Size: u.Size}, content)
	if f2.ID != f.ID {
		t.Fatalf("same content, other id: %s", f2.ID)
	}
	if _, total, err := a.fs.Usage(ctx, "bob"); err != nil || total != u.Size {
		t.Fatalf("total after the same content twice: %d %v", total, err)
	}
	// Collect keeps what is held or carried.
	if err := a.fs.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.fs.obj.GetInfo(ctx, f.ID); err != nil {
		t.Fatalf("collected a file still carried: %v", err)
	}
	publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "d1",
		Change: &history.Change{Kind: protocol.ChangeDelete, Target: 1}})
	if _, err := a.fs.Open(ctx, "room", f.ID); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("open after the delete: %v", err)
	}
	// Still held (alice's and bob's holds last HoldFor): kept.
	if err := a.fs.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.fs.obj.GetInfo(ctx, f.ID); err != nil {
		t.Fatalf("collected a held file: %v", err)
	}
}

// Holds and unfinished uploads end after HoldFor; Collect then removes
// the content no message carries, and the bytes leave the total.
func TestFileStoreCollectsAfterHold(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hold := 2 * time.Second
	a := startFileNode(t, nc, 0, "node-a", files.Limits{HoldFor: hold})
	kept, gone := randomBytes(1000), randomBytes(2000)
	fk := upload(t, ctx, a.fs, files.Upload{Owner: "alice", ID: "k", Room: "room", Name: "k", Size: 1000}, kept)
	fg := upload(t, ctx, a.fs, files.Upload{Owner: "alice", ID: "g", Room: "room", Name: "g", Size: 2000}, gone)
	if _, err := a.fs.Begin(ctx, files.Upload{Owner: "alice", ID: "half", Room: "room", Name: "h", Size: 500}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.fs.Write(ctx, "alice", "half", 0, randomBytes(100)); err != nil {
		t.Fatal(err)
	}
	publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "k", File: &fk})
	if _, total, err := a.fs.Usage(ctx, "alice"); err != nil || total != 3500 {
		t.Fatalf("total: %d %v", total, err)
	}
	time.Sleep(hold + 100*time.Millisecond) // the holds' time passing is what is tested
	if err := a.fs.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.fs.obj.GetInfo(ctx, fg.ID); err == nil {
		t.Fatal("a file no message carries outlived its hold")
	}
	if _, err := a.fs.obj.GetInfo(ctx, fk.ID); err != nil {
		t.Fatalf("a file a message carries was collected: %v", err)
	}
	if _, err := a.fs.Held(ctx, "alice", fk.ID); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("a hold outlived HoldFor: %v", err)
	}
	if _, err := a.fs.Write(ctx, "alice", "half", 100, randomBytes(100)); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("an abandoned upload outlived HoldFor: %v", err)
	}
	if name, total, err := a.fs.Usage(ctx, "alice"); err != nil || name != 1000 || total != 1000 {
		t.Fatalf("usage after collecting: %d %d %v", name, total, err)
	}
	info, err := a.fs.uploads.Info(ctx)
	if err != nil || info.State.Msgs != 0 {
		t.Fatalf("upload chunks left: %+v %v", info.State, err)
	}
}

// Refusals: too big, empty, over the name's or the server's quota, too
// many unfinished uploads; nothing of a refused upload is counted.
func TestFileStoreQuotas(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startFileNode(t, nc, 0, "node-a", files.Limits{MaxFile: 1000, PerName: 1500, Total: 2400, Pending: 2})
	code := func(err error) protocol.ErrorCode {
		t.Helper()
		var fe *files.Error
		if !errors.As(err, &fe) {
			t.Fatalf("not a refusal: %v", err)
		}
		return fe.Code
	}
	begin := func(owner, id string, size int64) error {
		_, err := a.fs.Begin(ctx, files.Upload{Owner: owner, ID: id, Room: "room", Name: id, Size: size})
		return err
	}
	if c := code(begin("alice", "big", 1001)); c != protocol.CodeTooBig {
		t.Fatalf("too big: %v", c)
	}
	if c := code(begin("alice", "empty", 0)); c != protocol.CodeInvalid {
		t.Fatalf("empty: %v", c)
	}
	f := upload(t, ctx, a.fs, files.Upload{Owner: "alice", ID: "one", Room: "room", Name: "one", Size: 1000}, randomBytes(1000))
	publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "one", File: &f})
	if c := code(begin("alice", "two", 600)); c != protocol.CodeQuota {
		t.Fatalf("over the name's quota: %v", c)
	}
	if err := begin("alice", "two", 500); err != nil {
		t.Fatalf("within the quota: %v", err)
	}
	if err := begin("bob", "b1", 500); err != nil {
		t.Fatal(err)
	}
	if c := code(begin("bob", "b2", 500)); c != protocol.CodeQuota {
		t.Fatalf("over the server's total: %v", c)
	}
	if err := begin("bob", "b3", 1); err != nil {
		t.Fatal(err)
	}
	if err := code(begin("bob", "b4", 1)); err != protocol.CodeInvalid {
		t.Fatalf("too many unfinished uploads: %v", err)
	}
	if name, total, err := a.fs.Usage(ctx, "bob"); err != nil || name != 501 || total != 2001 {
		t.Fatalf("usage after refusals: %d %d %v", name, total, err)
	}
}

// An upload begun through one node resumes through another at the right
// offset and finishes there; a message sent through the first is
// readable right away through the second (its index catches up first).
func TestFileResumeAcrossNodes(t *testing.T) {
	for _, servers := range []int{1, 3} {
		t.Run(fmt.Sprint(servers, "servers"), func(t *testing.T) {
			nc := natstest.Start(t, servers)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			a := startFileNode(t, nc, 0, "node-a", files.Limits{})
			b := startFileNode(t, nc, servers-1, "node-b", files.Limits{})
			content := randomBytes(200 << 10)
			u := files.Upload{Owner: "alice", ID: "x", Room: "room", Name: "x.bin", Size: int64(len(content))}
			if _, err := a.fs.Begin(ctx, u); err != nil {
				t.Fatal(err)
			}
			if _, err := a.fs.Write(ctx, "alice", "x", 0, content[:70000]); err != nil {
				t.Fatal(err)
			}
			got, err := b.fs.Begin(ctx, u)
			if err != nil || got != 70000 {
				t.Fatalf("resumed at %d (%v), want 70000", got, err)
			}
			if got, err = b.fs.Write(ctx, "alice", "x", got, content[got:]); err != nil || got != u.Size {
				t.Fatal(got, err)
			}
			f, err := b.fs.Finish(ctx, "alice", "x")
			if err != nil {
				t.Fatal(err)
			}
			if h, err := a.fs.Held(ctx, "alice", f.ID); err != nil || h != f {
				t.Fatalf("held through the other node: %v", err)
			}
			publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "x", File: &f})
			if got := readAll(t, ctx, b.fs, "room", f.ID); !bytes.Equal(got, content) {
				t.Fatal("content read through the other node differs")
			}
		})
	}
}

// pngWithText is a real PNG of w×h pixels with a tEXt chunk (metadata
// the store must not keep) after its header.
func pngWithText(t *testing.T, w, h int, text string) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	data := append([]byte("Comment\x00"), text...)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	chunk = append(chunk, "tEXt"...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	at := 8 + 25 // signature, IHDR
	return append(append(append([]byte(nil), b[:at]...), chunk...), b[at:]...)
}

// An image is cleaned of its metadata and gets a preview, both stored
// and readable through the message; a truncated image is refused and
// leaves nothing behind.
func TestFileStoreImages(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startFileNode(t, nc, 0, "node-a", files.Limits{})
	orig := pngWithText(t, 640, 480, "GPS 48.8584 N 2.2945 E")
	f := upload(t, ctx, a.fs, files.Upload{Owner: "alice", ID: "img", Room: "room", Name: "photo.png", Size: int64(len(orig))}, orig)
	if f.Type != "image/png" || f.Width != 640 || f.Height != 480 || f.Thumb == "" || f.ThumbWidth != 320 || f.ThumbHeight != 240 {
		t.Fatalf("image: %+v", f)
	}
	publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "img", File: &f})
	stored := readAll(t, ctx, a.fs, "room", f.ID)
	if bytes.Contains(stored, []byte("GPS 48.8584")) || uint64(len(stored)) != f.Size {
		t.Fatal("the stored image kept its metadata")
	}
	if _, err := png.Decode(bytes.NewReader(stored)); err != nil {
		t.Fatalf("the stored image does not decode: %v", err)
	}
	th, err := a.fs.Open(ctx, "room", f.Thumb)
	if err != nil {
		t.Fatal(err)
	}
	typ := th.Type()
	th.Close()
	thumb := readAll(t, ctx, a.fs, "room", f.Thumb)
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(thumb)); err != nil || cfg.Width != 320 || typ != "image/jpeg" {
		t.Fatalf("preview: %+v %s %v", cfg, typ, err)
	}

	cut := orig[:len(orig)*2/3]
	u := files.Upload{Owner: "bob", ID: "cut", Room: "room", Name: "cut.png", Size: int64(len(cut))}
	if _, err := a.fs.Begin(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := a.fs.Write(ctx, "bob", "cut", 0, cut); err != nil {
		t.Fatal(err)
	}
	_, err = a.fs.Finish(ctx, "bob", "cut")
	var fe *files.Error
	if !errors.As(err, &fe) || fe.Code != protocol.CodeInvalid {
		t.Fatalf("a truncated image: %v", err)
	}
	t.Logf("refusal: %s", fe.Text)
	if name, _, err := a.fs.Usage(ctx, "bob"); err != nil || name != 0 {
		t.Fatalf("bob's usage after the refusal: %d %v", name, err)
	}
	if _, err := a.fs.Write(ctx, "bob", "cut", int64(len(cut)), nil); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("the refused upload is still there: %v", err)
	}
	info, err := a.fs.uploads.Info(ctx)
	if err != nil || info.State.Msgs != 0 {
		t.Fatalf("upload chunks left: %+v %v", info.State, err)
	}
}

// fileHarness runs the conformance suite on a node's file store; Reopen
// starts a new node (on the next NATS server) with a new store and a
// new index built from the stream, as a restarted server, or another
// node a client reconnects to.
type fileHarness struct {
	t     *testing.T
	nc    *natstest.Cluster
	lim   files.Limits
	at    int // the NATS server the current node talks to first
	fn    *fileNode
	keep  *history.Retention
	count int
}

func (h *fileHarness) Store() files.Store { return h.fn.fs }

func (h *fileHarness) start() {
	h.t.Helper()
	h.count++
	name := fmt.Sprint("node-", h.count)
	c := dial(h.t, h.nc, h.at, Options{Name: name, Retention: h.keep})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fs, err := c.Files(ctx, FilesOptions{Limits: h.lim, CacheBytes: 1 << 20})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = fs.Close() })
	rec := newRecorder()
	h.fn = &fileNode{c: c, n: node(h.t, c, rec, NodeOptions{ID: name, Files: fs}), rec: rec, fs: fs}
}

func (h *fileHarness) Reopen() {
	h.t.Helper()
	_ = h.fn.n.Close()
	_ = h.fn.fs.Close()
	h.at = (h.at + 1) % h.nc.Size()
	h.start()
}

func (h *fileHarness) Post(ctx context.Context, room, sender string, f *protocol.File) uint64 {
	h.t.Helper()
	h.count++
	r := publishWait(h.t, ctx, h.fn, &broker.Publication{Room: room, Sender: sender, ID: fmt.Sprint("post-", h.count), Text: "caption", File: f})
	return r.Msg.Seq
}

func (h *fileHarness) Delete(ctx context.Context, room string, seq uint64) {
	h.t.Helper()
	h.count++
	publishWait(h.t, ctx, h.fn, &broker.Publication{Room: room, Sender: "operator", ID: fmt.Sprint("delete-", h.count),
		Change: &history.Change{Kind: protocol.ChangeDelete, Target: seq, Moderator: true}})
}

// Retain restarts the node with history retention of one message per
// room: the stream drops the older ones, and the new node's index never
// sees them.
func (h *fileHarness) Retain(ctx context.Context, room string) string {
	h.keep = &history.Retention{Messages: 1}
	h.Reopen()
	return ""
}

func fileOpener(t *testing.T, nc *natstest.Cluster) func(t *testing.T, lim files.Limits) filestest.Harness {
	admin := dial(t, nc, 0, Options{})
	return func(t *testing.T, lim files.Limits) filestest.Harness {
		resetFiles(t, admin)
		h := &fileHarness{t: t, nc: nc, lim: lim}
		h.start()
		return h
	}
}

// resetFiles is reset with the file store's object store, bucket and
// stream.
func resetFiles(t *testing.T, c *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range []string{"OBJ_" + BucketFiles, "KV_" + BucketUploads, UploadStream} {
		if err := c.js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatal(err)
		}
	}
	reset(t, c)
}

func TestFilesConformanceOneServer(t *testing.T) {
	filestest.Run(t, fileOpener(t, natstest.Start(t, 1)))
}

func TestFilesConformanceThreeServers(t *testing.T) {
	filestest.Run(t, fileOpener(t, natstest.Start(t, 3)))
}

func isInvalid(err error) bool {
	var fe *files.Error
	return errors.As(err, &fe) && fe.Code == protocol.CodeInvalid
}

// A single server's file messages migrate with their files, and its
// files/ directory imports into the object store (registered, so
// counted and collected like uploads); ExportFiles writes them back in
// the same layout.
func TestMigrateAndExportFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	content := randomBytes(70_000)
	sum := sha256.Sum256(content)
	id := hex.EncodeToString(sum[:])
	f := &protocol.File{ID: id, Name: "data.bin", Type: "application/octet-stream", Size: uint64(len(content))}

	path := filepath.Join(t.TempDir(), "chat.db")
	log, err := sqlite.Open(path, func([]history.Result) {}, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*history.Request{
		{Room: "general", Sender: "alice", ID: "a", Text: "look", File: f},
		{Room: "general", Sender: "bob", ID: "b", Text: "nice"},
	} {
		if err := log.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "files")
	if err := os.MkdirAll(filepath.Join(src, id[:2]), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, id[:2], id), content, 0o600); err != nil {
		t.Fatal(err)
	}

	nc := natstest.Start(t, 1)
	c := storesDial(t, nc, "node-a")
	if _, err := Migrate(ctx, path, c, nil); err != nil {
		t.Fatal(err)
	}
	if got := streamMessages(t, c, "general"); len(got) != 2 || got[0].File == nil || *got[0].File != *f || got[1].File != nil {
		t.Fatalf("migrated: %+v", got)
	}
	st, err := c.ImportFiles(ctx, src, FilesOptions{})
	if err != nil || st.Files != 1 || st.Bytes != int64(len(content)) {
		t.Fatalf("import: %+v %v", st, err)
	}
	if st, err := c.ImportFiles(ctx, src, FilesOptions{}); err != nil || st.Files != 1 {
		t.Fatalf("import again: %+v %v", st, err)
	}
	a := startFileNode(t, nc, 0, "node-b", files.Limits{})
	if got := readAll(t, ctx, a.fs, "general", id); !bytes.Equal(got, content) {
		t.Fatal("the imported file reads back differently")
	}
	if _, total, err := a.fs.Usage(ctx, "alice"); err != nil || total != int64(len(content)) {
		t.Fatalf("total after importing the same file twice: %d %v", total, err)
	}

	out := t.TempDir()
	var blobs []string
	est, err := c.ExportFiles(ctx, out, func(id string, size int64, typ string) error {
		blobs = append(blobs, fmt.Sprint(id, size, typ))
		return nil
	})
	if err != nil || est.Files != 1 || len(blobs) != 1 || blobs[0] != fmt.Sprint(id, len(content), "application/octet-stream") {
		t.Fatalf("export: %+v %v %v", est, blobs, err)
	}
	if got, err := os.ReadFile(filepath.Join(out, id[:2], id)); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("exported content differs: %v", err)
	}

	// A damaged file is refused by name.
	bad := t.TempDir()
	other := strings.Repeat("ab", 32)
	_ = os.MkdirAll(filepath.Join(bad, "ab"), 0o700)
	_ = os.WriteFile(filepath.Join(bad, "ab", other), []byte("not what the name says"), 0o600)
	if _, err := c.ImportFiles(ctx, bad, FilesOptions{}); err == nil || !strings.Contains(err.Error(), other) {
		t.Fatalf("importing a damaged file: %v", err)
	}
}

// The node's local copies stay within CacheBytes: the least recently
// used copy nobody reads goes first; a copy being read stays until it
// is closed, and reads the same after another file pushed the cache
// over its bound.
func TestFileCacheIsBounded(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startFileNode(t, nc, 0, "node-a", files.Limits{})
	const size = 100 << 10
	a.fs.cache.max = 250 << 10 // two copies and a half
	var ids []string
	var contents [][]byte
	for i := range 4 {
		content := randomBytes(size)
		f := upload(t, ctx, a.fs, files.Upload{Owner: "alice", ID: fmt.Sprint("u", i), Room: "room", Name: "f", Size: size}, content)
		publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: fmt.Sprint("u", i), File: &f})
		ids, contents = append(ids, f.ID), append(contents, content)
	}
	cached := func() (n int, bytes int64) {
		entries, err := os.ReadDir(a.fs.cache.dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if validID(e.Name()) {
				n++
			}
		}
		a.fs.cache.mu.Lock()
		defer a.fs.cache.mu.Unlock()
		return n, a.fs.cache.size
	}
	held, err := a.fs.Open(ctx, "room", ids[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 4; i++ {
		if got := readAll(t, ctx, a.fs, "room", ids[i]); !bytes.Equal(got, contents[i]) {
			t.Fatalf("file %d reads back differently", i)
		}
		if n, b := cached(); b > a.fs.cache.max || n > 2 {
			t.Fatalf("after reading file %d: %d copies of %d bytes cached, over the bound", i, n, b)
		}
	}
	// The copy held open the whole time reads back whole.
	got := make([]byte, size)
	if _, err := held.ReadAt(got, 0); err != nil || !bytes.Equal(got, contents[0]) {
		t.Fatalf("the copy held open: %v", err)
	}
	held.Close()
	if n, b := cached(); b > a.fs.cache.max || n > 2 {
		t.Fatalf("after closing: %d copies of %d bytes cached", n, b)
	}
}

// The store collects on its own after a delete: the content of a file
// whose only message was deleted leaves the object store without a
// Collect call.
func TestFileStoreCollectsAfterADelete(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startFileNode(t, nc, 0, "node-a", files.Limits{})
	collected := make(chan error, 1)
	a.fs.notifyCollect(collected)
	f := upload(t, ctx, a.fs, files.Upload{Owner: "alice", ID: "x", Room: "room", Name: "x", Size: 5000}, randomBytes(5000))
	r := publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "x", File: &f})
	publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "d",
		Change: &history.Change{Kind: protocol.ChangeDelete, Target: r.Msg.Seq}})
	// Wait for the collector (started by the index's removal of the
	// reference; nothing else starts it within the test's time).
	select {
	case err := <-collected:
		if err != nil {
			t.Fatalf("collecting: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no collection after a delete")
	}
	if _, err := a.fs.obj.GetInfo(ctx, f.ID); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("the content of a deleted file message is still stored: %v", err)
	}
	if _, total, err := a.fs.Usage(ctx, "alice"); err != nil || total != 0 {
		t.Fatalf("total after collecting: %d %v", total, err)
	}
}

// TestFileStoreCollectWaitsForGrace: with a grace period, the content of
// a file whose only message was deleted stays through the collections
// within the period (a backup of the running cluster may still copy it
// for messages its snapshot holds), then goes at the first one after;
// sent and deleted again in between, its period starts over.
func TestFileStoreCollectWaitsForGrace(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := dial(t, nc, 0, Options{Name: "node-a"})
	fs, err := c.Files(ctx, FilesOptions{CacheBytes: 1 << 20, CollectGrace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fs.Close() })
	var skew atomic.Int64
	fs.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) } // before the collector starts
	collected := make(chan error, 1)
	fs.notifyCollect(collected)
	rec := newRecorder()
	a := &fileNode{c: c, n: node(t, c, rec, NodeOptions{ID: "node-a", Files: fs}), rec: rec, fs: fs}

	f := upload(t, ctx, fs, files.Upload{Owner: "alice", ID: "x", Room: "room", Name: "x", Size: 5000}, randomBytes(5000))
	r := publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "x", File: &f})
	publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "d",
		Change: &history.Change{Kind: protocol.ChangeDelete, Target: r.Msg.Seq}})
	// The collection the delete starts (once the index dropped the
	// reference) is the first to find the content unreferenced.
	select {
	case err := <-collected:
		if err != nil {
			t.Fatalf("collecting: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no collection after a delete")
	}
	stored := func() bool {
		_, err := fs.obj.GetInfo(ctx, f.ID)
		if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	collectAt := func(advance time.Duration) {
		t.Helper()
		skew.Store(int64(advance))
		if err := fs.Collect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, advance := range []time.Duration{0, 30 * time.Minute} {
		collectAt(advance)
		if !stored() {
			t.Fatalf("the content went %v after its message, within the grace period", advance)
		}
	}
	// Sent again (alice still holds it) and deleted again before +40m:
	// the grace starts over at the collection after (Collect waits for
	// the index to have both).
	skew.Store(int64(40 * time.Minute))
	r = publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "x2", File: &f})
	publishWait(t, ctx, a, &broker.Publication{Room: "room", Sender: "alice", ID: "d2",
		Change: &history.Change{Kind: protocol.ChangeDelete, Target: r.Msg.Seq}})
	collectAt(40 * time.Minute)
	collectAt(61 * time.Minute)
	if !stored() {
		t.Fatal("the content went 21 minutes after its last message was deleted, within the hour's grace")
	}
	collectAt(101 * time.Minute)
	if stored() {
		t.Fatal("the content stayed past the grace period")
	}
	if _, total, err := fs.Usage(ctx, "alice"); err != nil || total != 0 {
		t.Fatalf("total after collecting: %d %v", total, err)
	}
}
