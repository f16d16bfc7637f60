package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/files"
	"chat/server/internal/history"
	"chat/server/internal/sqlite"
)

// newFilesHub starts a hub whose history and files are the single
// server's real stores: a SQLite Log and sqlite.Files on one chat.db in
// a temporary directory (no stand-in: the store decides offsets, sniffs
// types, refuses damaged images, and serves a file only while a stored
// message of the room carries it). gate, if set, holds every Open until
// it is closed: a slow store.
func newFilesHub(t *testing.T, cfg Config, l files.Limits) (*Hub, *gatedFiles) {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "chat.db")
	fs := &gatedFiles{}
	store := newStore(t, func(sink history.Sink) (history.Log, error) {
		return sqlite.Open(db, sink, sqlite.Options{Removed: func() {
			if f := fs.Files; f != nil {
				f.Kick()
			}
		}})
	}, broker.LocalOptions{})
	var err error
	if fs.Files, err = sqlite.OpenFiles(db, dir, sqlite.FilesOptions{Limits: l}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fs.Files.Close(); err != nil {
			t.Error(err)
		}
	})
	cfg.Files = fs
	return newNode(t, cfg, store), fs
}

// gatedFiles is sqlite.Files with Open held while gate is open.
type gatedFiles struct {
	*sqlite.Files
	gate chan struct{}
}

func (g *gatedFiles) Open(ctx context.Context, room, fileID string) (files.Blob, error) {
	if g.gate != nil {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Files.Open(ctx, room, fileID)
}

// lastOf waits for the first frame of type T after the frames seen so far
// (seen counts them) for which ok holds.
func nextOf[T protocol.Message](t *testing.T, m *fakeMember, seen *int, what string, ok func(T) bool) T {
	t.Helper()
	var found T
	m.waitFor(t, what, func(ms []protocol.Message) bool {
		for i := *seen; i < len(ms); i++ {
			if v, is := ms[i].(T); is && (ok == nil || ok(v)) {
				found, *seen = v, i+1
				return true
			}
		}
		return false
	})
	return found
}

// TestUploadFrames: begin, chunks (one at a wrong offset), progress every
// MiB, the finish with the File, a SEND carrying it, a FETCH of it.
func TestUploadFrames(t *testing.T) {
	h, _ := newFilesHub(t, Config{}, files.Limits{MaxFile: 4 << 20})
	alice, bob := newMember(), newMember()
	ac, bc := h.Connect(alice), h.Connect(bob)
	mustJoin(t, ac, &protocol.Join{Room: "general", Name: "Alice", Secret: "a"})
	mustJoin(t, bc, &protocol.Join{Room: "general", Name: "bob"})
	content := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	size := uint64(len(content))
	seen := 0

	if e := ac.Upload(&protocol.Upload{Room: "General", ID: "u1", Name: "notes.txt", Size: size}); e != nil {
		t.Fatal(e)
	}
	if u := nextOf[*protocol.Uploaded](t, alice, &seen, "UPLOADED of the begin", nil); u.Room != "general" || u.ID != "u1" || u.Received != 0 || u.File != nil {
		t.Fatalf("begin: %+v", u)
	}
	// A chunk at the wrong offset is not stored: UPLOADED says where.
	if e := ac.Upload(&protocol.Upload{Room: "general", ID: "u1", Size: size, Offset: 100, Data: content[100:200]}); e != nil {
		t.Fatal(e)
	}
	if u := nextOf[*protocol.Uploaded](t, alice, &seen, "UPLOADED of a wrong offset", nil); u.Received != 0 {
		t.Fatalf("wrong offset: %+v", u)
	}
	const chunk = 16000
	progress := 0
	var done *protocol.Uploaded
	for off := 0; off < len(content); off += chunk {
		end := min(off+chunk, len(content))
		if e := ac.Upload(&protocol.Upload{Room: "general", ID: "u1", Size: size, Offset: uint64(off), Data: content[off:end]}); e != nil {
			t.Fatal(e)
		}
	}
	for done == nil {
		u := nextOf[*protocol.Uploaded](t, alice, &seen, "UPLOADED", nil)
		if u.File != nil {
			done = u
		} else {
			progress++
		}
	}
	if progress != 2 || done.Received != size {
		t.Fatalf("%d progress UPLOADEDs (want 2, at 1 and 2 MiB), the last %+v", progress, done)
	}
	f := done.File
	if sum := sha256.Sum256(content); f.ID != hex.EncodeToString(sum[:]) || f.Name != "notes.txt" || f.Size != size {
		t.Fatalf("file %+v", f)
	}

	// Bob holds no such file: his SEND of it is refused with its id.
	if e := asError(t, bc.SendFile("general", "b1", "", 0, f.ID)); e.Code != protocol.CodeNotFound || e.ID != "b1" {
		t.Fatalf("bob's SEND of alice's file: %v", e)
	}
	if err := ac.SendFile("general", "u1", "", 0, f.ID); err != nil {
		t.Fatal(err)
	}
	nextOf(t, alice, &seen, "the ACK", func(a *protocol.Ack) bool { return a.ID == "u1" })
	bseen := 0
	if m := nextOf[*protocol.Msg](t, bob, &bseen, "the file's message", nil); m.File == nil || *m.File != *f || m.Text != "" {
		t.Fatalf("bob got %+v with file %+v", m, m.File)
	}
	// HISTORY with Files: the PAGE's records carry their files.
	if e := bc.History(&protocol.History{Room: "general", Files: true}); e != nil {
		t.Fatal(e)
	}
	if p := nextOf[*protocol.Page](t, bob, &bseen, "the PAGE", nil); !p.Files || len(p.Messages) != 1 || p.Messages[0].File == nil || *p.Messages[0].File != *f {
		t.Fatalf("PAGE %+v", p)
	}

	// Fetch: parts of at most MaxPart; a room out of scope is forbidden,
	// a file no message carries is not found, both with the file's id.
	var got []byte
	for off := uint64(0); off < size; off += protocol.MaxPart {
		if e := bc.Fetch(&protocol.Fetch{Room: "general", File: f.ID, Offset: off, Length: 1 << 20}); e != nil {
			t.Fatal(e)
		}
		p := nextOf[*protocol.Part](t, bob, &bseen, "a PART", nil)
		if p.Offset != off || p.Size != size || len(p.Data) != int(min(protocol.MaxPart, size-off)) || !strings.HasPrefix(p.MIME, "text/plain") {
			t.Fatalf("PART at %d: offset %d size %d, %d bytes, %q", off, p.Offset, p.Size, len(p.Data), p.MIME)
		}
		got = append(got, p.Data...)
	}
	if !bytes.Equal(got, content) {
		t.Fatal("the fetched parts are not the file")
	}
	_ = bc.Fetch(&protocol.Fetch{Room: "elsewhere", File: f.ID, Length: 10})
	if e := nextOf[*protocol.Error](t, bob, &bseen, "a FETCH out of scope", nil); e.Code != protocol.CodeForbidden || e.ID != f.ID || e.Room != "elsewhere" {
		t.Fatalf("out of scope: %v (id %q)", e, e.ID)
	}
	other := strings.Repeat("ab", 32)
	_ = bc.Fetch(&protocol.Fetch{Room: "general", File: other, Length: 10})
	if e := nextOf[*protocol.Error](t, bob, &bseen, "a FETCH of a file not carried", nil); e.Code != protocol.CodeNotFound || e.ID != other {
		t.Fatalf("not carried: %v (id %q)", e, e.ID)
	}
}

// TestUploadRefusals: the store's refusals reach the client with their
// code, text and the upload's id; so do the hub's own.
func TestUploadRefusals(t *testing.T) {
	h, _ := newFilesHub(t, Config{}, files.Limits{MaxFile: 1000})
	alice, bob := newMember(), newMember()
	ac, bc := h.Connect(alice), h.Connect(bob)
	mustJoin(t, ac, &protocol.Join{Room: "general", Name: "alice", Secret: "a"})
	mustJoin(t, bc, &protocol.Join{Room: "general", Name: "bob"})

	e := ac.Upload(&protocol.Upload{Room: "general", ID: "big", Name: "big.bin", Size: 1001})
	if e == nil || e.Code != protocol.CodeTooBig || e.ID != "big" || e.Room != "general" || !strings.Contains(e.Text, "1000") {
		t.Fatalf("too big: %v", e)
	}
	if e := ac.Upload(&protocol.Upload{Room: "elsewhere", ID: "x", Size: 10}); e == nil || e.Code != protocol.CodeUnexpected || e.ID != "x" {
		t.Fatalf("a room not joined: %v", e)
	}
	if e := ac.Upload(&protocol.Upload{Room: "general", ID: "never", Size: 10, Data: []byte("abc")}); e == nil || e.Code != protocol.CodeNotFound || e.ID != "never" {
		t.Fatalf("a chunk of an upload never begun: %v", e)
	}
	// A damaged image: refused at the finish, with the upload's id.
	png := []byte("\x89PNG\r\n\x1a\n truncated")
	if e := ac.Upload(&protocol.Upload{Room: "general", ID: "img", Size: uint64(len(png))}); e != nil {
		t.Fatal(e)
	}
	if e := ac.Upload(&protocol.Upload{Room: "general", ID: "img", Size: uint64(len(png)), Data: png}); e == nil || e.Code != protocol.CodeInvalid || e.ID != "img" {
		t.Fatalf("a damaged image: %v", e)
	}

	// A muted name uploads nothing.
	if e := ac.Moderate(&protocol.Moderate{Room: "general", Action: protocol.ModMute, Target: "bob"}); e != nil {
		t.Fatal(e)
	}
	seen := 0
	nextOf[*protocol.ModEvent](t, bob, &seen, "the mute", nil)
	if e := bc.Upload(&protocol.Upload{Room: "general", ID: "m", Size: 10}); e == nil || e.Code != protocol.CodeMuted || e.ID != "m" {
		t.Fatalf("muted: %v", e)
	}

	// A hub without a files store takes none.
	h2, _ := newHub(t, Config{})
	c := h2.Connect(newMember())
	mustJoin(t, c, &protocol.Join{Room: "general", Name: "carol"})
	if e := c.Upload(&protocol.Upload{Room: "general", ID: "n", Size: 10}); e == nil || e.ID != "n" {
		t.Fatalf("no store: %v", e)
	}
	if e := asError(t, c.SendFile("general", "s", "", 0, strings.Repeat("0", 64))); e.ID != "s" {
		t.Fatalf("no store, SEND with a file: %v", e)
	}
}

// TestFetchFromADirectMessageRoomNotJoined: an identified connection
// fetches the files of its name's direct-message rooms without joining
// them (SEARCH's scope); another name's are forbidden.
func TestFetchFromADirectMessageRoomNotJoined(t *testing.T) {
	h, _ := newFilesHub(t, Config{Owners: openOwners{}}, files.Limits{})
	carol, alice, dave := newMember(), newMember(), newMember()
	cc, ac, dc := h.Connect(carol), h.Connect(alice), h.Connect(dave)
	mustJoin(t, cc, &protocol.Join{Room: "@alice@carol", Name: "carol", Secret: "c"})
	if e := cc.Upload(&protocol.Upload{Room: "@alice@carol", ID: "u", Name: "a.txt", Size: 5}); e != nil {
		t.Fatal(e)
	}
	if e := cc.Upload(&protocol.Upload{Room: "@alice@carol", ID: "u", Size: 5, Data: []byte("hello")}); e != nil {
		t.Fatal(e)
	}
	seen := 0
	f := nextOf(t, carol, &seen, "the finished upload", func(u *protocol.Uploaded) bool { return u.File != nil }).File
	if err := cc.SendFile("@alice@carol", "u", "", 0, f.ID); err != nil {
		t.Fatal(err)
	}
	nextOf[*protocol.Ack](t, carol, &seen, "the ACK", nil)

	if e := ac.Identify(&protocol.Identify{Name: "Alice", Secret: "a"}); e != nil {
		t.Fatal(e)
	}
	aseen := 0
	_ = ac.Fetch(&protocol.Fetch{Room: "@alice@carol", File: f.ID, Length: 100})
	if p := nextOf[*protocol.Part](t, alice, &aseen, "alice's PART", nil); string(p.Data) != "hello" {
		t.Fatalf("alice fetched %q", p.Data)
	}
	if e := dc.Identify(&protocol.Identify{Name: "dave", Secret: "d"}); e != nil {
		t.Fatal(e)
	}
	dseen := 0
	_ = dc.Fetch(&protocol.Fetch{Room: "@alice@carol", File: f.ID, Length: 100})
	if e := nextOf[*protocol.Error](t, dave, &dseen, "dave's refusal", nil); e.Code != protocol.CodeForbidden || e.ID != f.ID {
		t.Fatalf("dave: %v", e)
	}
}

// TestSlowFetchesDoNotHoldChat: while the store takes its time over a
// connection's FETCHes, its SENDs are stored and acknowledged; the PARTs
// follow once the store answers, in order.
func TestSlowFetchesDoNotHoldChat(t *testing.T) {
	h, store := newFilesHub(t, Config{}, files.Limits{})
	alice := newMember()
	ac := h.Connect(alice)
	mustJoin(t, ac, &protocol.Join{Room: "general", Name: "alice"})
	_ = ac.Upload(&protocol.Upload{Room: "general", ID: "u", Name: "a.txt", Size: 10})
	_ = ac.Upload(&protocol.Upload{Room: "general", ID: "u", Size: 10, Data: []byte("0123456789")})
	seen := 0
	f := nextOf(t, alice, &seen, "the finished upload", func(u *protocol.Uploaded) bool { return u.File != nil }).File
	if err := ac.SendFile("general", "u", "", 0, f.ID); err != nil {
		t.Fatal(err)
	}
	nextOf(t, alice, &seen, "the file's ACK", func(a *protocol.Ack) bool { return a.ID == "u" })
	store.gate = make(chan struct{})

	for i := range fetchQueue {
		if e := ac.Fetch(&protocol.Fetch{Room: "general", File: f.ID, Offset: uint64(i), Length: 1}); e != nil {
			t.Fatal(e)
		}
	}
	if err := ac.Send("general", "m1", "still chatting"); err != nil {
		t.Fatal(err)
	}
	nextOf(t, alice, &seen, "the ACK while the fetches wait", func(a *protocol.Ack) bool { return a.ID == "m1" })
	if n := count[*protocol.Part](alice.decoded(t)); n != 0 {
		t.Fatalf("%d PARTs before the store answered", n)
	}
	close(store.gate)
	for i := range fetchQueue {
		if p := nextOf[*protocol.Part](t, alice, &seen, "a PART", nil); p.Offset != uint64(i) || string(p.Data) != string(rune('0'+i)) {
			t.Fatalf("PART %d: offset %d %q", i, p.Offset, p.Data)
		}
	}
	// A connection that ends stops its fetches: nothing is left waiting.
	store.gate = make(chan struct{})
	_ = ac.Fetch(&protocol.Fetch{Room: "general", File: f.ID, Length: 1})
	ac.Close()
	select {
	case <-ac.fetchDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection's fetch goroutine still runs 10 s after it closed")
	}
}

// TestAResumedUploadFencesTheOldConnection: once a new connection began
// an upload, chunks still coming from the old one (a dead connection's
// reader working through what it had received) are not stored, so the
// begin's answer stays exact.
func TestAResumedUploadFencesTheOldConnection(t *testing.T) {
	h, _ := newFilesHub(t, Config{}, files.Limits{})
	old, fresh := newMember(), newMember()
	oc, fc := h.Connect(old), h.Connect(fresh)
	mustJoin(t, oc, &protocol.Join{Room: "general", Name: "alice"})
	data := []byte("0123456789abcdef")
	_ = oc.Upload(&protocol.Upload{Room: "general", ID: "u", Name: "f", Size: 16})
	_ = oc.Upload(&protocol.Upload{Room: "general", ID: "u", Size: 16, Offset: 0, Data: data[:4]})
	mustJoin(t, fc, &protocol.Join{Room: "other", Name: "alice"})
	// The new connection is in another room under the same name: the
	// owner is the name, so it resumes the same upload.
	if e := fc.Upload(&protocol.Upload{Room: "other", ID: "u", Name: "f", Size: 16}); e != nil {
		t.Fatal(e)
	}
	seen := 0
	if u := nextOf(t, fresh, &seen, "the resume", func(u *protocol.Uploaded) bool { return u.ID == "u" }); u.Received != 4 {
		t.Fatalf("resumed at %d", u.Received)
	}
	// The old connection's next chunk is dropped.
	if e := oc.Upload(&protocol.Upload{Room: "general", ID: "u", Size: 16, Offset: 4, Data: data[4:8]}); e != nil {
		t.Fatal(e)
	}
	if e := fc.Upload(&protocol.Upload{Room: "other", ID: "u", Size: 16, Offset: 4, Data: data[4:]}); e != nil {
		t.Fatal(e)
	}
	if u := nextOf(t, fresh, &seen, "the finish", func(u *protocol.Uploaded) bool { return u.File != nil }); u.Received != 16 {
		t.Fatalf("finished %+v", u)
	}
}

// claims returns how many upload claims the hub keeps, and how many of
// them c lists as its own.
func claims(h *Hub, c *Conn) (all, own int) {
	h.uploadMu.Lock()
	defer h.uploadMu.Unlock()
	return len(h.uploaders), len(c.uploads)
}

// TestUploadClaimsEndWithTheirUpload: the hub's claim of an upload (which
// connection may write it) goes when the upload finishes or is refused,
// not only when the connection closes; a close drops the rest.
func TestUploadClaimsEndWithTheirUpload(t *testing.T) {
	h, _ := newFilesHub(t, Config{}, files.Limits{MaxFile: 1000})
	alice := newMember()
	ac := h.Connect(alice)
	mustJoin(t, ac, &protocol.Join{Room: "general", Name: "alice"})
	for i := range 5 {
		id := fmt.Sprint("u", i)
		if e := ac.Upload(&protocol.Upload{Room: "general", ID: id, Name: "a.txt", Size: 5}); e != nil {
			t.Fatal(e)
		}
		if e := ac.Upload(&protocol.Upload{Room: "general", ID: id, Size: 5, Data: []byte("hello")}); e != nil {
			t.Fatal(e)
		}
	}
	if all, own := claims(h, ac); all != 0 || own != 0 {
		t.Fatalf("after 5 finished uploads the hub keeps %d claims (%d the connection's), want none", all, own)
	}
	// Refused when it is written past its size: the claim goes.
	_ = ac.Upload(&protocol.Upload{Room: "general", ID: "r", Name: "a.txt", Size: 5})
	if e := ac.Upload(&protocol.Upload{Room: "general", ID: "r", Size: 5, Data: []byte("too long")}); e == nil || e.ID != "r" {
		t.Fatalf("a chunk past the size: %v", e)
	}
	if all, own := claims(h, ac); all != 0 || own != 0 {
		t.Fatalf("after a refused upload the hub keeps %d claims (%d the connection's)", all, own)
	}
	// Unfinished: claimed until the connection closes.
	_ = ac.Upload(&protocol.Upload{Room: "general", ID: "open", Name: "a.txt", Size: 5})
	if all, own := claims(h, ac); all != 1 || own != 1 {
		t.Fatalf("an unfinished upload: %d claims (%d the connection's), want 1", all, own)
	}
	ac.Close()
	if all, own := claims(h, ac); all != 0 || own != 0 {
		t.Fatalf("after the close: %d claims (%d the connection's)", all, own)
	}
}

// TestUploadSizesAndCompletion: a size past the largest int64 is too big
// (not wrapped negative into "empty"), and an upload finishes at the size
// it began with, whatever size a chunk frame claims.
func TestUploadSizesAndCompletion(t *testing.T) {
	h, _ := newFilesHub(t, Config{}, files.Limits{})
	alice := newMember()
	ac := h.Connect(alice)
	mustJoin(t, ac, &protocol.Join{Room: "general", Name: "alice"})
	for _, size := range []uint64{1 << 63, 1<<64 - 1} {
		if e := ac.Upload(&protocol.Upload{Room: "general", ID: "huge", Name: "a", Size: size}); e == nil || e.Code != protocol.CodeTooBig || e.ID != "huge" {
			t.Fatalf("size %d: %v, want too-big", size, e)
		}
	}
	if e := ac.Upload(&protocol.Upload{Room: "general", ID: "u", Name: "a.txt", Size: 10}); e != nil {
		t.Fatal(e)
	}
	// The chunk says the file has 5 bytes: it has 10, as begun.
	if e := ac.Upload(&protocol.Upload{Room: "general", ID: "u", Size: 5, Data: []byte("01234")}); e != nil {
		t.Fatalf("a chunk with another size: %v", e)
	}
	if e := ac.Upload(&protocol.Upload{Room: "general", ID: "u", Size: 10, Offset: 5, Data: []byte("56789")}); e != nil {
		t.Fatal(e)
	}
	seen := 0
	if u := nextOf(t, alice, &seen, "the finish", func(u *protocol.Uploaded) bool { return u.File != nil }); u.Received != 10 || u.File.Size != 10 {
		t.Fatalf("finished %+v", u)
	}
}
