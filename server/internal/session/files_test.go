package session

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"chat/protocol"
)

// feedSocket gives the session the frames in in, then EOF, and records
// what the session writes.
type feedSocket struct {
	mu    sync.Mutex
	in    [][]byte
	out   []protocol.Message
	wrote chan struct{} // gets a token per write
}

func newFeed(in ...[]byte) *feedSocket { return &feedSocket{in: in, wrote: make(chan struct{}, 1024)} }

// written waits until n frames have been written, and returns them.
func (f *feedSocket) written(t *testing.T, n int) []protocol.Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		out := append([]protocol.Message(nil), f.out...)
		f.mu.Unlock()
		if len(out) >= n {
			return out
		}
		select {
		case <-f.wrote:
		case <-deadline:
			t.Fatalf("%d frames written, want %d: %+v", len(out), n, out)
		}
	}
}

func (f *feedSocket) ReadFrame(int) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.in) == 0 {
		return nil, io.EOF
	}
	body := f.in[0][protocol.LengthSize:]
	f.in = f.in[1:]
	return body, nil
}

func (f *feedSocket) WriteFrames(frames [][]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range frames {
		if m, err := protocol.Decode(b[protocol.LengthSize:]); err == nil {
			f.out = append(f.out, m)
		}
	}
	f.wrote <- struct{}{}
	return nil
}

func (f *feedSocket) CloseWrite(time.Time) error { return nil }
func (f *feedSocket) Discard() error             { return nil }
func (f *feedSocket) Close() error               { return nil }
func (f *feedSocket) RemoteAddr() string         { return "test" }

// uploadRooms counts the UPLOADs and FETCHes that reach the rooms.
type uploadRooms struct {
	noRooms
	mu              sync.Mutex
	uploads, fetchs int
}

func (r *uploadRooms) Upload(*protocol.Upload) *protocol.Error {
	r.mu.Lock()
	r.uploads++
	r.mu.Unlock()
	return nil
}

func (r *uploadRooms) Fetch(*protocol.Fetch) *protocol.Error {
	r.mu.Lock()
	r.fetchs++
	r.mu.Unlock()
	return nil
}

// TestFileFramesSpendTheFileBudgetNotTheMessageRate: at a message rate
// of 1 a second that cuts a flood off after 100 ms, 20 UPLOADs and 4
// FETCHes pass (none is a message), slowed to the file rate instead;
// without a message rate (0), the file rate holds all the same.
func TestFileFramesSpendTheFileBudgetNotTheMessageRate(t *testing.T) {
	for _, msgRate := range []float64{1, 0} {
		fileFramesAtTheFileRate(t, msgRate)
	}
}

func fileFramesAtTheFileRate(t *testing.T, msgRate float64) {
	t.Helper()
	rooms := &uploadRooms{}
	const rate, burst, chunk = 1 << 20, 16 << 10, 16 << 10
	m := NewManager(Config{MsgRate: msgRate, MsgBurst: 1, FloodAfter: 100 * time.Millisecond, Files: true, MaxUpload: 1 << 30,
		FileRate: rate, FileBurst: burst}, func(Member) Rooms { return rooms })
	sock := newFeed(protocol.Encode(&protocol.Hello{Version: protocol.Version}))
	data := make([]byte, chunk)
	for i := range 20 {
		sock.in = append(sock.in, protocol.Encode(&protocol.Upload{Room: "r", ID: "u", Name: "f", Size: 20 * chunk, Offset: uint64(i * chunk), Data: data}))
	}
	for range 4 {
		sock.in = append(sock.in, protocol.Encode(&protocol.Fetch{Room: "r", File: "x", Length: 1 << 20})) // counted as MaxPart
	}
	start := time.Now()
	m.Serve(sock)
	elapsed := time.Since(start)

	if rooms.uploads != 20 || rooms.fetchs != 4 {
		t.Fatalf("%d UPLOADs and %d FETCHes reached the rooms, want 20 and 4", rooms.uploads, rooms.fetchs)
	}
	out := sock.written(t, 1)
	w, ok := out[0].(*protocol.Welcome)
	if !ok || w.Flags&protocol.WelcomeFiles == 0 || w.Limits.FileBytesPerSec != rate || w.Limits.MaxUpload != 1<<30 {
		t.Fatalf("WELCOME %+v", out[0])
	}
	for _, msg := range out[1:] {
		if e, ok := msg.(*protocol.Error); ok {
			t.Fatalf("the session refused: %v", e)
		}
	}
	// 20 × 16 KiB + 4 × 64 KiB past a 16 KiB burst at 1 MiB/s: the
	// time passing is the behaviour under test.
	if want := time.Duration(float64(20*chunk+4*protocol.MaxPart-burst) / rate * float64(time.Second)); elapsed < want*9/10 {
		t.Fatalf("message rate %g: the file frames took %v; at the file rate they take at least %v", msgRate, elapsed, want)
	}
}

// TestWelcomeWithoutFiles: a server without a files store announces
// none and refuses UPLOAD with the upload's id.
func TestWelcomeWithoutFiles(t *testing.T) {
	m := NewManager(Config{}, func(Member) Rooms { return noRooms{} })
	sock := newFeed(protocol.Encode(&protocol.Hello{Version: protocol.Version}),
		protocol.Encode(&protocol.Upload{Room: "r", ID: "u1", Name: "f", Size: 10}))
	m.Serve(sock)
	out := sock.written(t, 2)
	if w := out[0].(*protocol.Welcome); w.Flags&protocol.WelcomeFiles != 0 || w.Limits.MaxUpload != 0 || w.Limits.FileBytesPerSec != 0 {
		t.Fatalf("WELCOME %+v", w)
	}
	if e, ok := out[1].(*protocol.Error); !ok || e.ID != "u1" || e.Code != protocol.CodeUnexpected {
		t.Fatalf("UPLOAD to a server without files: %+v", out[1])
	}
}

// TestBeginFramesAndTinyFetchesAreNotFree: UPLOAD begin frames (no data)
// go at the message rate, and FETCHes of 1 byte each spend a full frame
// of the file budget: a loop of either is slowed, not free (each costs
// the store a transaction or a read).
func TestBeginFramesAndTinyFetchesAreNotFree(t *testing.T) {
	t.Run("begins", func(t *testing.T) {
		rooms := &uploadRooms{}
		const msgRate, begins = 100, 30
		m := NewManager(Config{MsgRate: msgRate, MsgBurst: 1, FloodAfter: time.Minute, Files: true, MaxUpload: 1 << 30,
			FileRate: 1 << 30, FileBurst: 1 << 30}, func(Member) Rooms { return rooms })
		sock := newFeed(protocol.Encode(&protocol.Hello{Version: protocol.Version}))
		for i := range begins {
			sock.in = append(sock.in, protocol.Encode(&protocol.Upload{Room: "r", ID: fmt.Sprint("u", i), Name: "f", Size: 1}))
		}
		start := time.Now()
		m.Serve(sock)
		elapsed := time.Since(start)
		if rooms.uploads != begins {
			t.Fatalf("%d begins reached the rooms, want %d", rooms.uploads, begins)
		}
		// The time passing is the behaviour under test: at 100 a second
		// after a burst of 1, 30 begins take 290 ms.
		if want := time.Duration(begins-1) * time.Second / msgRate; elapsed < want*9/10 {
			t.Fatalf("%d begin frames took %v; at the message rate they take at least %v", begins, elapsed, want)
		}
	})
	t.Run("fetches", func(t *testing.T) {
		rooms := &uploadRooms{}
		const rate, frame, fetches = 1 << 20, 16 << 10, 20
		m := NewManager(Config{MaxFrame: frame, Files: true, MaxUpload: 1 << 30, FileRate: rate, FileBurst: frame},
			func(Member) Rooms { return rooms })
		sock := newFeed(protocol.Encode(&protocol.Hello{Version: protocol.Version}))
		for range fetches {
			sock.in = append(sock.in, protocol.Encode(&protocol.Fetch{Room: "r", File: "x", Length: 1}))
		}
		start := time.Now()
		m.Serve(sock)
		elapsed := time.Since(start)
		if rooms.fetchs != fetches {
			t.Fatalf("%d FETCHes reached the rooms, want %d", rooms.fetchs, fetches)
		}
		// Time passing is the behaviour: each costs a 16 KiB frame at 1 MiB/s.
		if want := time.Duration(float64((fetches-1)*frame) / rate * float64(time.Second)); elapsed < want*9/10 {
			t.Fatalf("%d 1-byte FETCHes took %v; at a frame each they take at least %v", fetches, elapsed, want)
		}
	})
}
