package protocol

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary frame bodies to the decoder. Whatever the
// input, Decode returns a message or a *DecodeError, never panics, and a
// decoded message survives encode→decode unchanged and re-encodes to the
// same bytes. The seeds hold every golden vector (every message type) and
// the hand-made edge cases of the inbox, moderation, acting-on-messages
// and files frames.
func FuzzDecode(f *testing.F) {
	for _, g := range goldenMessages {
		f.Add(Encode(g.msg)[LengthSize:])
	}
	for _, c := range inboxEdgeCases {
		f.Add(c.body)
	}
	for _, c := range modEdgeCases {
		f.Add(c.body)
	}
	for _, c := range messagesEdgeCases {
		f.Add(c.body)
	}
	for _, c := range filesEdgeCases {
		f.Add(c.body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(body)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error is %T, want *DecodeError", err)
			}
			return
		}
		frame := Encode(m)
		again, err := Decode(frame[LengthSize:])
		if err != nil {
			t.Fatalf("re-encoded %v does not decode: %v", m.Type(), err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip changed the message:\n%#v\n%#v", m, again)
		}
		// The re-encoding is canonical (appended bytes dropped, unknown
		// flag bits cleared, optional fields written): encoding it again
		// gives the same bytes.
		if twice := Encode(again); !bytes.Equal(twice, frame) {
			t.Fatalf("%v does not re-encode to itself:\n%x\n%x", m.Type(), frame, twice)
		}
	})
}

// FuzzReadFrame feeds arbitrary byte streams to the frame reader: it must
// never return a body above the limit nor allocate one.
func FuzzReadFrame(f *testing.F) {
	var stream []byte
	for _, g := range goldenMessages {
		stream = AppendFrame(stream, g.msg)
	}
	f.Add(stream, uint16(1024))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), uint16(512))
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		max := int(limit)
		r := bytes.NewReader(data)
		var buf []byte
		for {
			body, err := ReadFrame(r, max, buf)
			if err != nil {
				return
			}
			if len(body) > max || len(body) == 0 {
				t.Fatalf("body of %d bytes with limit %d", len(body), max)
			}
			if cap(body) > max && cap(body) > cap(buf) {
				t.Fatalf("allocated %d bytes with limit %d", cap(body), max)
			}
			buf = body
			_, _ = Decode(body)
		}
	})
}

// FuzzMessagesRoundTrip is the round-trip property of the frames of acting
// on messages from the other side: from values to bytes. The fuzzer
// chooses the generator's seed; Decode(Encode(m)) must be m.
func FuzzMessagesRoundTrip(f *testing.F) {
	f.Add(uint64(15), uint64(15))
	f.Add(uint64(0), uint64(1<<63))
	f.Fuzz(func(t *testing.T, seed1, seed2 uint64) {
		r := rand.New(rand.NewPCG(seed1, seed2))
		for range 20 {
			m := randomMessagesFrame(r)
			got, err := Decode(Encode(m)[LengthSize:])
			if err != nil {
				t.Fatalf("%#v: %v", m, err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip\n got %#v\nwant %#v", got, m)
			}
		}
	})
}
