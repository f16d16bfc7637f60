package session_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/history"
	"chat/server/internal/hub"
	"chat/server/internal/inbox"
	"chat/server/internal/session"
	"chat/server/internal/transport"
)

// FuzzSession drives one connection's state machine with an arbitrary
// byte stream, as a client on the internet could, and checks what comes
// back: the session ends (no hang, no panic), everything it sends is a
// well-formed server frame, nothing follows a closing ERROR, and rooms are
// only talked about after WELCOME.
func FuzzSession(f *testing.F) {
	for _, s := range seedSessions() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		store, err := broker.NewLocal(func(sink history.Sink) (history.Log, error) { return history.NewMemory(sink), nil }, broker.LocalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		log := store.Log().(*history.Memory)
		h, err := hub.New(hub.Config{Inbox: inbox.NewMemory(log.Heads, 0), Owners: fuzzOwners{}, OperatorToken: "t"},
			func(hd broker.Handler) (broker.Broker, error) { return store.Node(hd), nil })
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		mgr := session.NewManager(session.Config{
			HandshakeTimeout: 2 * time.Second, PingInterval: time.Second, WriteTimeout: time.Second,
			Linger: 50 * time.Millisecond, MsgRate: 1000, MsgBurst: 1000, SearchRate: 1000, SearchBurst: 1000,
		}, func(m session.Member) session.Rooms { return h.Connect(m) })

		server, peer := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			mgr.Serve(transport.NewTCP(server))
		}()
		var out bytes.Buffer
		read := make(chan struct{})
		go func() {
			defer close(read)
			_, _ = io.Copy(&out, peer)
		}()
		_ = peer.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = peer.Write(input) // may stop early: the server closes on bad input
		// The client goes away; the session must wind down by itself.
		time.AfterFunc(20*time.Millisecond, func() { peer.Close() })
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the session did not end after its input did")
		}
		<-read
		checkServerStream(t, out.Bytes())
	})
}

// checkServerStream checks the frames a session sent.
func checkServerStream(t *testing.T, stream []byte) {
	r := bytes.NewReader(stream)
	welcomed, closed := false, false
	for {
		body, err := protocol.ReadFrame(r, protocol.MaxFrame, nil)
		if err == io.EOF {
			return
		}
		if err != nil {
			// The pipe closed while a write was in flight: only the last
			// frame may be cut short.
			if r.Len() == 0 && err == protocol.ErrTruncated {
				return
			}
			t.Fatalf("the server sent a broken stream: %v", err)
		}
		m, err := protocol.Decode(body)
		if err != nil {
			t.Fatalf("the server sent an undecodable frame: %v", err)
		}
		if closed {
			t.Fatalf("the server sent %v after a closing ERROR", m.Type())
		}
		switch m := m.(type) {
		case *protocol.Welcome:
			if welcomed {
				t.Fatal("two WELCOMEs")
			}
			welcomed = true
		case *protocol.Error:
			if m.Text == "" {
				t.Fatalf("ERROR %v without an explanation", m.Code)
			}
			closed = m.Closing()
		case *protocol.Pong:
			if !welcomed {
				t.Fatal("PONG before WELCOME")
			}
		case *protocol.Joined, *protocol.Ack, *protocol.Msg, *protocol.Presence, *protocol.Left,
			*protocol.Identified, *protocol.Page, *protocol.Rooms, *protocol.Marker, *protocol.Notice,
			*protocol.Moderated, *protocol.ModEvent, *protocol.Update, *protocol.IsTyping, *protocol.Results:
			if !welcomed {
				t.Fatalf("%v before WELCOME", m.Type())
			}
		default:
			t.Fatalf("the server sent a client message type %v", m.Type())
		}
	}
}

// fuzzOwners has every name claimed by the secret "s".
type fuzzOwners struct{}

func (fuzzOwners) Claim(_ context.Context, _, secret string) (bool, error) { return secret == "s", nil }
func (fuzzOwners) Claimed(_ context.Context, keys []string) ([]string, error) {
	return keys, nil
}

// seedSessions are well-formed sessions and near misses for the corpus.
func seedSessions() [][]byte {
	cat := func(ms ...protocol.Message) []byte {
		var b []byte
		for _, m := range ms {
			b = protocol.AppendFrame(b, m)
		}
		return b
	}
	hello := &protocol.Hello{Version: protocol.Version, Client: "fuzz"}
	join := &protocol.Join{Room: "general", Name: "alice", Secret: "s"}
	send := &protocol.Send{Room: "general", ID: "1", Text: "hi ~ 🎉"}
	identify := &protocol.Identify{Name: "alice", Secret: "s"}
	dm := &protocol.Join{Room: "@Bob@alice", Name: "alice", Secret: "s"}
	return [][]byte{
		cat(hello, identify, join, send, &protocol.Send{Room: "general", ID: "2", Text: "@alice @bob hi"},
			&protocol.Read{Room: "general", Seq: 2}, &protocol.History{Room: "general"}, &protocol.List{}),
		cat(hello, identify, dm, &protocol.Send{Room: "@alice@bob", ID: "d", Text: "psst"},
			&protocol.History{Room: "@alice@bob", Before: 1, Limit: 1}, &protocol.Read{Room: "@ALICE@bob", Seq: 9}),
		cat(hello, identify, identify),
		cat(hello, &protocol.Identify{Name: "alice"}, &protocol.Read{Room: "general", Seq: 1}),
		cat(hello, &protocol.Join{Room: "@alice@bob", Name: "carol", Secret: "s"}, &protocol.Join{Room: "@x", Name: "a@b"}),
		cat(hello, &protocol.History{Room: "general"}),
		// Moderation: the room's creator kicks, bans, mutes itself,
		// deletes, sets a topic, makes the room invite-only and invites;
		// then an operator by token, and requests that are refused.
		cat(hello, join, send, &protocol.Moderate{Room: "general", Action: protocol.ModTopic, Text: "topic"},
			&protocol.Moderate{Room: "general", Action: protocol.ModDelete, Seq: 1},
			&protocol.Moderate{Room: "general", Action: protocol.ModInviteOnlyOn},
			&protocol.Moderate{Room: "general", Action: protocol.ModInvite, Seconds: 60},
			&protocol.Moderate{Room: "general", Action: protocol.ModMute, Target: "alice", Seconds: 5}, send,
			&protocol.Moderate{Room: "general", Action: protocol.ModUnmute, Target: "alice"},
			&protocol.Moderate{Room: "general", Action: protocol.ModBanAddress, Target: "alice"},
			&protocol.Join{Room: "general", Name: "bob", Invite: "nope"}),
		cat(hello, join, &protocol.Moderate{Room: "general", Action: protocol.ModKick, Target: "alice", Text: "bye"},
			&protocol.Join{Room: "general", Name: "alice", Secret: "s"},
			&protocol.Moderate{Room: "general", Action: protocol.ModBan, Target: "alice"}, join,
			&protocol.Moderate{Room: "general", Action: protocol.ModUnban, Target: "alice"}),
		cat(hello, &protocol.Moderate{Action: protocol.ModOper, Text: "t"},
			&protocol.Moderate{Room: "elsewhere", Action: protocol.ModOp, Target: "bob"},
			&protocol.Moderate{Room: "bad\troom", Action: protocol.ModTopic},
			&protocol.Moderate{Room: "general", Action: 200}),
		cat(hello, &protocol.Moderate{Action: protocol.ModOper, Text: "wrong"},
			&protocol.Moderate{Room: "general", Action: protocol.ModKick, Target: "x"}),
		// Acting on messages: a reply, changes (some refused), typing,
		// searches (one out of scope, one without words).
		cat(hello, identify, join, send, &protocol.Send{Room: "general", ID: "r", Text: "re", Reply: 1},
			&protocol.Change{Room: "general", Kind: protocol.ChangeEdit, Target: 1, ID: "c1", Text: "edited"},
			&protocol.Change{Room: "general", Kind: protocol.ChangeReact, Target: 1, ID: "c2", Text: "👍"},
			&protocol.Change{Room: "general", Kind: protocol.ChangeReact, Target: 1, ID: "c3", Text: "x"},
			&protocol.Change{Room: "general", Kind: 9, Target: 1, ID: "c4"},
			&protocol.Change{Room: "general", Kind: protocol.ChangeDelete, Target: 1, ID: "c5"},
			&protocol.Typing{Room: "general"}, &protocol.Typing{Room: "general", Stopped: true},
			&protocol.Search{Query: "edited"}, &protocol.Search{Query: "x", Room: "elsewhere"}, &protocol.Search{Query: "!!"},
			&protocol.History{Room: "general", Full: true}),
		cat(hello, &protocol.Change{Room: "general", Kind: protocol.ChangeEdit, Target: 1, ID: "c", Text: "t"}),
		cat(hello, &protocol.Typing{Room: "general"}),
		cat(hello, &protocol.List{Query: "GEN"}),
		cat(hello),
		cat(hello, join, send, &protocol.Ping{Nonce: 1}, &protocol.Leave{Room: "general"}, &protocol.Bye{}),
		cat(hello, join, &protocol.Join{Room: "other", Name: "alice", Resume: true, After: 5}, send, send),
		cat(hello, join, &protocol.Join{Room: "general", Name: "bob"}),
		cat(hello, &protocol.Send{Room: "general", ID: "x", Text: "before join"}),
		cat(join),
		cat(hello, hello),
		cat(hello, &protocol.Welcome{}),
		cat(&protocol.Hello{Version: 7}),
		cat(hello, &protocol.Join{Room: "bad\troom", Name: "x"}, &protocol.Join{Room: "r", Name: ""}),
		append(cat(hello), 0, 0, 0, 9, 0x03, 1, 'g'),
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		{0x16, 0x03, 0x01, 0x00, 0xf0},
		{0, 0, 0, 0},
	}
}
