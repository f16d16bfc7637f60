package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"chat/client"
	"chat/internal/clienttest"
	"chat/protocol"
)

// fileServer plays the file side of a server on a fake: it keeps what was
// uploaded across connections (as a real server keeps partial uploads),
// answers UPLOAD as the spec says, SEND with a file by ACK and MESSAGE,
// and FETCH with PART. cut, when set, is called after each chunk stored:
// true closes the connection there, as a network failure would.
type fileServer struct {
	mu       sync.Mutex
	f        *fake
	got      map[string][]byte // upload id → bytes stored
	begins   []uint64          // the received of every begin answer, in order
	dataIn   int               // bytes of UPLOAD data received in all
	bigFrame int               // the largest UPLOAD frame body seen
	files    map[string][]byte // file id → content
	seq      uint64
	cut      func(stored int) bool
	inFlight int // FETCHes not answered (the test answers them in batches)
	maxFly   int
	fetches  []*protocol.Fetch
	// active are the uploads begun and not complete; maxActive the most
	// at once.
	active    map[string]bool
	maxActive int
}

func newFileServer(t *testing.T) *fileServer {
	fs := &fileServer{got: map[string][]byte{}, files: map[string][]byte{}}
	fs.f = startFake(t, func(f *fake) {
		f.welcome.Flags |= protocol.WelcomeMessages | protocol.WelcomeFiles
		f.welcome.Limits = protocol.Limits{FileBytesPerSec: 8 << 20, MaxUpload: 8 << 20}
	})
	fs.f.setHandle(fs.handle)
	return fs
}

func (fs *fileServer) handle(c *fakeConn, m protocol.Message) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	switch m := m.(type) {
	case *protocol.Upload:
		fs.bigFrame = max(fs.bigFrame, len(protocol.Encode(m))-protocol.LengthSize)
		have := fs.got[m.ID]
		if len(m.Data) == 0 {
			if fs.active == nil {
				fs.active = map[string]bool{}
			}
			fs.active[m.ID] = true
			fs.maxActive = max(fs.maxActive, len(fs.active))
			fs.begins = append(fs.begins, uint64(len(have)))
			c.write(&protocol.Uploaded{Room: m.Room, ID: m.ID, Received: uint64(len(have))})
			return true
		}
		fs.dataIn += len(m.Data)
		if m.Offset != uint64(len(have)) {
			c.write(&protocol.Uploaded{Room: m.Room, ID: m.ID, Received: uint64(len(have))})
			return true
		}
		have = append(have, m.Data...)
		fs.got[m.ID] = have
		if uint64(len(have)) == m.Size {
			sum := sha256.Sum256(have)
			id := hex.EncodeToString(sum[:])
			fs.files[id] = have
			delete(fs.active, m.ID)
			c.write(&protocol.Uploaded{Room: m.Room, ID: m.ID, Received: m.Size,
				File: &protocol.File{ID: id, Name: m.Name, Type: "application/octet-stream", Size: m.Size}})
			return true
		}
		if len(have)/(256<<10) != (len(have)-len(m.Data))/(256<<10) {
			c.write(&protocol.Uploaded{Room: m.Room, ID: m.ID, Received: uint64(len(have))})
		}
		if fs.cut != nil && fs.cut(len(have)) {
			fs.cut = nil
			c.Close()
		}
		return true
	case *protocol.Send:
		if m.File == "" {
			return false
		}
		data, ok := fs.files[m.File]
		if !ok {
			c.write(&protocol.Error{Code: protocol.CodeNotFound, Room: m.Room, ID: m.ID, Text: "no such upload"})
			return true
		}
		fs.seq++
		c.write(&protocol.Ack{Room: m.Room, ID: m.ID, Seq: fs.seq},
			&protocol.Msg{Room: m.Room, Seq: fs.seq, Sender: "alice", ID: m.ID, Text: m.Text,
				File: &protocol.File{ID: m.File, Name: "x", Size: uint64(len(data))}})
		return true
	case *protocol.Fetch:
		fs.inFlight++
		fs.maxFly = max(fs.maxFly, fs.inFlight)
		fs.fetches = append(fs.fetches, m)
		data, ok := fs.files[m.File]
		if !ok {
			fs.inFlight--
			c.write(&protocol.Error{Code: protocol.CodeNotFound, Room: m.Room, ID: m.File})
			return true
		}
		// Answer the FETCHes (but the first, which tells the size) in batches
		// of what is in flight, last first,
		// so that the client sees more than one at once, out of order.
		if fs.inFlight < 4 && m.Offset > 0 && int(m.Offset+m.Length) < len(data) && m.Length == protocol.MaxPart {
			return true
		}
		for i := len(fs.fetches) - 1; i >= 0; i-- {
			q := fs.fetches[i]
			end := min(q.Offset+q.Length, uint64(len(data)))
			if q.Length == protocol.MaxPart && end > q.Offset+1000 {
				end -= 1000 // a short part: the client asks for the rest
			}
			c.write(&protocol.Part{Room: q.Room, File: q.File, Offset: q.Offset, Size: uint64(len(data)), MIME: "application/x-test",
				Data: data[q.Offset:end]})
		}
		fs.inFlight, fs.fetches = 0, nil
		return true
	}
	return false
}

func randomContent(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestUploadFramingAndResumeOnAFake checks the frames of an upload
// against a fake server that cuts the connection mid-way: the begin
// frame, chunks within MaxFrame at the offsets the server has, the
// begin frame again after the reconnect and the chunks from there
// (not from 0), then the SEND with the same id carrying the file;
// progress events up to Done, then Acked.
func TestUploadFramingAndResumeOnAFake(t *testing.T) {
	fs := newFileServer(t)
	content := randomContent(1<<20 + 12345)
	fs.mu.Lock()
	fs.cut = func(stored int) bool { return stored > len(content)/2 }
	fs.mu.Unlock()
	alice := fastClient(t, fs.f.addr(), "alice")
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	if got := alice.C.MaxUpload(); got != 8<<20 {
		t.Errorf("MaxUpload = %d, want %d", got, 8<<20)
	}
	id, err := alice.C.SendFile("general", client.Attachment{Name: "dir/data.bin", Size: int64(len(content)),
		Content: bytes.NewReader(content), Caption: "the data"})
	if err != nil {
		t.Fatal(err)
	}
	acked := waitEvent(t, alice, func(e client.Acked) bool { return e.ID == id })
	msg := waitEvent(t, alice, func(e client.Message) bool { return e.ID == id })
	if msg.File == nil || msg.Text != "the data" || msg.Deleted || msg.Seq != acked.Seq {
		t.Errorf("message %+v (file %+v)", msg, msg.File)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	sum := sha256.Sum256(content)
	if got := fs.files[hex.EncodeToString(sum[:])]; !bytes.Equal(got, content) {
		t.Errorf("the server stored %d bytes, not the %d sent", len(got), len(content))
	}
	if len(fs.begins) != 2 || fs.begins[0] != 0 || fs.begins[1] <= uint64(len(content)/2) {
		t.Errorf("begin answers %v; want 0, then more than half", fs.begins)
	}
	if fs.dataIn > len(content)*3/2 {
		t.Errorf("%d bytes of data sent for %d: the upload started over", fs.dataIn, len(content))
	}
	if fs.bigFrame > 16384 {
		t.Errorf("an UPLOAD of %d bytes; the server takes %d", fs.bigFrame, 16384)
	}
	var prog []client.Uploading
	for _, ev := range alice.Events() {
		if u, ok := ev.(client.Uploading); ok && u.ID == id {
			prog = append(prog, u)
		}
	}
	if len(prog) < 2 || !prog[len(prog)-1].Done || prog[len(prog)-1].Sent != int64(len(content)) {
		t.Errorf("progress %+v", prog)
	}
	for i := 1; i < len(prog); i++ {
		if prog[i].Sent < prog[i-1].Sent && prog[i].Sent != int64(fs.begins[1]) {
			t.Errorf("progress went back: %+v", prog)
		}
	}
}

// TestDownloadWindowOnAFake: Download keeps 4 FETCHes in flight, each
// at most MaxPart, takes parts out of order and short, and writes the
// file in order; a FETCH refused comes back as the *protocol.Error.
func TestDownloadWindowOnAFake(t *testing.T) {
	fs := newFileServer(t)
	content := randomContent(5*protocol.MaxPart + 777)
	sum := sha256.Sum256(content)
	id := hex.EncodeToString(sum[:])
	fs.mu.Lock()
	fs.files[id] = content
	fs.mu.Unlock()
	alice := fastClient(t, fs.f.addr(), "alice")
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	var buf bytes.Buffer
	var last, size int64
	mime, err := alice.C.Download(context.Background(), "general", id, &buf, func(got, n int64) { last, size = got, n })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), content) || mime != "application/x-test" || last != int64(len(content)) || size != last {
		t.Errorf("got %d bytes (%s, progress %d of %d); want %d", buf.Len(), mime, last, size, len(content))
	}
	fs.mu.Lock()
	if fs.maxFly != 4 {
		t.Errorf("%d FETCHes in flight at most, want 4", fs.maxFly)
	}
	fs.mu.Unlock()

	_, _, err = alice.C.FetchFile(context.Background(), "general", id, 1000, nil)
	if err == nil {
		t.Error("FetchFile of a file over max: no error")
	}
	data, _, err := alice.C.FetchFile(context.Background(), "general", id, int64(len(content)), nil)
	if err != nil || !bytes.Equal(data, content) {
		t.Errorf("FetchFile: %d bytes, %v", len(data), err)
	}

	_, err = alice.C.Download(context.Background(), "general", "00"+id[2:], &buf, nil)
	var perr *protocol.Error
	if !errors.As(err, &perr) || perr.Code != protocol.CodeNotFound {
		t.Errorf("download of an unknown file: %v, want not-found", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := alice.C.Download(ctx, "general", id, &buf, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("download with a cancelled context: %v", err)
	}
	_ = clienttest.Timeout
}

// TestSendRefusedNotFoundUploadsAgainOnce: a SEND whose file the server
// no longer holds is answered not-found; the client uploads the file
// again, once, and the message goes.
func TestSendRefusedNotFoundUploadsAgainOnce(t *testing.T) {
	fs := newFileServer(t)
	content := randomContent(3000)
	forget := 1
	fs.f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		if s, ok := m.(*protocol.Send); ok && s.File != "" && forget > 0 {
			forget--
			fs.mu.Lock()
			delete(fs.files, s.File)
			delete(fs.got, s.ID)
			fs.mu.Unlock()
		}
		return fs.handle(c, m)
	})
	alice := fastClient(t, fs.f.addr(), "alice")
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	id, err := alice.C.SendFile("general", client.Attachment{Name: "a.txt", Size: int64(len(content)), Content: bytes.NewReader(content)})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, alice, func(e client.Acked) bool { return e.ID == id })
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.begins) != 2 {
		t.Errorf("%d begin frames, want 2 (the upload, then once more)", len(fs.begins))
	}
}

// TestAtMostThreeUploadsAtOnce: six files queued while offline upload
// three at a time once the room is joined (the others wait in the outbox, in order), and every message
// goes.
func TestAtMostThreeUploadsAtOnce(t *testing.T) {
	fs := newFileServer(t)
	tp := &tap{}
	tp.holdDials() // all six are queued before the room is joined
	alice := fastClient(t, fs.f.addr(), "alice", tp.dial)
	alice.C.Join("general")
	var ids []string
	for i := range 6 {
		content := randomContent(100_000 + i)
		id, err := alice.C.SendFile("general", client.Attachment{Name: "f.bin", Size: int64(len(content)), Content: bytes.NewReader(content)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	tp.releaseDials()
	for _, id := range ids {
		waitEvent(t, alice, func(e client.Acked) bool { return e.ID == id })
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.maxActive != 3 || len(fs.begins) != 6 {
		t.Errorf("%d uploads at once at most (%d begun); want 3 (6)", fs.maxActive, len(fs.begins))
	}
}

// TestDownloadGoesOnAfterAReconnect: the connection drops while a FETCH
// waits for its PART; the client asks again on the next connection and
// the download completes.
func TestDownloadGoesOnAfterAReconnect(t *testing.T) {
	fs := newFileServer(t)
	content := randomContent(3*protocol.MaxPart + 5)
	id := sha(content)
	fs.mu.Lock()
	fs.files[id] = content
	fs.mu.Unlock()
	fs.f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		if f, ok := m.(*protocol.Fetch); ok && c.n == 0 && f.Offset > 0 {
			c.Close() // lost with the FETCH unanswered
			return true
		}
		return fs.handle(c, m)
	})
	alice := fastClient(t, fs.f.addr(), "alice")
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	var buf bytes.Buffer
	if _, err := alice.C.Download(context.Background(), "general", id, &buf, nil); err != nil || !bytes.Equal(buf.Bytes(), content) {
		t.Fatalf("download: %d bytes of %d, %v", buf.Len(), len(content), err)
	}
	waitReconnecting(t, alice, 1)
}

// TestUploadGoesOnFromTheServersOffset: the server loses a chunk (it
// answers the next ones, at offsets it does not have, with what it has),
// and later forgets the unfinished upload (chunks refused not-found):
// the client goes on from the server's offset, then begins again, and
// the file arrives whole.
func TestUploadGoesOnFromTheServersOffset(t *testing.T) {
	fs := newFileServer(t)
	content := randomContent(1_000_000)
	lost, forgotten := false, false
	fs.f.setHandle(func(c *fakeConn, m protocol.Message) bool {
		up, ok := m.(*protocol.Upload)
		if !ok {
			return fs.handle(c, m)
		}
		fs.mu.Lock()
		switch {
		case len(up.Data) == 0:
			forgotten = false
		case !lost && up.Offset >= 200_000:
			lost = true // this chunk never arrives
			fs.mu.Unlock()
			return true
		case forgotten:
			fs.mu.Unlock()
			c.write(&protocol.Error{Code: protocol.CodeNotFound, Room: up.Room, ID: up.ID, Text: "no such upload"})
			return true
		case up.Offset >= 600_000 && len(fs.begins) == 1:
			forgotten = true
			delete(fs.got, up.ID)
			fs.mu.Unlock()
			c.write(&protocol.Error{Code: protocol.CodeNotFound, Room: up.Room, ID: up.ID, Text: "no such upload"})
			return true
		}
		fs.mu.Unlock()
		return fs.handle(c, m)
	})
	alice := fastClient(t, fs.f.addr(), "alice")
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	id, err := alice.C.SendFile("general", client.Attachment{Name: "a.bin", Size: int64(len(content)), Content: bytes.NewReader(content)})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, alice, func(e client.Acked) bool { return e.ID == id })
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !bytes.Equal(fs.files[sha(content)], content) {
		t.Errorf("the server has %d bytes, not the file", len(fs.files[sha(content)]))
	}
	if len(fs.begins) != 2 || fs.begins[1] != 0 {
		t.Errorf("begin answers %v; want 0 and, after the server forgot the upload, 0", fs.begins)
	}
}

// TestUploadOfAShrunkFileIsGivenUp: a file that is shorter than its size
// when a chunk is read (truncated on disk during the upload) is given up
// with a RoomError that says so, never sent padded with zeros.
func TestUploadOfAShrunkFileIsGivenUp(t *testing.T) {
	fs := newFileServer(t)
	content := randomContent(300_000)
	alice := fastClient(t, fs.f.addr(), "alice")
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	// The reader has 100,000 bytes of the 300,000 announced.
	id, err := alice.C.SendFile("general", client.Attachment{Name: "a.bin", Size: int64(len(content)), Content: bytes.NewReader(content[:100_000])})
	if err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, alice, func(e client.RoomError) bool { return len(e.Unsent) == 1 && e.Unsent[0] == id })
	if e.Err == nil || !strings.Contains(e.Err.Text, "reading a.bin: it is shorter than its 300000 bytes") {
		t.Errorf("the refusal %+v does not say the file is shorter", e.Err)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, got := range fs.got {
		if len(got) > 100_000 {
			t.Errorf("the server got %d bytes of a 100,000-byte file", len(got))
		}
	}
}

// TestSendWithAReplyRefusedNotFound: a file's SEND with a reply target
// the server does not have is refused not-found; that is not the file's
// refusal: the message is given up, the file not uploaded again. The
// same SEND refused for its file (the server's words speak of the
// upload) is uploaded again, once.
func TestSendWithAReplyRefusedNotFound(t *testing.T) {
	for _, tc := range []struct {
		text   string
		begins int
	}{
		{"uploads has no message 99 that this reply answers", 1},
		{"the file of this message is not one alice uploaded: upload it again", 2},
	} {
		fs := newFileServer(t)
		refuse := 1
		fs.f.setHandle(func(c *fakeConn, m protocol.Message) bool {
			if s, ok := m.(*protocol.Send); ok && s.File != "" && refuse > 0 {
				refuse--
				fs.mu.Lock()
				delete(fs.files, s.File)
				delete(fs.got, s.ID)
				fs.mu.Unlock()
				c.write(&protocol.Error{Code: protocol.CodeNotFound, Room: s.Room, ID: s.ID, Text: tc.text})
				return true
			}
			return fs.handle(c, m)
		})
		alice := fastClient(t, fs.f.addr(), "alice")
		alice.C.Join("uploads")
		alice.WaitJoined(t, "uploads")
		content := randomContent(3000)
		id, err := alice.C.SendFile("uploads", client.Attachment{Name: "a.txt", Size: int64(len(content)), Content: bytes.NewReader(content), Reply: 99})
		if err != nil {
			t.Fatal(err)
		}
		if tc.begins == 1 {
			waitEvent(t, alice, func(e client.RoomError) bool { return len(e.Unsent) == 1 && e.Unsent[0] == id })
		} else {
			waitEvent(t, alice, func(e client.Acked) bool { return e.ID == id })
		}
		fs.mu.Lock()
		if len(fs.begins) != tc.begins {
			t.Errorf("%q: %d begin frames, want %d", tc.text, len(fs.begins), tc.begins)
		}
		fs.mu.Unlock()
	}
}
