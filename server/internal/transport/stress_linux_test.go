package transport

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chat/internal/testserver"
	"chat/protocol"
	"chat/server/internal/session"
)

// parkSim is a session's reader, reduced: TryReadFrame until ErrWouldBlock,
// then arm the poller and exit; the poller's wake starts a new goroutine.
type parkSim struct {
	tr     *TCP
	poller *Poller
	id     uint64
	got    chan string
	errc   chan error
	parks  atomic.Int64
	frames atomic.Int64
}

func (s *parkSim) read() {
	for {
		body, err := s.tr.TryReadFrame(protocol.MaxFrame)
		if errors.Is(err, session.ErrWouldBlock) {
			s.parks.Add(1)
			if err := s.poller.Arm(s.tr.SyscallConn(), s.id, func() { go s.read() }); err != nil {
				s.errc <- err
			}
			return
		}
		if err != nil {
			s.errc <- err
			return
		}
		m, err := protocol.Decode(body)
		if err != nil {
			s.errc <- err
			return
		}
		s.frames.Add(1)
		s.got <- m.(*protocol.Send).ID
	}
}

// stressServer accepts TLS connections, each read by a parkSim; simc
// hands the readers to the test.
type stressServer struct {
	addr   string
	poller *Poller
	ids    atomic.Uint64
	simc   chan *parkSim
}

func newStressServer(t *testing.T, cfg *tls.Config) *stressServer {
	certFile, keyFile, _ := testserver.SelfSigned(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Certificates = []tls.Certificate{cert}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	poller, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	s := &stressServer{addr: ln.Addr().String(), poller: poller, simc: make(chan *parkSim, 1000)}
	opts := &TCPOptions{TLS: cfg, HandshakeTimeout: 5 * time.Second,
		Refused: func(string, string, string) {}, Logger: slog.New(slog.DiscardHandler)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc, sock, err := handshake(c, c.RemoteAddr().String(), opts)
				if err != nil {
					c.Close()
					return
				}
				sim := &parkSim{tr: newTLS(tc, sock), poller: poller, id: s.ids.Add(1),
					got: make(chan string, 100000), errc: make(chan error, 4)}
				t.Cleanup(func() { sim.tr.Close() })
				s.simc <- sim
				go sim.read()
			}()
		}
	}()
	return s
}

// splitProxy forwards client→server in random pieces with random pauses.
func splitProxy(t *testing.T, target string, seed uint64) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for i := uint64(0); ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				return
			}
			s.(*net.TCPConn).SetNoDelay(true)
			t.Cleanup(func() { c.Close(); s.Close() })
			go func() { io.Copy(c, s); c.Close() }()
			go func(r *rand.Rand) {
				buf := make([]byte, 64<<10)
				for {
					max := 1 + r.IntN(20)
					if r.IntN(4) == 0 {
						max = 1 + r.IntN(len(buf))
					}
					n, err := c.Read(buf[:max])
					rest := buf[:n]
					for len(rest) > 0 {
						k := 1 + r.IntN(len(rest))
						if _, werr := s.Write(rest[:k]); werr != nil {
							return
						}
						rest = rest[k:]
						if r.IntN(8) == 0 {
							// The pause is the behaviour under test: a record
							// arrives in pieces with gaps in which the reader
							// parks half-way through it.
							time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
						}
					}
					if err != nil {
						s.(*net.TCPConn).CloseWrite()
						return
					}
				}
			}(rand.New(rand.NewPCG(seed, i)))
		}
	}()
	return ln.Addr().String()
}

// TestStressTLSParkedRandomSplits: TLS 1.2 and 1.3 clients send frames of
// random sizes (some over several records), in records of random sizes,
// through a proxy that cuts the stream into random pieces with random
// pauses, to readers that park in the real Poller whenever TryReadFrame
// says so. Every frame arrives, in order.
func TestStressTLSParkedRandomSplits(t *testing.T) {
	for _, vers := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(fmt.Sprintf("%x", vers), func(t *testing.T) {
			srv := newStressServer(t, &tls.Config{MinVersion: tls.VersionTLS12})
			proxy := splitProxy(t, srv.addr, uint64(vers))
			const conns = 16
			const perConn = 400
			var wg sync.WaitGroup
			for ci := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(ci), uint64(vers)))
					c, err := tls.Dial("tcp", proxy, &tls.Config{InsecureSkipVerify: true, MaxVersion: vers})
					if err != nil {
						t.Error(err)
						return
					}
					// Closed only after the test has read every frame: a
					// close with the server's session tickets unread is a
					// reset, which could discard frames still in flight
					// through the proxy.
					t.Cleanup(func() { c.Close() })
					seq := 0
					for seq < perConn {
						var batch []byte
						for k := 1 + r.IntN(4); k > 0 && seq < perConn; k-- {
							size := r.IntN(64)
							if r.IntN(10) == 0 {
								size = r.IntN(40 << 10)
							}
							batch = append(batch, protocol.Encode(&protocol.Send{Room: "r", ID: fmt.Sprint(seq), Text: strings.Repeat("x", size)})...)
							seq++
						}
						// Sometimes split the batch over several TLS writes (records).
						for len(batch) > 0 {
							k := len(batch)
							if r.IntN(3) == 0 {
								k = 1 + r.IntN(len(batch))
							}
							if _, err := c.Write(batch[:k]); err != nil {
								t.Error(err)
								return
							}
							batch = batch[k:]
						}
						if r.IntN(5) == 0 {
							// A pause between batches, as a person makes: the
							// reader parks in the poller, which must wake it.
							time.Sleep(time.Duration(r.IntN(15)) * time.Millisecond)
						}
					}
				}()
			}
			var sims []*parkSim
			for range conns {
				select {
				case s := <-srv.simc:
					sims = append(sims, s)
				case <-time.After(10 * time.Second):
					t.Fatal("no connection")
				}
			}
			wg.Wait()
			for i, s := range sims {
				for want := 0; want < perConn; want++ {
					select {
					case id := <-s.got:
						if id != fmt.Sprint(want) {
							t.Fatalf("conn %d: got frame %s, want %d", i, id, want)
						}
					case err := <-s.errc:
						if len(s.got) > 0 {
							s.errc <- err
							want--
							continue
						}
						t.Fatalf("conn %d (%s): reader error after %d frames: %v", i, s.tr.RemoteAddr(), want, err)
					case <-time.After(10 * time.Second):
						t.Fatalf("conn %d: HANG: frame %d never read (parks %d)", i, want, s.parks.Load())
					}
				}
			}
			var parks int64
			for _, s := range sims {
				parks += s.parks.Load()
			}
			t.Logf("TLS %x: %d conns × %d frames, %d parks", vers, conns, perConn, parks)
		})
	}
}

// TestStressTLSKeyUpdate: openssl s_client sends KeyUpdate (with and
// without update_requested) between frames, through the splitting proxy,
// while the server's reader parks.
//
// s_client takes a line "K" or "k" read from stdin as a command only when
// it is at the start of what one read returned, and then drops the rest
// of that read. So the test never lets a command and frame bytes share a
// read: it writes a frame, waits until the server has read it (so s_client
// has consumed it), writes the command, and waits until s_client reports
// it (KEYUPDATE on stderr) before the next frame. Waiting for the frame
// also lets the reader park between frames, which is what is under test.
func TestStressTLSKeyUpdate(t *testing.T) {
	testserver.NeedTool(t, "openssl", "this test has openssl s_client send KeyUpdates")
	srv := newStressServer(t, &tls.Config{MinVersion: tls.VersionTLS13})
	proxy := splitProxy(t, srv.addr, 99)
	// Not -quiet: it implies -ign_eof, which turns the K and k commands off.
	cmd := exec.Command("openssl", "s_client", "-connect", proxy, "-tls1_3", "-brief")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// stderr is read line by line: each KEYUPDATE line is a signal, and
	// everything is kept for failure messages.
	var stderr testserver.LockedBuffer
	keyUpdates := make(chan struct{}, 1000)
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		sc := bufio.NewScanner(stderrPipe)
		for sc.Scan() {
			stderr.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "KEYUPDATE") {
				keyUpdates <- struct{}{}
			}
		}
	}()
	defer func() { stdin.Close(); cmd.Process.Kill(); <-stderrDone; cmd.Wait() }()
	var sim *parkSim
	select {
	case sim = <-srv.simc:
	case <-time.After(10 * time.Second):
		t.Fatal("no connection")
	}
	// received waits for frame seq to reach the server's reader.
	received := func(seq int) {
		t.Helper()
		select {
		case id := <-sim.got:
			if id != fmt.Sprint(seq) {
				t.Fatalf("got frame %s, want %d", id, seq)
			}
		case err := <-sim.errc:
			t.Fatalf("reader error after %d frames: %v\nopenssl: %s", seq, err, stderr.String())
		case <-time.After(10 * time.Second):
			t.Fatalf("HANG: frame %d never read (parks %d)\nopenssl: %s", seq, sim.parks.Load(), stderr.String())
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 300
	var updates int
	for seq := range n {
		if _, err := stdin.Write(protocol.Encode(&protocol.Send{Room: "r", ID: fmt.Sprint(seq), Text: strings.Repeat("y", r.IntN(200))})); err != nil {
			t.Fatal(err)
		}
		received(seq)
		if r.IntN(3) == 0 {
			cmdLine := "k\n"
			if r.IntN(2) == 0 {
				cmdLine = "K\n"
			}
			if _, err := stdin.Write([]byte(cmdLine)); err != nil {
				t.Fatal(err)
			}
			select {
			case <-keyUpdates:
				updates++
			case <-time.After(10 * time.Second):
				t.Fatalf("s_client did not take the command after frame %d\nopenssl: %s", seq, stderr.String())
			}
		}
	}
	t.Logf("%d frames, %d parks, %d KEYUPDATEs", n, sim.parks.Load(), updates)
}

// TestTLSFinishedAndFrameInOneSegment: the client's Finished and its first
// frame arrive together, so the frame is in TLS's buffer when the
// handshake ends and the socket is empty: the reader must not park.
func TestTLSFinishedAndFrameInOneSegment(t *testing.T) {
	srv := newStressServer(t, &tls.Config{MinVersion: tls.VersionTLS13})
	raw, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	// The ClientHello goes out; the Finished and the frames wait.
	cc := &heldConn{Conn: raw, held: true, pass: 1}
	client := tls.Client(cc, &tls.Config{InsecureSkipVerify: true})
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write(append(frame("0"), frame("1")...)); err != nil {
		t.Fatal(err)
	}
	if err := cc.release(); err != nil {
		t.Fatal(err)
	}
	var sim *parkSim
	select {
	case sim = <-srv.simc:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection")
	}
	for range 2 {
		select {
		case <-sim.got:
		case err := <-sim.errc:
			t.Fatal(err)
		case <-time.After(3 * time.Second):
			t.Fatalf("HANG: frame buffered at the handshake never read; parks %d", sim.parks.Load())
		}
	}
	t.Logf("ok, parks %d", sim.parks.Load())
	client.Close()
}
