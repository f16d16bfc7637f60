package wire

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"chat/protocol"
)

func TestParseMessageMatchesProtocol(t *testing.T) {
	for _, m := range []*protocol.Msg{
		{Room: "general", Seq: 1, Time: 1767225600000, Sender: "alice", ID: "\x00\x01", Text: "hi"},
		{Room: "ünïcode", Seq: 1 << 40, Time: 0, Sender: "r00001", ID: strings.Repeat("i", 64), Text: strings.Repeat("x", 4096)},
	} {
		body := protocol.Encode(m)[protocol.LengthSize:]
		var got Message
		if err := ParseMessage(body, &got); err != nil {
			t.Fatal(err)
		}
		if string(got.Room) != m.Room || got.Seq != m.Seq || got.Time != m.Time || string(got.Sender) != m.Sender ||
			string(got.ID) != m.ID || string(got.Text) != m.Text {
			t.Errorf("ParseMessage = %+v, want %+v", got, m)
		}
		// Every truncation is an error, never a panic.
		for i := 1; i < len(body); i++ {
			if ParseMessage(body[:i], &got) == nil {
				t.Fatalf("truncated to %d bytes: no error", i)
			}
		}
	}
}

func TestParseAckMatchesProtocol(t *testing.T) {
	a := &protocol.Ack{Room: "general", ID: "0123456789abcdef", Seq: 300, Time: 1767225600000}
	body := protocol.Encode(a)[protocol.LengthSize:]
	var got Ack
	if err := ParseAck(body, &got); err != nil {
		t.Fatal(err)
	}
	if string(got.Room) != a.Room || string(got.ID) != a.ID || got.Seq != a.Seq || got.Time != a.Time {
		t.Errorf("ParseAck = %+v, want %+v", got, a)
	}
	if ParseAck(body[:3], &got) == nil {
		t.Error("truncated ACK: no error")
	}
}

func TestAppendSendDecodes(t *testing.T) {
	frame := AppendSend([]byte("prefix"), "room-1", []byte{0, 1, 2}, []byte("text ~ \x00"))
	body, err := protocol.ReadFrame(bytes.NewReader(frame[len("prefix"):]), protocol.MaxFrame, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := protocol.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	want := &protocol.Send{Room: "room-1", ID: "\x00\x01\x02", Text: "text ~ \x00"}
	if s, ok := m.(*protocol.Send); !ok || *s != *want {
		t.Errorf("decoded %#v, want %#v", m, want)
	}
}

func TestTextRoundTrip(t *testing.T) {
	now := time.Now().UnixNano()
	for _, size := range []int{0, MinTextSize, 40, 64, 1000} {
		for _, warm := range []bool{false, true} {
			text := AppendText(nil, now, warm, "s0001", 42, size)
			if len(text) != max(size, MinTextSize) {
				t.Errorf("size %d: text is %d bytes", size, len(text))
			}
			sent, w, ok := ParseText(text)
			if !ok || sent != now || w != warm {
				t.Errorf("ParseText(%q) = %d %v %v", text, sent, w, ok)
			}
		}
	}
	for _, bad := range []string{"", "hello", "12345678901234567890123", "123456789012345678x m"} {
		if _, _, ok := ParseText([]byte(bad)); ok {
			t.Errorf("ParseText(%q) ok", bad)
		}
	}
}

// TestReadFrame reads small frames in place and a frame larger than the
// read buffer through the spare buffer, in order.
func TestReadFrame(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := newConn(a, false, nil, 64)
	frames := []protocol.Message{
		&protocol.Ping{Nonce: 7},
		&protocol.Msg{Room: "r", Seq: 1, Sender: "s", ID: "i", Text: strings.Repeat("y", 500)},
		&protocol.Left{Room: "r"},
	}
	var stream []byte
	for _, m := range frames {
		stream = protocol.AppendFrame(stream, m)
	}
	go func() {
		_ = b.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = b.Write(stream)
	}()
	_ = a.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range frames {
		body, err := c.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if got := protocol.Encode(want)[protocol.LengthSize:]; !bytes.Equal(body, got) {
			t.Fatalf("read %x, want %x", body, got)
		}
	}
}

// TestDialRefusesQuickly checks Dial reports a closed port.
func TestDialRefusesQuickly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, addr, 1024); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
}
