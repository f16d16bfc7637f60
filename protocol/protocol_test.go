package protocol

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestRoundTripEveryMessage(t *testing.T) {
	for _, g := range goldenMessages {
		frame := Encode(g.msg)
		body, err := ReadFrame(bytes.NewReader(frame), MaxFrame, nil)
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		got, err := Decode(body)
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		if !reflect.DeepEqual(got, g.msg) {
			t.Errorf("%s: round trip\n got %#v\nwant %#v", g.name, got, g.msg)
		}
	}
}

// TestFramesAreBinarySafe is the bug the product started from: a '~' or a
// newline in a field must not split or glue messages.
func TestFramesAreBinarySafe(t *testing.T) {
	msgs := []Message{
		&Send{Room: "a~b", ID: "~\n", Text: "x~y\nz"},
		&Msg{Room: "r", Seq: 1, Sender: "al~ice", ID: "\x00\xff", Text: "\x00~\r\n🎉"},
		&Ping{Nonce: 1},
	}
	var stream []byte
	for _, m := range msgs {
		stream = AppendFrame(stream, m)
	}
	r := bytes.NewReader(stream)
	for i, want := range msgs {
		body, err := ReadFrame(r, MaxFrame, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(body)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("message %d: got %#v, %v", i, got, err)
		}
	}
	if _, err := ReadFrame(r, MaxFrame, nil); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestReadFrameLimits(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		max   int
		code  ErrorCode // 0: a non-protocol error is expected
		err   error
	}{
		{"over the limit", []byte{0, 0, 0x40, 0x01, 0x10}, 16384, CodeFrameTooLarge, nil},
		{"over the absolute maximum", []byte{0xff, 0xff, 0xff, 0xff}, 1 << 30, CodeFrameTooLarge, nil},
		{"zero length", []byte{0, 0, 0, 0}, 100, CodeMalformed, nil},
		{"HTTP request on the port", []byte("GET / HTTP/1.1\r\n"), 16384, CodeFrameTooLarge, nil},
		{"truncated header", []byte{0, 0}, 100, 0, ErrTruncated},
		{"truncated body", []byte{0, 0, 0, 5, 1, 2}, 100, 0, ErrTruncated},
		{"empty stream", nil, 100, 0, io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tc.input), tc.max, nil)
			var de *DecodeError
			switch {
			case tc.code != 0:
				if !errors.As(err, &de) || de.Code != tc.code {
					t.Fatalf("got %v, want code %v", err, tc.code)
				}
			case !errors.Is(err, tc.err):
				t.Fatalf("got %v, want %v", err, tc.err)
			}
		})
	}
}

// TestReadFrameDoesNotAllocateForLies checks the limit is applied before the
// buffer is made: a 4-byte header claiming a 1 MiB frame costs a few small
// allocations (the error value), not the claimed size.
func TestReadFrameDoesNotAllocateForLies(t *testing.T) {
	lie := []byte{0x00, 0x0f, 0xff, 0xff} // 1 MiB - 1: under MaxFrame, over the limit
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 100
	for range n {
		if _, err := ReadFrame(bytes.NewReader(lie), 1024, nil); err == nil {
			t.Fatal("oversized frame accepted")
		}
	}
	runtime.ReadMemStats(&after)
	if perCall := (after.TotalAlloc - before.TotalAlloc) / n; perCall > 1024 {
		t.Fatalf("%d bytes allocated per refused frame", perCall)
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := Encode(&Send{Room: "general", ID: "id", Text: "hello"})[LengthSize:]
	tests := []struct {
		name string
		body []byte
		code ErrorCode
	}{
		{"empty body", []byte{}, CodeMalformed},
		{"unknown type", []byte{0x7f, 1, 2}, CodeUnknownType},
		{"truncated send", valid[:len(valid)-2], CodeMalformed},
		{"string length past the end", []byte{byte(TypeLeave), 10, 'a'}, CodeMalformed},
		{"invalid UTF-8 text", append([]byte{byte(TypeSend), 1, 'r', 1, 'i', 2}, 0xff, 0xfe), CodeInvalidUTF8},
		{"invalid UTF-8 room", []byte{byte(TypeLeave), 2, 0xc3, 0x28}, CodeInvalidUTF8},
		{"varint overflow", append([]byte{byte(TypePing)}, bytes.Repeat([]byte{0xff}, 11)...), CodeMalformed},
		{"varint not shortest", []byte{byte(TypePing), 0x81, 0x00}, CodeMalformed},
		{"hello without magic", []byte{byte(TypeHello), 'H', 'T', 'T', 'P', 1}, CodeMalformed},
		{"forged member count", []byte{byte(TypeJoined), 1, 'r', 1, 'n', 0, 0, 1, 0xff, 0xff, 0x03}, CodeMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.body)
			var de *DecodeError
			if !errors.As(err, &de) || de.Code != tc.code {
				t.Fatalf("Decode = %#v, %v; want code %v", m, err, tc.code)
			}
			if !strings.Contains(de.Error(), tc.code.String()) {
				t.Errorf("error text %q does not name the code", de.Error())
			}
		})
	}
}

// TestDecodeIgnoresAppendedFields is the forward-compatibility rule: a
// newer peer may append fields, an older one reads what it knows.
func TestDecodeIgnoresAppendedFields(t *testing.T) {
	frame := Encode(&Ack{Room: "general", ID: "id", Seq: 9, Time: 10})
	body := append(frame[LengthSize:], 0x05, 'e', 'x', 't', 'r', 'a')
	m, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := (&Ack{Room: "general", ID: "id", Seq: 9, Time: 10}); !reflect.DeepEqual(m, want) {
		t.Fatalf("got %#v", m)
	}
}

func TestErrorCodes(t *testing.T) {
	for code, info := range codes {
		closing := code.DefaultFlags()&ErrorClosing != 0
		reconnect := code.DefaultFlags()&ErrorReconnect != 0
		switch code / 100 {
		case 1:
			if !closing || reconnect {
				t.Errorf("%v: protocol violations close and do not invite reconnects", code)
			}
		case 2:
			// Refusals keep the connection, except a wrong key: closing
			// makes every guess cost a new connection.
			if closing != (code == CodeUnauthorized) || reconnect {
				t.Errorf("%v: wrong flags for a refusal", code)
			}
		case 3:
			if !closing || !reconnect {
				t.Errorf("%v: server conditions close and invite a reconnect", code)
			}
		default:
			t.Errorf("%v: code outside the documented classes", code)
		}
		if info.name == "" || strings.ContainsAny(info.name, " _") {
			t.Errorf("%d: bad name %q", code, info.name)
		}
	}
	if got := ErrorCode(999).String(); got != "error-999" {
		t.Errorf("unknown code prints as %q", got)
	}
}

// TestPresenceUnknownKindIsKept: a PRESENCE change of a kind this version
// does not know (spec §3: receivers skip it but take count) decodes, with
// the changes around it intact, rather than failing the frame.
func TestPresenceUnknownKindIsKept(t *testing.T) {
	// room "r", count 3, 3 changes: joined a, kind 7 b, left c.
	body := []byte{byte(TypePresence), 1, 'r', 3, 3, 1, 1, 'a', 7, 1, 'b', 2, 1, 'c'}
	m, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	p := m.(*Presence)
	want := []PresenceChange{{PresenceJoined, "a"}, {7, "b"}, {PresenceLeft, "c"}}
	if p.Count != 3 || len(p.Changes) != 3 || p.Changes[0] != want[0] || p.Changes[1] != want[1] || p.Changes[2] != want[2] {
		t.Fatalf("decoded %+v", p)
	}
	if s := p.Changes[1].Kind.String(); s != "unknown" {
		t.Errorf("kind 7 is %q", s)
	}
}
