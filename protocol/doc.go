// Package protocol is the wire format spoken between chat clients and the
// server: length-prefixed binary frames, a versioned handshake and a small
// set of messages. README.md in this directory is the normative
// specification; this package is its reference implementation.
//
// Every frame is
//
//	length  uint32, big endian: number of bytes that follow (type + payload)
//	type    1 byte
//	payload length-1 bytes, fields in a fixed order
//
// Integers in payloads are unsigned LEB128 varints in their shortest form;
// strings and byte strings are a varint length followed by the bytes.
// Decoders ignore bytes after the last field they know, so later protocol
// versions can append fields without breaking older peers.
package protocol
