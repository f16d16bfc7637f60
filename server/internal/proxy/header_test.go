package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// v2 builds a version 2 header: verCmd, fam, then body as the address
// block (its length written in the header).
func v2(verCmd, fam byte, body []byte) []byte {
	b := append([]byte{}, v2Sig...)
	b = append(b, verCmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

func inet4(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

func inet6(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

// after is what follows every header in these tests: the first bytes of
// the protocol the connection carries, which ReadHeader must leave.
const after = "\x00\x00\x00\x05HELLO"

func TestReadHeader(t *testing.T) {
	tlv := []byte{0x04, 0x00, 0x03, 'a', 'b', 'c'} // PP2_TYPE_NOOP with 3 bytes
	for _, tc := range []struct {
		name     string
		in       []byte
		src, dst string // "" for none
		version  int
		local    bool
	}{
		{"v1 TCP4", []byte("PROXY TCP4 192.0.2.7 198.51.100.1 56324 7878\r\n"), "192.0.2.7:56324", "198.51.100.1:7878", 1, false},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 65535 443\r\n"), "[2001:db8::7]:65535", "[2001:db8::1]:443", 1, false},
		{"v1 longest", []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
			"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", 1, false},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), "", "", 1, false},
		{"v1 UNKNOWN with addresses ignored", []byte("PROXY UNKNOWN ::1 ::1 1 2\r\n"), "", "", 1, false},
		{"v2 TCP4", v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 56324, 7878)), "192.0.2.7:56324", "198.51.100.1:7878", 2, false},
		{"v2 TCP6", v2(0x21, 0x21, inet6("2001:db8::7", "2001:db8::1", 1, 2)), "[2001:db8::7]:1", "[2001:db8::1]:2", 2, false},
		{"v2 TCP4 with TLVs", v2(0x21, 0x11, append(inet4("192.0.2.7", "198.51.100.1", 1, 2), tlv...)), "192.0.2.7:1", "198.51.100.1:2", 2, false},
		{"v2 UDP4", v2(0x21, 0x12, inet4("192.0.2.7", "198.51.100.1", 1, 2)), "192.0.2.7:1", "198.51.100.1:2", 2, false},
		{"v2 LOCAL", v2(0x20, 0x00, nil), "", "", 2, true},
		// LOCAL: the family and the block are ignored, whatever they say.
		{"v2 LOCAL with an address block", v2(0x20, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 2)), "", "", 2, true},
		{"v2 LOCAL with a family it ignores", v2(0x20, 0x77, tlv), "", "", 2, true},
		{"v2 UNSPEC", v2(0x21, 0x00, nil), "", "", 2, false},
		{"v2 UNSPEC with TLVs", v2(0x21, 0x00, tlv), "", "", 2, false},
		{"v2 UNIX", v2(0x21, 0x31, make([]byte, 216)), "", "", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bytes.NewReader(append(tc.in, after...))
			h, err := ReadHeader(r)
			if err != nil {
				t.Fatal(err)
			}
			if h.Version != tc.version || h.Local != tc.local {
				t.Errorf("version %d local %v, want %d %v", h.Version, h.Local, tc.version, tc.local)
			}
			check := func(what string, got netip.AddrPort, want string) {
				if want == "" && got.IsValid() {
					t.Errorf("%s %v, want none (the connection's own address stands)", what, got)
				}
				if want != "" && got.String() != want {
					t.Errorf("%s %v, want %s", what, got, want)
				}
			}
			check("source", h.Source, tc.src)
			check("dest", h.Dest, tc.dst)
			if rest, _ := io.ReadAll(r); string(rest) != after {
				t.Errorf("left %q unread, want %q: the header reader must stop at the header's end", rest, after)
			}
		})
	}
}

func TestReadHeaderRefuses(t *testing.T) {
	long := "PROXY TCP4 " + strings.Repeat("1", 100) + "\r\n"
	for _, tc := range []struct {
		name string
		in   []byte
		want error // ErrNoHeader, io.EOF, io.ErrUnexpectedEOF, or nil for any *HeaderError
	}{
		{"empty", nil, io.EOF},
		{"the chat protocol itself", []byte(after + "xxxxxxxxxxxxxxxx"), ErrNoHeader},
		{"a TLS ClientHello", []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03abcdefgh"), ErrNoHeader},
		{"short and not a header", []byte("GET /"), ErrNoHeader},
		{"lower-case proxy", []byte("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrNoHeader},
		{"v1 truncated", []byte("PROXY TCP4 192.0.2.7 198.51"), io.ErrUnexpectedEOF},
		{"v1 truncated in the prefix", []byte("PROX"), io.ErrUnexpectedEOF},
		{"v1 oversized", []byte(long), nil},
		{"v1 no CR", []byte("PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n"), nil},
		{"v1 double space", []byte("PROXY TCP4  192.0.2.7 198.51.100.1 1 2\r\n"), nil},
		{"v1 too few fields", []byte("PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n"), nil},
		{"v1 too many fields", []byte("PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3\r\n"), nil},
		{"v1 IPv6 in TCP4", []byte("PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n"), nil},
		{"v1 IPv4 in TCP6", []byte("PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n"), nil},
		{"v1 octet with leading zero", []byte("PROXY TCP4 192.0.2.07 198.51.100.1 1 2\r\n"), nil},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 2001:db8::1 1 2\r\n"), nil},
		{"v1 port too big", []byte("PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n"), nil},
		{"v1 port with leading zero", []byte("PROXY TCP4 192.0.2.7 198.51.100.1 01 2\r\n"), nil},
		{"v1 port with sign", []byte("PROXY TCP4 192.0.2.7 198.51.100.1 +1 2\r\n"), nil},
		{"v1 unknown protocol", []byte("PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n"), nil},
		{"v2 truncated in the fixed part", v2(0x21, 0x11, nil)[:14], io.ErrUnexpectedEOF},
		{"v2 truncated in the addresses", v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 2))[:20], io.ErrUnexpectedEOF},
		{"v2 truncated in the TLVs", v2(0x21, 0x00, make([]byte, 100))[:50], io.ErrUnexpectedEOF},
		{"v2 TCP4 truncated in the TLVs", v2(0x21, 0x11, append(inet4("192.0.2.7", "198.51.100.1", 1, 2), make([]byte, 20)...))[:30], io.ErrUnexpectedEOF},
		{"v2 version 1", v2(0x11, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 2)), nil},
		{"v2 command 2", v2(0x22, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 2)), nil},
		{"v2 unknown family", v2(0x21, 0x41, inet4("192.0.2.7", "198.51.100.1", 1, 2)), nil},
		{"v2 INET with unspecified transport", v2(0x21, 0x10, inet4("192.0.2.7", "198.51.100.1", 1, 2)), nil},
		{"v2 TCP4 block too short", v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 2)[:11]), nil},
		{"v2 TCP6 with an IPv4 block", v2(0x21, 0x21, inet4("192.0.2.7", "198.51.100.1", 1, 2)), nil},
		{"v2 UNIX block too short", v2(0x21, 0x31, make([]byte, 100)), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadHeader(bytes.NewReader(tc.in))
			if err == nil {
				t.Fatalf("read %+v, want an error", h)
			}
			var he *HeaderError
			switch {
			case tc.want == nil && !errors.As(err, &he):
				t.Errorf("error %v, want a *HeaderError", err)
			case tc.want != nil && err != tc.want:
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if h.Source.IsValid() {
				t.Errorf("an address %v came with the error", h.Source)
			}
		})
	}
}

// TestReadHeaderOversizedV1ReadsNoMore shows a header without its CRLF is
// given up at 107 bytes, not read on without end.
func TestReadHeaderOversizedV1ReadsNoMore(t *testing.T) {
	in := "PROXY TCP4 " + strings.Repeat("9", 1000)
	r := strings.NewReader(in)
	_, err := ReadHeader(r)
	var he *HeaderError
	if !errors.As(err, &he) || !strings.Contains(err.Error(), "107") {
		t.Fatalf("error %v, want a malformed header with no CRLF within 107 bytes", err)
	}
	if read := len(in) - r.Len(); read != v1MaxLen {
		t.Errorf("read %d bytes, want %d", read, v1MaxLen)
	}
}

// FuzzReadHeader: any input gives a header or an error, never a panic;
// never reads past a header it returns; an address comes only with a
// header that has one, and a v1 header re-parses from its own text.
func FuzzReadHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 198.51.100.1 56324 7878\r\nrest"))
	f.Add([]byte("PROXY TCP6 2001:db8::7 2001:db8::1 65535 443\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("PROXY TCP4 " + strings.Repeat("1", 100) + "\r\n"))
	f.Add(v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 2)))
	f.Add(v2(0x21, 0x21, inet6("2001:db8::7", "2001:db8::1", 1, 2)))
	f.Add(v2(0x20, 0x00, nil))
	f.Add(v2(0x21, 0x31, make([]byte, 216)))
	f.Add(v2(0x21, 0x11, append(inet4("1.2.3.4", "5.6.7.8", 1, 2), 1, 0, 1, 'x')))
	f.Add([]byte(after))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := ReadHeader(r)
		if err != nil {
			if h.Source.IsValid() {
				t.Fatalf("an address with error %v", err)
			}
			return
		}
		consumed := in[:len(in)-r.Len()]
		switch h.Version {
		case 1:
			if len(consumed) > v1MaxLen || !bytes.HasSuffix(consumed, []byte("\r\n")) || bytes.Count(consumed, []byte("\n")) != 1 {
				t.Fatalf("v1 header %q read past its CRLF or beyond 107 bytes", consumed)
			}
			if h.Source.IsValid() {
				again, err := parseV1(string(consumed[len(v1Prefix) : len(consumed)-2]))
				if err != nil || again != h {
					t.Fatalf("%q: %+v, then %+v %v", consumed, h, again, err)
				}
			}
		case 2:
			if len(consumed) < v2FixedHdrSize || int(binary.BigEndian.Uint16(consumed[14:16])) != len(consumed)-v2FixedHdrSize {
				t.Fatalf("v2 header: read %d bytes, its length says %d", len(consumed), len(consumed)-v2FixedHdrSize)
			}
			if h.Local && h.Source.IsValid() {
				t.Fatal("LOCAL with an address")
			}
		default:
			t.Fatalf("version %d", h.Version)
		}
	})
}
