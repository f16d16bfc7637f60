package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

// The golden vectors' decoded values (testdata/golden/NAME.json) are
// checked against the hex by a decoder of their own, driven by the field
// tables below, which are the spec's tables (README.md section 3) written
// as data. It shares nothing with this package's encoder and decoder, so
// an encoder and a decoder wrong in the same way (two fields swapped, a
// field read as the wrong type) cannot both pass: the hex would no longer
// say what the JSON says. TestSpecTablesMatchDecoder reads the tables in
// README.md and checks that these are the same.

// fieldKind is how a field is encoded (README.md section 2).
type fieldKind string

const (
	kindMagic   fieldKind = "magic"            // 4 bytes "CHAT"
	kindUint    fieldKind = "uint"             // varint
	kindByte    fieldKind = "byte"             // one byte
	kindText    fieldKind = "text"             // varint length + UTF-8
	kindBytes   fieldKind = "bytes"            // varint length + bytes; JSON: hex
	kindTime    fieldKind = "time"             // varint, Unix milliseconds
	kindTexts   fieldKind = "n × text"         // the previous field (n) many texts
	kindChanges fieldKind = "n × (byte, text)" // the previous field (n) many (kind, name)
	kindRecords fieldKind = "n × (…)"          // the previous field (n) many records (specRecords); JSON: objects
)

type specField struct {
	name string
	kind fieldKind
}

// specRecords are the fields of one record of the record lists
// (kindRecords), by message type and list field.
var specRecords = map[byte]map[string][]specField{
	0x88: {"dms": {{"room", kindText}, {"head", kindUint}, {"time", kindTime}, {"read", kindUint}}},
	0x89: {"messages": {{"seq", kindUint}, {"time", kindTime}, {"sender", kindText}, {"id", kindBytes}, {"text", kindText}}},
	0x8a: {"rooms": {{"room", kindText}, {"members", kindUint}, {"head", kindUint}, {"time", kindTime}}},
}

// encoding is the "encoding" a field of message type typ has in the JSON:
// a record list spells out its record's fields, "n × (seq: uint, …)".
func encoding(typ byte, f specField) fieldKind {
	if f.kind != kindRecords {
		return f.kind
	}
	var parts []string
	for _, e := range specRecords[typ][f.name] {
		parts = append(parts, e.name+": "+string(e.kind))
	}
	return fieldKind("n × (" + strings.Join(parts, ", ") + ")")
}

// specFields are the spec's message tables, field for field, in order.
var specFields = map[byte][]specField{
	0x01: {{"magic", kindMagic}, {"version", kindUint}, {"client", kindText}},
	0x02: {{"room", kindText}, {"name", kindText}, {"flags", kindByte}, {"after", kindUint},
		{"key", kindBytes}, {"secret", kindBytes}, {"epoch", kindUint}, {"invite", kindBytes}},
	0x03: {{"room", kindText}, {"id", kindBytes}, {"text", kindText}},
	0x04: {{"room", kindText}},
	0x05: {},
	0x06: {{"name", kindText}, {"secret", kindBytes}, {"key", kindBytes}},
	0x07: {{"room", kindText}, {"before", kindUint}, {"limit", kindUint}},
	0x08: {{"room", kindText}, {"seq", kindUint}},
	0x09: {{"query", kindText}},
	0x0a: {{"room", kindText}, {"action", kindByte}, {"target", kindText}, {"seq", kindUint},
		{"seconds", kindUint}, {"text", kindText}},
	0x10: {{"nonce", kindUint}},
	0x11: {{"nonce", kindUint}},
	0x81: {{"version", kindUint}, {"server", kindText}, {"time", kindTime}, {"max frame", kindUint},
		{"max text", kindUint}, {"max name", kindUint}, {"max room", kindUint}, {"max rooms", kindUint},
		{"history", kindUint}, {"ping", kindUint}, {"flags", kindUint},
		{"send interval", kindUint}, {"send burst", kindUint}, {"flood after", kindUint},
		{"retry after", kindUint}, {"queue frames", kindUint}, {"max listed", kindUint},
		{"presence batch above", kindUint}, {"idle timeout", kindUint}},
	0x82: {{"room", kindText}, {"name", kindText}, {"after", kindUint}, {"head", kindUint},
		{"count", kindUint}, {"n", kindUint}, {"names", kindTexts}, {"epoch", kindUint},
		{"read", kindUint}, {"mentions", kindUint}, {"topic", kindText}, {"modes", kindUint}},
	0x83: {{"room", kindText}, {"id", kindBytes}, {"seq", kindUint}, {"time", kindTime}},
	0x84: {{"room", kindText}, {"seq", kindUint}, {"time", kindTime}, {"sender", kindText},
		{"id", kindBytes}, {"text", kindText}},
	0x85: {{"room", kindText}, {"count", kindUint}, {"n", kindUint}, {"changes", kindChanges}},
	0x86: {{"room", kindText}},
	0x87: {{"code", kindUint}, {"flags", kindByte}, {"room", kindText}, {"text", kindText}},
	0x88: {{"name", kindText}, {"n", kindUint}, {"dms", kindRecords}},
	0x89: {{"room", kindText}, {"before", kindUint}, {"flags", kindByte}, {"n", kindUint}, {"messages", kindRecords}},
	0x8a: {{"query", kindText}, {"n", kindUint}, {"rooms", kindRecords}},
	0x8b: {{"room", kindText}, {"seq", kindUint}},
	0x8c: {{"kind", kindByte}, {"room", kindText}, {"seq", kindUint}, {"time", kindTime},
		{"sender", kindText}, {"id", kindBytes}, {"text", kindText}},
	0x8d: {{"room", kindText}, {"action", kindByte}, {"target", kindText}, {"text", kindText}},
	0x8e: {{"room", kindText}, {"action", kindByte}, {"actor", kindText}, {"target", kindText},
		{"seq", kindUint}, {"until", kindTime}, {"text", kindText}},
}

// goldenDoc is a vector's JSON file: the frame's decoded values.
type goldenDoc struct {
	Frame  string        `json:"frame"`  // message name
	Type   string        `json:"type"`   // type byte, "0x81"
	Length int           `json:"length"` // the length prefix: type + payload bytes
	Fields []goldenField `json:"fields"` // in wire order
	Note   string        `json:"note,omitempty"`
}

// goldenField is one decoded field. Value is a number (uint, byte, time),
// a string (text; bytes as lowercase hex), a list of strings (n × text),
// of {"kind", "name"} (PRESENCE changes) or of objects with a record's
// fields by name (the record lists of IDENTIFIED, PAGE and ROOMS).
type goldenField struct {
	Name  string    `json:"name"`
	Kind  fieldKind `json:"encoding"`
	Value any       `json:"value"`
}

// goldenChange is one PRESENCE change in a goldenField.
type goldenChange struct {
	Kind uint64 `json:"kind"`
	Name string `json:"name"`
}

// decodeBySpec decodes a whole frame (length prefix first) with the spec
// tables alone.
func decodeBySpec(frame []byte) (*goldenDoc, error) {
	if len(frame) < 5 {
		return nil, fmt.Errorf("%d bytes: shorter than a frame", len(frame))
	}
	n := binary.BigEndian.Uint32(frame)
	if int(n) != len(frame)-4 {
		return nil, fmt.Errorf("length prefix %d, but %d bytes follow it", n, len(frame)-4)
	}
	typ := frame[4]
	fields, ok := specFields[typ]
	if !ok {
		return nil, fmt.Errorf("type 0x%02x is not in the spec", typ)
	}
	d := &goldenDoc{Frame: typeNames[Type(typ)], Type: fmt.Sprintf("0x%02x", typ), Length: int(n)}
	b := frame[5:]
	var err error
	fail := func(format string, args ...any) {
		if err == nil {
			err = fmt.Errorf(format, args...)
		}
	}
	uvarint := func(what string) uint64 {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			fail("%s: bad varint", what)
			return 0
		}
		if k > 1 && b[k-1] == 0 {
			fail("%s: varint not in its shortest form", what)
		}
		b = b[k:]
		return v
	}
	raw := func(what string) []byte {
		l := uvarint(what + " length")
		if err != nil || l > uint64(len(b)) {
			fail("%s: length %d beyond the frame", what, l)
			return nil
		}
		v := b[:l]
		b = b[l:]
		return v
	}
	text := func(what string) string {
		v := raw(what)
		if !utf8.Valid(v) {
			fail("%s: not UTF-8", what)
		}
		return string(v)
	}
	one := func(what string) byte {
		if len(b) == 0 {
			fail("%s: missing", what)
			return 0
		}
		v := b[0]
		b = b[1:]
		return v
	}
	scalar := func(f specField) any {
		switch f.kind {
		case kindUint, kindTime:
			return uvarint(f.name)
		case kindByte:
			return uint64(one(f.name))
		case kindText:
			return text(f.name)
		case kindBytes:
			return hex.EncodeToString(raw(f.name))
		}
		panic("not a scalar field kind: " + f.kind)
	}
	var count uint64 // the last uint, for the lists that follow their n
	for _, f := range fields {
		var v any
		switch f.kind {
		case kindMagic:
			if len(b) < 4 || string(b[:4]) != "CHAT" {
				fail("no magic")
				return nil, err
			}
			v, b = string(b[:4]), b[4:]
		case kindUint, kindTime:
			count = uvarint(f.name)
			v = count
		case kindByte, kindText, kindBytes:
			v = scalar(f)
		case kindRecords:
			list := []map[string]any{}
			for i := uint64(0); i < count && err == nil; i++ {
				rec := map[string]any{}
				for _, e := range specRecords[typ][f.name] {
					rec[e.name] = scalar(e)
				}
				list = append(list, rec)
			}
			v = list
		case kindTexts:
			list := []string{}
			for range count {
				list = append(list, text(f.name))
			}
			v = list
		case kindChanges:
			list := []goldenChange{}
			for range count {
				k := one("kind")
				list = append(list, goldenChange{Kind: uint64(k), Name: text("name")})
			}
			v = list
		}
		if err != nil {
			return nil, err
		}
		d.Fields = append(d.Fields, goldenField{Name: f.name, Kind: encoding(typ, f), Value: v})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d bytes after the last field", len(b))
	}
	return d, nil
}

// specValues lists m's values in the order of specFields, by hand from
// the struct fields, so that -update writes what the Go value says, not
// what the encoder made of it.
func specValues(m Message) []any {
	u := func(v uint64) any { return v }
	x := func(s string) any { return hex.EncodeToString([]byte(s)) }
	switch m := m.(type) {
	case *Hello:
		return []any{"CHAT", u(m.Version), m.Client}
	case *Join:
		var flags uint64
		if m.Resume {
			flags = 1
		}
		return []any{m.Room, m.Name, flags, u(m.After), x(m.Key), x(m.Secret), u(m.Epoch), x(m.Invite)}
	case *Send:
		return []any{m.Room, x(m.ID), m.Text}
	case *Leave:
		return []any{m.Room}
	case *Bye:
		return nil
	case *Ping:
		return []any{u(m.Nonce)}
	case *Pong:
		return []any{u(m.Nonce)}
	case *Welcome:
		l := m.Limits
		return []any{u(m.Version), m.Server, u(m.Time), u(m.MaxFrame), u(m.MaxText), u(m.MaxName),
			u(m.MaxRoom), u(m.MaxRooms), u(m.History), u(m.PingMs), u(uint64(m.Flags)),
			u(l.SendIntervalMs), u(l.SendBurst), u(l.FloodAfterMs), u(l.RetryAfterMs),
			u(l.QueueFrames), u(l.MaxListed), u(l.PresenceBatchAbove), u(l.IdleTimeoutMs)}
	case *Joined:
		names := append([]string{}, m.Members...)
		return []any{m.Room, m.Name, u(m.After), u(m.Head), u(m.Count), u(uint64(len(names))), names, u(m.Epoch),
			u(m.Read), u(m.Mentions), m.Topic, u(uint64(m.Modes))}
	case *Ack:
		return []any{m.Room, x(m.ID), u(m.Seq), u(m.Time)}
	case *Msg:
		return []any{m.Room, u(m.Seq), u(m.Time), m.Sender, x(m.ID), m.Text}
	case *Presence:
		changes := []goldenChange{}
		for _, c := range m.Changes {
			changes = append(changes, goldenChange{Kind: uint64(c.Kind), Name: c.Name})
		}
		return []any{m.Room, u(m.Count), u(uint64(len(changes))), changes}
	case *Left:
		return []any{m.Room}
	case *Error:
		return []any{u(uint64(m.Code)), u(uint64(m.Flags)), m.Room, m.Text}
	case *Identify:
		return []any{m.Name, x(m.Secret), x(m.Key)}
	case *History:
		return []any{m.Room, u(m.Before), u(m.Limit)}
	case *Read:
		return []any{m.Room, u(m.Seq)}
	case *List:
		return []any{m.Query}
	case *Identified:
		dms := []map[string]any{}
		for _, d := range m.DMs {
			dms = append(dms, map[string]any{"room": d.Room, "head": u(d.Head), "time": u(d.Time), "read": u(d.Read)})
		}
		return []any{m.Name, u(uint64(len(dms))), dms}
	case *Page:
		var flags uint64
		if m.First {
			flags = 1
		}
		msgs := []map[string]any{}
		for _, x := range m.Messages {
			msgs = append(msgs, map[string]any{"seq": u(x.Seq), "time": u(x.Time), "sender": x.Sender,
				"id": hex.EncodeToString([]byte(x.ID)), "text": x.Text})
		}
		return []any{m.Room, u(m.Before), flags, u(uint64(len(msgs))), msgs}
	case *Rooms:
		rooms := []map[string]any{}
		for _, r := range m.Rooms {
			rooms = append(rooms, map[string]any{"room": r.Room, "members": u(r.Members), "head": u(r.Head), "time": u(r.Time)})
		}
		return []any{m.Query, u(uint64(len(rooms))), rooms}
	case *Marker:
		return []any{m.Room, u(m.Seq)}
	case *Moderate:
		return []any{m.Room, u(uint64(m.Action)), m.Target, u(m.Seq), u(m.Seconds), m.Text}
	case *Moderated:
		return []any{m.Room, u(uint64(m.Action)), m.Target, m.Text}
	case *ModEvent:
		return []any{m.Room, u(uint64(m.Action)), m.Actor, m.Target, u(m.Seq), u(m.Until), m.Text}
	case *Notice:
		g := &m.Msg
		return []any{u(uint64(m.Kind)), g.Room, u(g.Seq), u(g.Time), g.Sender, x(g.ID), g.Text}
	}
	panic(fmt.Sprintf("no spec values for %T", m))
}

// goldenDocOf is the JSON for m, from its Go values; length from the
// vector's hex, which the test checks separately.
func goldenDocOf(m Message, length int, note string) *goldenDoc {
	typ := byte(m.Type())
	d := &goldenDoc{Frame: typeNames[m.Type()], Type: fmt.Sprintf("0x%02x", typ), Length: length, Note: note}
	values := specValues(m)
	if len(values) != len(specFields[typ]) {
		panic(fmt.Sprintf("%v: %d values for %d fields", m.Type(), len(values), len(specFields[typ])))
	}
	for i, f := range specFields[typ] {
		d.Fields = append(d.Fields, goldenField{Name: f.name, Kind: encoding(typ, f), Value: values[i]})
	}
	return d
}

func marshalGolden(d *goldenDoc) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// readGolden reads a vector's JSON, numbers kept exact.
func readGolden(path string) (*goldenDoc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var d goldenDoc
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &d, nil
}

// canonical makes a value comparable whatever its Go type: its JSON.
func canonical(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var x any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	_ = dec.Decode(&x)
	b, _ = json.Marshal(x)
	return string(b)
}
