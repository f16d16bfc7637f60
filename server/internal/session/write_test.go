package session

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"chat/protocol"
)

// partialSocket is a Direct transport whose socket takes only part of the
// first non-blocking write, as a full kernel buffer does; before that
// write returns, it runs duringTry (frames arriving while a flusher
// writes). Blocking writes wait until release is closed, as for a client
// that reads slowly. Everything written lands in out, in order.
type partialSocket struct {
	mu        sync.Mutex
	out       bytes.Buffer
	takeFirst int // bytes the first TryWrite takes
	tries     int
	duringTry func()
	release   chan struct{}
	closed    chan struct{}
}

func (p *partialSocket) TryWrite(frames [][]byte) (int, error) {
	p.mu.Lock()
	p.tries++
	first := p.tries == 1
	p.mu.Unlock()
	if first && p.duringTry != nil {
		p.duringTry()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, f := range frames {
		if first && n+len(f) > p.takeFirst {
			f = f[:p.takeFirst-n]
		}
		p.out.Write(f)
		n += len(f)
		if first && n == p.takeFirst {
			break
		}
	}
	return n, nil
}

func (p *partialSocket) WriteFrames(frames [][]byte) error {
	<-p.release
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range frames {
		p.out.Write(f)
	}
	return nil
}

func (p *partialSocket) CloseWrite(time.Time) error {
	close(p.closed)
	return nil
}

func (p *partialSocket) ReadFrame(int) ([]byte, error) { return nil, io.EOF }
func (p *partialSocket) Discard() error                { return nil }
func (p *partialSocket) Close() error                  { return nil }
func (p *partialSocket) RemoteAddr() string            { return "test" }
func (p *partialSocket) Direct() bool                  { return true }

type noRooms struct{}

func (noRooms) Join(*protocol.Join) *protocol.Error                   { return nil }
func (noRooms) SendReply(string, string, string, uint64) error        { return nil }
func (noRooms) Change(*protocol.Change) error                         { return nil }
func (noRooms) SendFile(string, string, string, uint64, string) error { return nil }
func (noRooms) Upload(*protocol.Upload) *protocol.Error               { return nil }
func (noRooms) Fetch(*protocol.Fetch) *protocol.Error                 { return nil }
func (noRooms) Typing(string, bool) *protocol.Error                   { return nil }
func (noRooms) Search(*protocol.Search) *protocol.Error               { return nil }
func (noRooms) Leave(string) *protocol.Error                          { return nil }
func (noRooms) Moderate(*protocol.Moderate) *protocol.Error           { return nil }
func (noRooms) Joined() int                                           { return 0 }
func (noRooms) Identified() bool                                      { return false }
func (noRooms) Identify(*protocol.Identify) *protocol.Error           { return nil }
func (noRooms) History(*protocol.History) *protocol.Error             { return nil }
func (noRooms) Read(string, uint64) *protocol.Error                   { return nil }
func (noRooms) List(string) *protocol.Error                           { return nil }
func (noRooms) Close()                                                {}

// TestOverflowAfterPartialWriteKeepsFramesWhole: a flusher's write stops
// inside a frame (the socket is full), and the queue then overflows
// before the writer goroutine has taken over. The client must still read
// whole frames, in order, ending with the slow-consumer ERROR: dropping
// the unwritten tail of the frame on the wire would glue the ERROR to
// half a frame and garble everything after it.
func TestOverflowAfterPartialWriteKeepsFramesWhole(t *testing.T) {
	const limit = MinQueue
	m := NewManager(Config{QueueFrames: limit}, func(Member) Rooms { return noRooms{} })
	// A flusher that does not run: the test calls flush itself.
	m.flushers = []*flusher{newFlusher()}
	ping := func(n uint64) []byte { return protocol.Encode(&protocol.Ping{Nonce: n}) }

	sock := &partialSocket{release: make(chan struct{}), closed: make(chan struct{})}
	sock.takeFirst = len(ping(1)) + len(ping(2))/2 // one frame and half the next
	s := newSession(m, sock, nil)
	next := uint64(1)
	deliver := func() { s.Deliver(ping(next)); next++ }

	deliver()
	deliver()
	sock.duringTry = func() {
		for range limit { // while the write runs, the queue fills up
			deliver()
		}
	}
	s.flush() // the socket is full: a writer goroutine waits to write the rest
	// The client is too slow: the queue overflows, whether or not the
	// writer has taken the queue yet (it then waits in its write).
	for range limit + 1 {
		deliver()
	}
	close(sock.release)

	select {
	case <-sock.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not close its write side after the overflow")
	}
	sock.mu.Lock()
	out := bytes.Clone(sock.out.Bytes())
	sock.mu.Unlock()

	r := bufio.NewReader(bytes.NewReader(out))
	want := uint64(1)
	for {
		body, err := protocol.ReadFrame(r, protocol.MaxFrame, nil)
		if err != nil {
			t.Fatalf("after %d pings the stream breaks: %v\n% x", want-1, err, out)
		}
		msg, err := protocol.Decode(body)
		if err != nil {
			t.Fatalf("after %d pings an undecodable frame: %v\n% x", want-1, err, out)
		}
		switch msg := msg.(type) {
		case *protocol.Ping:
			if msg.Nonce != want {
				t.Fatalf("ping %d where %d was due", msg.Nonce, want)
			}
			want++
			continue
		case *protocol.Error:
			if msg.Code != protocol.CodeSlowConsumer {
				t.Fatalf("error %v, want slow-consumer", msg)
			}
		default:
			t.Fatalf("unexpected %T", msg)
		}
		break
	}
	if want < 3 {
		t.Errorf("only %d pings before the error: the one half written must be completed", want-1)
	}
	if _, err := protocol.ReadFrame(r, protocol.MaxFrame, nil); !errors.Is(err, io.EOF) {
		t.Errorf("after the ERROR: %v, want the end of the stream", err)
	}
}
