package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Header is what a PROXY protocol header says
// (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt).
type Header struct {
	Version int // 1 (text) or 2 (binary)
	// Local is a version 2 LOCAL command: the proxy speaks for itself (a
	// health check), and the connection's own addresses stand.
	Local bool
	// Source and Dest are the client's address and the address it
	// connected to at the proxy. They are not valid (IsValid false) when
	// the header carries none: LOCAL, v1 UNKNOWN, v2 UNSPEC or a UNIX
	// socket; then the connection's own addresses stand, as the
	// specification says.
	Source, Dest netip.AddrPort
}

// v1MaxLen is the longest version 1 header, CRLF included (the spec's
// 107 bytes: "PROXY TCP6" and two full IPv6 addresses and ports).
const v1MaxLen = 107

// v2Sig opens every version 2 header.
var v2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// v1Prefix opens every version 1 header.
const v1Prefix = "PROXY "

// minHeader is the shortest header of either version ("PROXY UNKNOWN\r\n"
// is 15 bytes, a version 2 header's fixed part 16): reading this much
// never takes a byte of what follows the header.
const minHeader = 15

// ErrNoHeader is returned when the stream does not start with a PROXY
// protocol header at all.
var ErrNoHeader = errors.New("the connection did not start with a PROXY protocol header")

// HeaderError is a malformed PROXY protocol header.
type HeaderError struct {
	Version int
	Reason  string
}

func (e *HeaderError) Error() string {
	return fmt.Sprintf("malformed PROXY protocol v%d header: %s", e.Version, e.Reason)
}

// ReadHeader reads one PROXY protocol header (version 1 or 2) from r and
// nothing after it: what follows stays unread for the protocol it
// carries. r should be unbuffered (a connection) with a deadline set.
// A stream that ends inside the header returns io.ErrUnexpectedEOF (or
// io.EOF if it ended before any byte).
func ReadHeader(r io.Reader) (Header, error) {
	var start [minHeader]byte
	// The first byte tells a header from anything else at once, so a
	// peer that speaks another protocol is not kept waiting for more.
	if _, err := io.ReadFull(r, start[:1]); err != nil {
		return Header{}, err
	}
	if start[0] != v1Prefix[0] && start[0] != v2Sig[0] {
		return Header{}, ErrNoHeader
	}
	if n, err := io.ReadFull(r, start[1:]); err != nil {
		n++
		if !bytes.HasPrefix(v2Sig, start[:min(n, len(v2Sig))]) && !strings.HasPrefix(v1Prefix, string(start[:min(n, len(v1Prefix))])) {
			return Header{}, ErrNoHeader
		}
		return Header{}, io.ErrUnexpectedEOF
	}
	switch {
	case bytes.HasPrefix(start[:], v2Sig):
		return readV2(r, start[:])
	case string(start[:len(v1Prefix)]) == v1Prefix:
		return readV1(r, start[:])
	}
	return Header{}, ErrNoHeader
}

// readV1 reads the rest of a text header, one byte at a time so as not
// to read past its CRLF.
func readV1(r io.Reader, start []byte) (Header, error) {
	line := make([]byte, len(start), v1MaxLen)
	copy(line, start)
	var b [1]byte
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			return Header{}, &HeaderError{1, "a line feed without a carriage return before it"}
		}
		if len(line) == v1MaxLen {
			return Header{}, &HeaderError{1, fmt.Sprintf("no CRLF within %d bytes", v1MaxLen)}
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Header{}, io.ErrUnexpectedEOF
		}
		line = append(line, b[0])
	}
	return parseV1(string(line[len(v1Prefix) : len(line)-2]))
}

// parseV1 reads the fields after "PROXY " of a text header (CRLF removed).
func parseV1(s string) (Header, error) {
	bad := func(format string, a ...any) (Header, error) {
		return Header{}, &HeaderError{1, fmt.Sprintf(format, a...)}
	}
	if strings.ContainsAny(s, "\r\n") {
		return bad("a stray CR or LF")
	}
	if s == "UNKNOWN" || strings.HasPrefix(s, "UNKNOWN ") {
		// The rest, if any, must be ignored (the spec).
		return Header{Version: 1}, nil
	}
	f := strings.Split(s, " ")
	if len(f) != 5 {
		return bad("want PROTO SRC DST SRCPORT DSTPORT separated by single spaces, got %d fields", len(f))
	}
	var want6 bool
	switch f[0] {
	case "TCP4":
	case "TCP6":
		want6 = true
	default:
		return bad("unknown protocol %q (want TCP4, TCP6 or UNKNOWN)", f[0])
	}
	var addrs [2]netip.Addr
	for i, a := range f[1:3] {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.Zone() != "" || ip.Is6() != want6 {
			return bad("%q is not an %s address", a, f[0])
		}
		addrs[i] = ip
	}
	var ports [2]uint16
	for i, p := range f[3:5] {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || (len(p) > 1 && p[0] == '0') || p[0] == '+' {
			return bad("%q is not a port number", p)
		}
		ports[i] = uint16(n)
	}
	return Header{Version: 1, Source: netip.AddrPortFrom(addrs[0], ports[0]), Dest: netip.AddrPortFrom(addrs[1], ports[1])}, nil
}

// Version 2 commands, families and transports (the 13th and 14th bytes).
const (
	v2Local = 0x20
	v2Proxy = 0x21

	famUnspec      = 0x00
	famTCP4        = 0x11
	famUDP4        = 0x12
	famTCP6        = 0x21
	famUDP6        = 0x22
	famUnixStream  = 0x31
	famUnixDgram   = 0x32
	inetAddrsLen   = 12
	inet6AddrsLen  = 36
	unixAddrsLen   = 216
	v2FixedHdrSize = 16
)

// readV2 reads the rest of a binary header: start holds its first 15
// bytes. TLVs after the addresses are read and dropped: the server uses
// none of them, and the 16-bit length bounds them.
func readV2(r io.Reader, start []byte) (Header, error) {
	bad := func(format string, a ...any) (Header, error) {
		return Header{}, &HeaderError{2, fmt.Sprintf(format, a...)}
	}
	var last [1]byte
	if _, err := io.ReadFull(r, last[:]); err != nil {
		return Header{}, io.ErrUnexpectedEOF
	}
	verCmd, fam := start[12], start[13]
	length := int(binary.BigEndian.Uint16([]byte{start[14], last[0]}))
	if verCmd>>4 != 2 {
		return bad("version %d (want 2)", verCmd>>4)
	}
	if verCmd != v2Local && verCmd != v2Proxy {
		return bad("command %#x (want LOCAL or PROXY)", verCmd&0x0f)
	}
	h := Header{Version: 2, Local: verCmd == v2Local}
	need := 0
	switch fam {
	case famUnspec:
	case famTCP4, famUDP4:
		need = inetAddrsLen
	case famTCP6, famUDP6:
		need = inet6AddrsLen
	case famUnixStream, famUnixDgram:
		need = unixAddrsLen
	default:
		if !h.Local { // LOCAL ignores the family byte (the spec)
			return bad("address family and transport %#02x", fam)
		}
	}
	if h.Local || need == unixAddrsLen || need == 0 {
		// The connection's own addresses stand; the block is skipped.
		if h.Local || length >= need {
			return skipped(h, discard(r, length))
		}
	}
	if length < need {
		return bad("%d bytes of addresses, want at least %d for family %#02x", length, need, fam)
	}
	addrs := make([]byte, need)
	if _, err := io.ReadFull(r, addrs); err != nil {
		return Header{}, io.ErrUnexpectedEOF
	}
	n := need/2 - 2 // bytes in one address
	src, _ := netip.AddrFromSlice(addrs[:n])
	dst, _ := netip.AddrFromSlice(addrs[n : 2*n])
	h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(addrs[2*n:]))
	h.Dest = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(addrs[2*n+2:]))
	return skipped(h, discard(r, length-need))
}

// skipped is h once the rest of its block is skipped, or the error that
// stopped that (and no header).
func skipped(h Header, err error) (Header, error) {
	if err != nil {
		return Header{}, err
	}
	return h, nil
}

func discard(r io.Reader, n int) error {
	if n == 0 {
		return nil
	}
	if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
		return io.ErrUnexpectedEOF
	}
	return nil
}
