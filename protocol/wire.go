package protocol

import (
	"encoding/binary"
	"unicode/utf8"
)

// appendBytes appends a varint length followed by the bytes of v.
func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendString appends a varint length followed by the bytes of s.
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// fieldReader decodes the fields of one payload. The first failure is kept
// in err and turns every later read into a no-op, so decoders can read all
// fields and check err once.
type fieldReader struct {
	b   []byte
	err *DecodeError
}

func (r *fieldReader) fail(code ErrorCode, what string) {
	if r.err == nil {
		r.err = &DecodeError{Code: code, Reason: what}
	}
	r.b = nil
}

// uvarint reads a varint in its shortest encoding of at most 10 bytes.
func (r *fieldReader) uvarint(field string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n == 0:
		r.fail(CodeMalformed, field+": truncated varint")
		return 0
	case n < 0:
		r.fail(CodeMalformed, field+": varint overflows 64 bits")
		return 0
	case n > 1 && r.b[n-1] == 0:
		// A trailing zero group means a longer-than-needed encoding. Only the
		// shortest form is valid, so every value has exactly one encoding and
		// decode(encode(x)) == x holds byte for byte.
		r.fail(CodeMalformed, field+": varint not in shortest form")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// optUvarint reads a varint field that a later protocol revision appended:
// a frame from an older peer ends before it, which reads as 0.
func (r *fieldReader) optUvarint(field string) uint64 {
	if r.err != nil || len(r.b) == 0 {
		return 0
	}
	return r.uvarint(field)
}

func (r *fieldReader) byte(field string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail(CodeMalformed, field+": truncated")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// raw reads a length-prefixed byte string and returns a slice of the input
// (no copy).
func (r *fieldReader) raw(field string) []byte {
	n := r.uvarint(field)
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(CodeMalformed, field+": length runs past the end of the frame")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// string reads a length-prefixed string that must be valid UTF-8.
func (r *fieldReader) string(field string) string {
	v := r.raw(field)
	if r.err != nil {
		return ""
	}
	if !utf8.Valid(v) {
		r.fail(CodeInvalidUTF8, field+": not valid UTF-8")
		return ""
	}
	return string(v)
}

// count reads a list length and checks that the rest of the frame could hold
// that many elements of at least minSize bytes each, so a forged count cannot
// make the decoder allocate more than the frame itself.
func (r *fieldReader) count(field string, minSize int) int {
	n := r.uvarint(field)
	if r.err != nil {
		return 0
	}
	if n > uint64(len(r.b)/minSize) {
		r.fail(CodeMalformed, field+": count larger than the frame can hold")
		return 0
	}
	return int(n)
}

// optRaw reads a byte string field that a later revision appended: a
// frame that ends before it reads as empty.
func (r *fieldReader) optRaw(field string) []byte {
	if r.err != nil || len(r.b) == 0 {
		return nil
	}
	return r.raw(field)
}

// optString is optRaw for a text field.
func (r *fieldReader) optString(field string) string {
	if r.err != nil || len(r.b) == 0 {
		return ""
	}
	return r.string(field)
}
