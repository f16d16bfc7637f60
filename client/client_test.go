package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// tap wraps the connections a client dials so a test can cut them, freeze
// them (half-open: nothing arrives, nothing errors) or watch them.
type tap struct {
	mu    sync.Mutex
	conns []*tappedConn
	dials atomic.Int32
	// cutAfterSend, if set, is called for each SEND written; returning true
	// closes the connection right after the frame is on the wire, before
	// any ACK can be read.
	cutAfterSend func(*protocol.Send) bool
	// cutAfter is cutAfterSend for any frame (a CHANGE, say).
	cutAfter func(protocol.Message) bool
	// onRead, if set, sees each frame the client is about to get; it may
	// block (holding the frame back) or return an error, which closes the
	// connection and is what the client reads instead.
	onRead func(protocol.Message) error
	// gate, while set (holdDials), holds every dial until releaseDials,
	// so a test can change a room while the client is away.
	gate chan struct{}
}

func (t *tap) holdDials() {
	t.mu.Lock()
	t.gate = make(chan struct{})
	t.mu.Unlock()
}

func (t *tap) releaseDials() {
	t.mu.Lock()
	close(t.gate)
	t.gate = nil
	t.mu.Unlock()
}

type tappedConn struct {
	client.Conn
	tap    *tap
	frozen chan struct{} // closed to freeze reads
	once   sync.Once
}

func (t *tap) dial(ctx context.Context, addr string) (client.Conn, error) {
	t.dials.Add(1)
	t.mu.Lock()
	gate := t.gate
	t.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c, err := client.DialTCP(ctx, addr)
	if err != nil {
		return nil, err
	}
	tc := &tappedConn{Conn: c, tap: t, frozen: make(chan struct{})}
	t.mu.Lock()
	t.conns = append(t.conns, tc)
	t.mu.Unlock()
	return tc, nil
}

func (t *tap) last() *tappedConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conns[len(t.conns)-1]
}

func (c *tappedConn) ReadFrame() ([]byte, error) {
	select {
	case <-c.frozen:
		// A half-open connection: reads never return. Closing unblocks.
		select {}
	default:
	}
	body, err := c.Conn.ReadFrame()
	if err == nil && c.tap.onRead != nil {
		if m, _ := protocol.Decode(body); m != nil {
			if err := c.tap.onRead(m); err != nil {
				c.Conn.Close()
				return nil, err
			}
		}
	}
	return body, err
}

func (c *tappedConn) WriteFrames(frames [][]byte, deadline time.Time) error {
	cut := false
	if c.tap.cutAfterSend != nil || c.tap.cutAfter != nil {
		for _, f := range frames { // before writing: the write consumes frames
			if m, _ := protocol.Decode(f[protocol.LengthSize:]); m != nil {
				if s, ok := m.(*protocol.Send); ok && c.tap.cutAfterSend != nil && c.tap.cutAfterSend(s) {
					cut = true
				}
				if c.tap.cutAfter != nil && c.tap.cutAfter(m) {
					cut = true
				}
			}
		}
	}
	err := c.Conn.WriteFrames(frames, deadline)
	if cut {
		c.Conn.Close()
	}
	return err
}

func (c *tappedConn) freeze() { c.once.Do(func() { close(c.frozen) }) }

func fast(cfg client.Config) client.Config {
	cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 100*time.Millisecond
	return cfg
}

func joined(t *testing.T, cfg client.Config) *clienttest.Recorder {
	t.Helper()
	r := clienttest.New(t, fast(cfg))
	if err := r.C.Join("general"); err != nil {
		t.Fatal(err)
	}
	r.WaitJoined(t, "general")
	return r
}

func texts(ms []client.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return out
}

// TestReconnectResumesAndFlushesTheOutbox: the connection drops; messages
// sent by others meanwhile arrive once each, in order, and messages sent
// while offline go out after the reconnect.
func TestReconnectResumesAndFlushesTheOutbox(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	tp := &tap{}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	bob := joined(t, client.Config{Addr: srv.Addr, Name: "bob"})

	bob.C.Send("general", "before")
	alice.WaitText(t, "before")

	tp.last().Close() // the network drops
	alice.WaitState(t, client.Reconnecting)
	for i := range 5 {
		bob.C.Send("general", fmt.Sprint("while away ", i))
	}
	if _, err := alice.C.Send("general", "written offline"); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(t, "written offline")
	alice.WaitText(t, "written offline")

	want := []string{"before", "while away 0", "while away 1", "while away 2", "while away 3", "while away 4", "written offline"}
	if got := texts(alice.Messages()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("alice saw %q\nwant %q", got, want)
	}
	var rejoined bool
	for _, ev := range alice.Events() {
		if j, ok := ev.(client.Joined); ok && j.Resumed {
			rejoined = true
		}
	}
	if !rejoined {
		t.Error("no resumed Joined after the reconnect")
	}
	if n := tp.dials.Load(); n != 2 {
		t.Errorf("%d dials, want 2", n)
	}
}

// TestResendAfterLostAckIsNotDoubled: the server stores a message but the
// connection dies before the ACK arrives; the client re-sends it with the
// same id after reconnecting and gets the original ACK, and nobody sees
// the message twice.
func TestResendAfterLostAckIsNotDoubled(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	var cut atomic.Bool
	tp := &tap{cutAfterSend: func(s *protocol.Send) bool {
		return s.Text == "exactly once" && cut.CompareAndSwap(false, true)
	}}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	bob := joined(t, client.Config{Addr: srv.Addr, Name: "bob"})

	id, err := alice.C.Send("general", "exactly once")
	if err != nil {
		t.Fatal(err)
	}
	alice.WaitState(t, client.Reconnecting)
	ack := alice.Wait(t, "the ack", func(ev client.Event) bool { a, ok := ev.(client.Acked); return ok && a.ID == id }).(client.Acked)
	bob.C.Send("general", "after")
	bob.WaitText(t, "after")
	alice.WaitText(t, "after")

	for name, r := range map[string]*clienttest.Recorder{"alice": alice, "bob": bob} {
		n := 0
		for _, m := range r.Messages() {
			if m.ID == id {
				n++
				if m.Seq != ack.Seq {
					t.Errorf("%s: message seq %d, ack seq %d", name, m.Seq, ack.Seq)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s saw the message %d times", name, n)
		}
	}
	acks := 0
	for _, ev := range alice.Events() {
		if a, ok := ev.(client.Acked); ok && a.ID == id {
			acks++
		}
	}
	if acks != 1 {
		t.Errorf("%d Acked events for one message", acks)
	}
	if len(alice.C.Pending()) != 0 {
		t.Errorf("still pending: %d", len(alice.C.Pending()))
	}
}

// TestKeepaliveDetectsAHalfOpenConnection: the server goes silent without
// closing (a dead NAT mapping, a suspended laptop); the client notices
// within 1.5 ping intervals and reconnects.
func TestKeepaliveDetectsAHalfOpenConnection(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-ping", "300ms"}})
	tp := &tap{}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	frozenAt := time.Now()
	tp.last().freeze()
	sc := alice.WaitState(t, client.Reconnecting)
	took := time.Since(frozenAt)
	if took < 300*time.Millisecond || took > 3*time.Second {
		t.Errorf("noticed after %v; the ping interval is 300ms", took)
	}
	t.Logf("noticed after %v: %v", took.Round(time.Millisecond), sc.Err)
	alice.Wait(t, "back", func(ev client.Event) bool { j, ok := ev.(client.Joined); return ok && j.Resumed })
}

func TestRefusedJoinIsReportedAndNotRetried(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	joined(t, client.Config{Addr: srv.Addr, Name: "alice"})
	imposter := clienttest.New(t, fast(client.Config{Addr: srv.Addr, Name: "ALICE"}))
	imposter.C.Join("general")
	imposter.C.Send("general", "queued before the refusal")
	re := imposter.Wait(t, "refusal", func(ev client.Event) bool { _, ok := ev.(client.RoomError); return ok }).(client.RoomError)
	if re.Err.Code != protocol.CodeNameOwned || re.Room != "general" || len(re.Unsent) != 1 {
		t.Fatalf("got %+v", re)
	}
	if _, err := imposter.C.Send("general", "more"); !errors.Is(err, client.ErrNotInRoom) {
		t.Fatalf("send to a refused room: %v", err)
	}
	if imposter.C.State() != client.Connected {
		t.Errorf("state %v after a refused join; the connection should stay", imposter.C.State())
	}
}

// fakeServer accepts connections on 127.0.0.1 and answers each HELLO with
// reply, counting connections.
func fakeServer(t *testing.T, reply protocol.Message) (addr string, conns *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				if _, err := protocol.ReadFrame(c, protocol.MaxHelloFrame, nil); err == nil {
					c.Write(protocol.Encode(reply))
				}
				time.Sleep(100 * time.Millisecond)
			}()
		}
	}()
	return ln.Addr().String(), conns
}

func TestTerminalErrorStopsReconnecting(t *testing.T) {
	addr, conns := fakeServer(t, protocol.NewError(protocol.CodeUnsupportedVersion, "", "this server speaks protocol version 2"))
	r := clienttest.New(t, fast(client.Config{Addr: addr, Name: "alice"}))
	sc := r.WaitState(t, client.Closed)
	var perr *protocol.Error
	if !errors.As(sc.Err, &perr) || perr.Code != protocol.CodeUnsupportedVersion {
		t.Fatalf("closed with %v", sc.Err)
	}
	time.Sleep(300 * time.Millisecond) // several backoff periods
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections after a terminal error, want 1", n)
	}
	if _, err := r.C.Send("general", "x"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

func TestNotAChatServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	r := clienttest.New(t, fast(client.Config{Addr: ln.Addr().String(), Name: "alice"}))
	sc := r.WaitState(t, client.Closed)
	if !errors.Is(sc.Err, client.ErrWebPort) {
		t.Fatalf("reason %v does not say it reached a web port", sc.Err)
	}
	t.Logf("reason: %v", sc.Err)
}

// TestBackoffGrowsWithJitter: against a closed port the waits double up to
// the maximum, each jittered within [d/2, d].
func TestBackoffGrowsWithJitter(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := client.Config{Addr: addr, Name: "alice", MinBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond}
	r := clienttest.New(t, cfg)
	var waits []time.Duration
	r.Wait(t, "8 retries", func(ev client.Event) bool {
		if sc, ok := ev.(client.StateChanged); ok && sc.State == client.Reconnecting {
			waits = append(waits, sc.RetryIn)
		}
		return len(waits) == 8
	})
	distinct := map[time.Duration]bool{}
	for i, w := range waits {
		d := min(cfg.MaxBackoff, cfg.MinBackoff<<i)
		if w < d/2 || w > d {
			t.Errorf("wait %d is %v, want within [%v, %v]", i, w, d/2, d)
		}
		distinct[w] = true
	}
	if len(distinct) < 4 {
		t.Errorf("waits %v: no jitter", waits)
	}
}

// TestNudgeReconnectsAtOnce: after the server comes back, a nudge (an app
// returning to the foreground) reconnects without waiting out the backoff.
func TestNudgeReconnectsAtOnce(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	cfg := client.Config{Addr: srv.Addr, Name: "alice", MinBackoff: 20 * time.Second, MaxBackoff: 30 * time.Second}
	r := clienttest.New(t, cfg)
	r.C.Join("general")
	r.WaitJoined(t, "general")
	srv.Kill()
	r.WaitState(t, client.Reconnecting)
	srv.Restart()
	start := time.Now()
	r.C.Nudge()
	r.Wait(t, "rejoined", func(ev client.Event) bool { j, ok := ev.(client.Joined); return ok && j.Resumed })
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("rejoined after %v; the backoff was 10-20s", took)
	}
}

func TestSendAndLeaveValidation(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-max-text", "100"}})
	r := joined(t, client.Config{Addr: srv.Addr, Name: "alice"})
	if _, err := r.C.Send("general", ""); err == nil {
		t.Error("empty message accepted")
	}
	if _, err := r.C.Send("general", string(make([]byte, 101))); err == nil {
		t.Error("message over the server's limit accepted")
	}
	if _, err := r.C.Send("elsewhere", "hi"); !errors.Is(err, client.ErrNotInRoom) {
		t.Errorf("send to a room not joined: %v", err)
	}
	if err := r.C.Join("bad\troom"); err == nil {
		t.Error("invalid room name accepted")
	}
	if _, err := client.New(client.Config{Addr: srv.Addr, Name: " "}); err == nil {
		t.Error("invalid name accepted")
	}
	if err := r.C.Leave("general"); err != nil {
		t.Fatal(err)
	}
	r.Wait(t, "left", func(ev client.Event) bool { _, ok := ev.(client.Left); return ok })
	if _, err := r.C.Send("general", "hi"); !errors.Is(err, client.ErrNotInRoom) {
		t.Errorf("send after leaving: %v", err)
	}
	if err := r.C.Leave("general"); !errors.Is(err, client.ErrNotInRoom) {
		t.Errorf("leave twice: %v", err)
	}
}

func TestDrainReportsWhatIsStillPending(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	r := joined(t, client.Config{Addr: srv.Addr, Name: "alice"})
	srv.Kill()
	r.WaitState(t, client.Reconnecting)
	r.C.Send("general", "stuck")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := r.C.Drain(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain = %v", err)
	}
	t.Logf("Drain: %v", err)
	r.C.Close()
	if st := r.WaitState(t, client.Closed); st.Err != nil {
		t.Errorf("Close gave reason %v, want none", st.Err)
	}
	if _, ok := <-r.C.Events(); ok {
		t.Error("events channel still open after Closed")
	}
}

// TestResumeTellsWhatRetentionRemoved: the server keeps 3 messages per
// room; while alice is away 6 more are posted and the oldest removed.
// Her resumed Joined says that messages up to 4 were removed by the
// server, and she gets the 3 kept ones.
func TestResumeTellsWhatRetentionRemoved(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-retain-messages", "3"}})
	tp := &tap{}
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice", Dial: tp.dial})
	bob := joined(t, client.Config{Addr: srv.Addr, Name: "bob"})
	bob.C.Send("general", "before")
	alice.WaitText(t, "before") // seq 1

	tp.holdDials()
	tp.last().Close()
	alice.WaitState(t, client.Reconnecting)
	for i := range 6 { // seqs 2..7
		bob.C.Send("general", fmt.Sprint("while away ", i))
	}
	// The server logs each retention pass and how many it removed.
	const removedLog = "history retention removed old messages"
	srv.WaitLog(removedLog, func(map[string]any) bool {
		total := 0
		for _, rec := range srv.LogRecords(removedLog) {
			v, _ := rec["messages"].(float64)
			total += int(v)
		}
		return total == 4
	})
	tp.releaseDials()

	j := alice.Wait(t, "the resumed Joined", func(ev client.Event) bool {
		j, ok := ev.(client.Joined)
		return ok && j.Resumed
	}).(client.Joined)
	if j.Removed != 4 || j.Reset || j.Head != 7 {
		t.Fatalf("resumed Joined: removed %d, reset %v, head %d; want removed 4, no reset, head 7", j.Removed, j.Reset, j.Head)
	}
	alice.WaitText(t, "while away 5")
	want := []string{"before", "while away 3", "while away 4", "while away 5"}
	if got := texts(alice.Messages()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("alice saw %q\nwant %q", got, want)
	}
}
