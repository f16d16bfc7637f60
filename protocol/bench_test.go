package protocol

// Benchmarks of the hot frames: what a server does per message (decode a
// SEND, encode an ACK and a MESSAGE once per broadcast) and what a client
// does per delivery (read and decode a MESSAGE). Run with
//
//	go test -run '^$' -bench . -benchmem ./protocol/

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// A typical chat message: 64 bytes of text, a 16-byte client id.
func benchMsg() *Msg {
	return &Msg{Room: "general", Seq: 123456, Time: 1767225600000, Sender: "alice",
		ID: "0123456789abcdef", Text: strings.Repeat("hello, world! ", 5)[:64]}
}

func benchSend() *Send {
	return &Send{Room: "general", ID: "0123456789abcdef", Text: strings.Repeat("hello, world! ", 5)[:64]}
}

func benchAck() *Ack {
	return &Ack{Room: "general", ID: "0123456789abcdef", Seq: 123456, Time: 1767225600000}
}

func BenchmarkEncode(b *testing.B) {
	for _, m := range []Message{benchMsg(), benchSend(), benchAck()} {
		b.Run(m.Type().String()+"/Append", func(b *testing.B) {
			// Into a reused buffer: what a writer that batches frames does.
			buf := make([]byte, 0, 256)
			b.SetBytes(int64(len(Encode(m))))
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendFrame(buf[:0], m)
			}
		})
		b.Run(m.Type().String()+"/New", func(b *testing.B) {
			// A new slice per frame: what Encode (and the hub, per broadcast) does.
			b.SetBytes(int64(len(Encode(m))))
			b.ReportAllocs()
			for b.Loop() {
				_ = Encode(m)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, m := range []Message{benchMsg(), benchSend(), benchAck()} {
		body := Encode(m)[LengthSize:]
		b.Run(m.Type().String(), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadFrame reads MESSAGE frames from a buffered stream with a
// reused body buffer, then decodes them: a client's receive path.
func BenchmarkReadFrame(b *testing.B) {
	frame := Encode(benchMsg())
	stream := bytes.Repeat(frame, 1024)
	for _, decode := range []bool{false, true} {
		name := "MESSAGE"
		if decode {
			name += "+Decode"
		}
		b.Run(name, func(b *testing.B) {
			r := bytes.NewReader(stream)
			br := bufio.NewReaderSize(r, 4096)
			var buf []byte
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				body, err := ReadFrame(br, MaxFrame, buf)
				if err == io.EOF {
					r.Reset(stream)
					br.Reset(r)
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				buf = body
				if decode {
					if _, err := Decode(body); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkMentionedKeys is what a server spends per message on finding
// the names it may mention: a typical text, and texts made to cost the
// most (every candidate non-ASCII, expanding under NFKC, or near the
// bounds of the rule).
func BenchmarkMentionedKeys(b *testing.B) {
	adversarial := func(unit string) string {
		return strings.Repeat("@"+strings.Repeat(unit, 70), 40)[:4096]
	}
	for _, c := range []struct{ name, text string }{
		{"typical", "hey @bob, did you see what @carol said about the release? @dave too"},
		{"words", adversarial("a ")},
		{"accents", adversarial("é.")},
		{"expanding", adversarial("ﷺ.")},
		{"katakana-squares", adversarial("㌀.")},
		{"fullwidth-at", adversarial("＠.")},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				MentionedKeys(c.text, DefaultMaxName)
			}
		})
	}
}
