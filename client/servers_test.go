package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// node stands for one node of a cluster: a listener on 127.0.0.1 that
// relays every connection to one real server. Several nodes in front of
// the same server share its rooms, history, positions and epochs, as the
// nodes of a cluster do; killing a node closes its listener (its port
// refuses from then on) and drops its connections, as a crash would.
type node struct {
	ln   net.Listener
	Addr string

	mu     sync.Mutex
	conns  []net.Conn
	killed bool
}

func startNode(t *testing.T, backend string) *node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{ln: ln, Addr: ln.Addr().String()}
	t.Cleanup(n.kill)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			n.mu.Lock()
			if n.killed {
				n.mu.Unlock()
				c.Close()
				b.Close()
				return
			}
			n.conns = append(n.conns, c, b)
			n.mu.Unlock()
			go func() { _, _ = io.Copy(b, c); b.Close(); c.Close() }()
			go func() { _, _ = io.Copy(c, b); b.Close(); c.Close() }()
		}
	}()
	return n
}

func (n *node) kill() {
	n.ln.Close()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.killed = true
	for _, c := range n.conns {
		c.Close()
	}
}

// refusedAddr is a loopback address where nothing listens: connecting
// to it is refused at once.
func refusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func connectedTo(addr string) func(client.Event) bool {
	return func(ev client.Event) bool {
		sc, ok := ev.(client.StateChanged)
		return ok && sc.State == client.Connected && sc.Addr == addr
	}
}

// TestFailoverToAnotherNodeResumes: of three server addresses the first
// refuses; the client connects to the second. That node dies: the
// client moves to the third without waiting for the second to come
// back, resumes the room, and every message — sent by others before,
// while and after it moves, and by itself while offline — arrives
// exactly once, in order.
func TestFailoverToAnotherNodeResumes(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	dead := refusedAddr(t)
	a, b := startNode(t, srv.Addr), startNode(t, srv.Addr)
	alice := joined(t, client.Config{Addr: dead, Addrs: []string{a.Addr, b.Addr}, Name: "alice"})
	bob := joined(t, client.Config{Addr: srv.Addr, Name: "bob"})
	ev := alice.Wait(t, "connected", func(ev client.Event) bool {
		sc, ok := ev.(client.StateChanged)
		return ok && sc.State == client.Connected
	}).(client.StateChanged)
	if ev.Addr != a.Addr || ev.Remote != a.Addr {
		t.Fatalf("connected to %q (%q), want the first address that answers, %s", ev.Addr, ev.Remote, a.Addr)
	}
	if addr, remote := alice.C.Server(); addr != a.Addr || remote != a.Addr {
		t.Errorf("Server() = %q, %q; want %s", addr, remote, a.Addr)
	}

	bob.C.Send("general", "before")
	alice.WaitText(t, "before")

	a.kill()
	alice.WaitState(t, client.Reconnecting)
	for i := range 3 {
		bob.C.Send("general", fmt.Sprint("while moving ", i))
	}
	if _, err := alice.C.Send("general", "written offline"); err != nil {
		t.Fatal(err)
	}
	alice.Wait(t, "connected to the third address", connectedTo(b.Addr))
	alice.Wait(t, "resumed Joined", func(ev client.Event) bool { j, ok := ev.(client.Joined); return ok && j.Resumed })
	bob.C.Send("general", "after")
	alice.WaitText(t, "after")
	alice.WaitText(t, "written offline") // stored before or after "after": both race to the server

	// bob's sends and alice's are ordered by the server; what matters is
	// that each arrives once and bob's keep their order.
	got := texts(alice.Messages())
	for _, want := range []string{"before", "while moving 0", "while moving 1", "while moving 2", "written offline", "after"} {
		if n := count(got, want); n != 1 {
			t.Errorf("%q arrived %d times; alice saw %q", want, n, got)
		}
	}
	var fromBob []string
	for _, s := range got {
		if s != "written offline" {
			fromBob = append(fromBob, s)
		}
	}
	if want := "[before while moving 0 while moving 1 while moving 2 after]"; fmt.Sprint(fromBob) != want {
		t.Errorf("bob's messages arrived as %q, want %s", fromBob, want)
	}
	if seqs := seqsOf(alice.Messages()); !slices.IsSorted(seqs) {
		t.Errorf("messages out of order: seqs %v", seqs)
	}
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func seqsOf(ms []client.Message) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

// TestUnavailableMovesToAnotherNode: a node that closes the connection
// with unavailable (its storage failed) or server-restarting is tried
// last in the next round: the client resumes on the other node at once,
// instead of knocking at the failing one again.
func TestUnavailableMovesToAnotherNode(t *testing.T) {
	for _, code := range []protocol.ErrorCode{protocol.CodeUnavailable, protocol.CodeServerRestarting} {
		t.Run(code.String(), func(t *testing.T) {
			joinedAt := func(n int, j *protocol.Join) []protocol.Message {
				return []protocol.Message{&protocol.Joined{Room: j.Room, Name: j.Name, After: j.After, Head: 2, Count: 1,
					Members: []string{j.Name}, Epoch: 7}}
			}
			a := startScripted(t, func(n int, j *protocol.Join) []protocol.Message {
				return append(append(joinedAt(n, j), msgs("general", 1, 2, "m")...),
					protocol.NewError(code, "", "the node is failing"))
			})
			b := startScripted(t, joinedAt)
			alice := clientRecorder(t, client.Config{Addr: a.ln.Addr().String(), Addrs: []string{b.ln.Addr().String()}, Name: "alice"})
			alice.C.Join("general")
			if j := a.nextJoin(t); j.Resume {
				t.Fatalf("first JOIN %+v", j)
			}
			j := b.nextJoin(t)
			if !j.Resume || j.After != 2 || j.Epoch != 7 {
				t.Fatalf("JOIN on the other node %+v, want a resume after 2 in epoch 7", j)
			}
			alice.Wait(t, "connected to the other node", connectedTo(b.ln.Addr().String()))
			select {
			case j := <-a.joins:
				t.Fatalf("the failing node was tried again first: %+v", j)
			default:
			}
			var perr *protocol.Error
			sc := alice.WaitState(t, client.Reconnecting)
			if !errors.As(sc.Err, &perr) || perr.Code != code {
				t.Errorf("Reconnecting because of %v, want %v", sc.Err, code)
			}
		})
	}
}

// TestNameWithSeveralAddresses: a host name with several addresses is
// several servers: the client tries each in the resolver's order until
// one answers, and says which one it reached. 127.0.0.2 is loopback
// too, and nothing listens there.
func TestNameWithSeveralAddresses(t *testing.T) {
	srv := startScripted(t, func(n int, j *protocol.Join) []protocol.Message {
		return []protocol.Message{&protocol.Joined{Room: j.Room, Name: j.Name, Count: 1, Members: []string{j.Name}}}
	})
	_, port, _ := net.SplitHostPort(srv.ln.Addr().String())
	var mu sync.Mutex
	var dialled []string
	addr := net.JoinHostPort("chat.test", port)
	alice := clientRecorder(t, client.Config{Addr: addr, Name: "alice",
		LookupHost: func(_ context.Context, host string) ([]string, error) {
			if host != "chat.test" {
				return nil, fmt.Errorf("no such host %q", host)
			}
			return []string{"127.0.0.2", "127.0.0.2", "127.0.0.1"}, nil // a repeated address is tried once
		},
		Dial: func(ctx context.Context, a string) (client.Conn, error) {
			ip, _ := client.TargetIP(ctx)
			mu.Lock()
			dialled = append(dialled, a+" "+ip.String())
			mu.Unlock()
			return client.DialTCP(ctx, a)
		}})
	ev := alice.WaitState(t, client.Connected)
	if ev.Addr != addr || ev.Remote != "127.0.0.1:"+port {
		t.Errorf("connected to %q at %q, want %s at 127.0.0.1:%s", ev.Addr, ev.Remote, addr, port)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := fmt.Sprintf("[%s 127.0.0.2 %s 127.0.0.1]", addr, addr); fmt.Sprint(dialled) != want {
		t.Errorf("dialled %v, want %s", dialled, want)
	}
}

// TestRoundsAreBounded: a name with more addresses than the client
// tries per name, none answering: one round tries 16 of them, then
// the client waits (the backoff is per round) and says why.
func TestRoundsAreBounded(t *testing.T) {
	var mu sync.Mutex
	var tried []string
	refused := errors.New("refused")
	alice := clientRecorder(t, client.Config{Addr: "many.test:7878", Name: "alice",
		MinBackoff: time.Hour, MaxBackoff: time.Hour, // one round only
		LookupHost: func(context.Context, string) ([]string, error) {
			var ips []string
			for i := range 40 {
				ips = append(ips, fmt.Sprintf("127.0.1.%d", i+1))
			}
			return ips, nil
		},
		Dial: func(ctx context.Context, a string) (client.Conn, error) {
			ip, _ := client.TargetIP(ctx)
			mu.Lock()
			tried = append(tried, ip.String())
			mu.Unlock()
			return nil, refused
		}})
	sc := alice.WaitState(t, client.Reconnecting)
	if !errors.Is(sc.Err, refused) || sc.RetryIn < 30*time.Minute {
		t.Errorf("Reconnecting %+v, want the dial error and the backoff", sc)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tried) != 16 || tried[0] != "127.0.1.1" || tried[15] != "127.0.1.16" {
		t.Errorf("one round tried %d addresses %v, want the first 16", len(tried), tried)
	}
}

// clientRecorder starts a client (with fast backoff unless cfg has its
// own) and records its events; it joins nothing.
func clientRecorder(t *testing.T, cfg client.Config) *clienttest.Recorder {
	t.Helper()
	if cfg.MinBackoff == 0 {
		cfg = fast(cfg)
	}
	return clienttest.New(t, cfg)
}

// TestWebSocketByResolvedAddress: a ws:// URL whose host name the
// client resolves is dialled at the IP address, with the URL (and its
// Host) unchanged, and the real server's WebSocket endpoint answers.
func TestWebSocketByResolvedAddress(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	_, port, _ := net.SplitHostPort(srv.HTTPAddr)
	addr := "ws://chat.test:" + port + "/ws"
	alice := clientRecorder(t, client.Config{Addr: addr, Name: "alice",
		LookupHost: func(context.Context, string) ([]string, error) { return []string{"127.0.0.1"}, nil }})
	alice.C.Join("general")
	alice.WaitJoined(t, "general")
	if a, remote := alice.C.Server(); a != addr || remote != "127.0.0.1:"+port {
		t.Errorf("Server() = %q, %q; want %s at 127.0.0.1:%s", a, remote, addr, port)
	}
}
