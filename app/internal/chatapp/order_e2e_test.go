package chatapp_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"gioui.org/io/key"

	"chat/client"
	"chat/internal/testserver"
)

// gate stands between one client and the real server, so that a test can
// take that client offline while everyone else stays connected: cut
// closes its connection, and until restore its dials go to a loopback
// port where nothing listens, which fails as a real outage does.
type gate struct {
	dead string // a port that was just free

	mu      sync.Mutex
	offline bool
	conns   []client.Conn
}

func newGate(t *testing.T) *gate {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{dead: l.Addr().String()}
	l.Close()
	return g
}

func (g *gate) dial(ctx context.Context, addr string) (client.Conn, error) {
	g.mu.Lock()
	if g.offline {
		addr = g.dead
	}
	g.mu.Unlock()
	c, err := client.DialTCP(ctx, addr)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.offline { // cut while dialing
		c.Close()
		return nil, net.ErrClosed
	}
	g.conns = append(g.conns, c)
	return c, nil
}

// tune makes the client dial through the gate, with short backoffs.
func (g *gate) tune(c *client.Config) {
	fastBackoff(c)
	c.Dial = g.dial
}

func (g *gate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.offline = true
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

func (g *gate) restore() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.offline = false
}

// y is where the text s shows on screen, top to bottom.
func (r *rig) y(s string) int {
	r.t.Helper()
	n, ok := r.Find(s)
	if !ok {
		r.t.Fatalf("the screen does not show %q; it shows %q", s, r.Texts())
	}
	return n.Bounds.Min.Y
}

// TestOfflineMessageTakesItsServerPosition: alice loses her connection
// and types a message; bob, still connected, posts meanwhile, so the
// server stores his message first. When alice is back, her message must
// end up below bob's, in the order the server stored them and every
// other client shows, not where she typed it.
func TestOfflineMessageTakesItsServerPosition(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	g := newGate(t)
	r := newRigTuned(t, srv.Addr, g.tune)
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("connected")
	bob := newPeer(t, srv.Addr, "bob")
	r.waitShows("bob joined")
	if _, err := bob.c.Send("general", "before the outage"); err != nil {
		t.Fatal(err)
	}
	r.waitShows("before the outage")

	g.cut()
	r.waitShows("reconnecting…")
	r.Type("typed while offline")
	r.Press(key.NameReturn, 0)
	r.mustShow("sending…")
	if _, err := bob.c.Send("general", "bob, while alice was away"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bob.c.Drain(ctx); err != nil { // stored: it has its number
		t.Fatal(err)
	}
	stored := bob.receive("bob, while alice was away")
	r.Frame()
	if !r.Shows("sending…") {
		t.Fatal("the message typed offline is not pending while offline")
	}

	g.restore()
	r.waitShows("bob, while alice was away")
	r.waitFor("the offline message to be acknowledged", func() bool { return !r.Shows("sending…") })
	mine := bob.receive("typed while offline")
	if mine.Seq <= stored.Seq {
		t.Fatalf("the server stored alice's message as %d, bob's as %d: the test needs bob's first", mine.Seq, stored.Seq)
	}
	if before, his, hers := r.y("before the outage"), r.y("bob, while alice was away"), r.y("typed while offline"); !(before < his && his < hers) {
		t.Fatalf("on screen: %q at %d, %q at %d, %q at %d; the server's order is the three in that order",
			"before the outage", before, "bob, while alice was away", his, "typed while offline", hers)
	}
}
