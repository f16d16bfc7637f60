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
	kindRecord  fieldKind = "(…)"              // one record (specRecords); JSON: an object
)

type specField struct {
	name string
	kind fieldKind
	// opt: a field a later revision appended that a sender may leave out:
	// the frame may end before it, and then it and every field after it
	// are absent (README.md section 3 says which).
	opt bool
	// ifFlag, when set, is the earlier field of the frame (a byte or uint
	// of flags) whose bits ifBit say whether this field is present: all
	// of them must be set.
	ifFlag string
	ifBit  uint64
	// count names the field before a record list that counts its
	// records, when it is not "n" (kindRecords).
	count string
}

// The records that several frames share: a message after its room
// (MESSAGE, NOTICE, PAGE's full records, UPDATE's state) and one emoji's
// reactions.
var (
	reactionRecord = []specField{{name: "emoji", kind: kindText}, {name: "count", kind: kindUint},
		{name: "n", kind: kindUint}, {name: "names", kind: kindTexts}}
	msgBase = []specField{{name: "seq", kind: kindUint}, {name: "time", kind: kindTime},
		{name: "sender", kind: kindText}, {name: "id", kind: kindBytes}, {name: "text", kind: kindText}}
	// msgExtra are MESSAGE's appended fields: reply, edited, reactions.
	msgExtra = []specField{{name: "reply", kind: kindUint}, {name: "edited", kind: kindTime},
		{name: "n", kind: kindUint}, {name: "reactions", kind: kindRecords}}
	// fileRecord is a file as a message and UPLOADED carry it (README.md
	// section 3, "The file record"); fileFields are the count (0 or 1)
	// and the list of it.
	fileRecord = []specField{{name: "id", kind: kindText}, {name: "name", kind: kindText}, {name: "type", kind: kindText},
		{name: "size", kind: kindUint}, {name: "width", kind: kindUint}, {name: "height", kind: kindUint},
		{name: "thumb", kind: kindText}, {name: "thumb width", kind: kindUint}, {name: "thumb height", kind: kindUint}}
	fileFields = []specField{{name: "files", kind: kindUint}, {name: "file", kind: kindRecords, count: "files"}}
)

// fields joins field lists into a new one.
func fields(lists ...[]specField) []specField {
	var all []specField
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

// optional is fs with its first field marked opt: a frame may end before fs.
func optional(fs []specField) []specField {
	fs = fields(fs)
	fs[0].opt = true
	return fs
}

// ifFlag is fs, each field present only when the bits of the frame's
// field flag are all set.
func ifFlag(flag string, bit uint64, fs []specField) []specField {
	fs = fields(fs)
	for i := range fs {
		fs[i].ifFlag, fs[i].ifBit = flag, bit
	}
	return fs
}

// specRecords are the fields of the records (kindRecords, kindRecord), by
// message type and field name.
var specRecords = map[byte]map[string][]specField{
	0x84: {"reactions": reactionRecord, "file": fileRecord},
	0x88: {"dms": {{name: "room", kind: kindText}, {name: "head", kind: kindUint}, {name: "time", kind: kindTime}, {name: "read", kind: kindUint}}},
	0x89: {"messages": fields(msgBase, ifFlag("flags", 2, msgExtra), ifFlag("flags", 2|4, fileFields)),
		"reactions": reactionRecord, "file": fileRecord},
	0x8a: {"rooms": {{name: "room", kind: kindText}, {name: "members", kind: kindUint}, {name: "head", kind: kindUint}, {name: "time", kind: kindTime}}},
	0x8c: {"reactions": reactionRecord, "file": fileRecord},
	0x8f: {"state": fields(msgBase, msgExtra, ifFlag("flags", 1|2, fileFields)), "reactions": reactionRecord, "file": fileRecord},
	0x92: {"file": fileRecord},
	0x91: {"hits": {{name: "room", kind: kindText}, {name: "seq", kind: kindUint}, {name: "time", kind: kindTime},
		{name: "sender", kind: kindText}, {name: "text", kind: kindText}, {name: "n", kind: kindUint}, {name: "matches", kind: kindRecords}},
		"matches": {{name: "start", kind: kindUint}, {name: "end", kind: kindUint}}},
}

// encoding is the "encoding" a field of message type typ has in the JSON
// and the spec's tables: a record spells out its fields, "(seq: uint, …)",
// a record list "n × (seq: uint, …)", records in records alike.
func encoding(typ byte, f specField) fieldKind {
	if f.kind != kindRecords && f.kind != kindRecord {
		return f.kind
	}
	var parts []string
	for _, e := range specRecords[typ][f.name] {
		parts = append(parts, e.name+": "+string(encoding(typ, e)))
	}
	rec := "(" + strings.Join(parts, ", ") + ")"
	if f.kind == kindRecords {
		count := f.count
		if count == "" {
			count = "n"
		}
		rec = count + " × " + rec
	}
	return fieldKind(rec)
}

// specFields are the spec's message tables, field for field, in order.
var specFields = map[byte][]specField{
	0x01: {{name: "magic", kind: kindMagic}, {name: "version", kind: kindUint}, {name: "client", kind: kindText}},
	0x02: {{name: "room", kind: kindText}, {name: "name", kind: kindText}, {name: "flags", kind: kindByte}, {name: "after", kind: kindUint},
		{name: "key", kind: kindBytes}, {name: "secret", kind: kindBytes}, {name: "epoch", kind: kindUint}, {name: "invite", kind: kindBytes}},
	0x03: {{name: "room", kind: kindText}, {name: "id", kind: kindBytes}, {name: "text", kind: kindText},
		{name: "reply", kind: kindUint, opt: true}, {name: "file", kind: kindText, opt: true}},
	0x04: {{name: "room", kind: kindText}},
	0x05: {},
	0x06: {{name: "name", kind: kindText}, {name: "secret", kind: kindBytes}, {name: "key", kind: kindBytes}},
	0x07: {{name: "room", kind: kindText}, {name: "before", kind: kindUint}, {name: "limit", kind: kindUint},
		{name: "flags", kind: kindUint, opt: true}},
	0x08: {{name: "room", kind: kindText}, {name: "seq", kind: kindUint}},
	0x09: {{name: "query", kind: kindText}},
	0x0a: {{name: "room", kind: kindText}, {name: "action", kind: kindByte}, {name: "target", kind: kindText}, {name: "seq", kind: kindUint},
		{name: "seconds", kind: kindUint}, {name: "text", kind: kindText}},
	0x0b: {{name: "room", kind: kindText}, {name: "kind", kind: kindByte}, {name: "target", kind: kindUint},
		{name: "id", kind: kindBytes}, {name: "text", kind: kindText}},
	0x0c: {{name: "room", kind: kindText}, {name: "flags", kind: kindByte}},
	0x0d: {{name: "query", kind: kindText}, {name: "room", kind: kindText}, {name: "before", kind: kindTime},
		{name: "limit", kind: kindUint}},
	0x0e: {{name: "room", kind: kindText}, {name: "id", kind: kindBytes}, {name: "name", kind: kindText},
		{name: "size", kind: kindUint}, {name: "offset", kind: kindUint}, {name: "data", kind: kindBytes}},
	0x0f: {{name: "room", kind: kindText}, {name: "file", kind: kindText}, {name: "offset", kind: kindUint},
		{name: "length", kind: kindUint}},
	0x10: {{name: "nonce", kind: kindUint}},
	0x11: {{name: "nonce", kind: kindUint}},
	0x81: {{name: "version", kind: kindUint}, {name: "server", kind: kindText}, {name: "time", kind: kindTime}, {name: "max frame", kind: kindUint},
		{name: "max text", kind: kindUint}, {name: "max name", kind: kindUint}, {name: "max room", kind: kindUint}, {name: "max rooms", kind: kindUint},
		{name: "history", kind: kindUint}, {name: "ping", kind: kindUint}, {name: "flags", kind: kindUint},
		{name: "send interval", kind: kindUint}, {name: "send burst", kind: kindUint}, {name: "flood after", kind: kindUint},
		{name: "retry after", kind: kindUint}, {name: "queue frames", kind: kindUint}, {name: "max listed", kind: kindUint},
		{name: "presence batch above", kind: kindUint}, {name: "idle timeout", kind: kindUint},
		{name: "file rate", kind: kindUint, opt: true}, {name: "max upload", kind: kindUint}},
	0x82: {{name: "room", kind: kindText}, {name: "name", kind: kindText}, {name: "after", kind: kindUint}, {name: "head", kind: kindUint},
		{name: "count", kind: kindUint}, {name: "n", kind: kindUint}, {name: "names", kind: kindTexts}, {name: "epoch", kind: kindUint},
		{name: "read", kind: kindUint}, {name: "mentions", kind: kindUint}, {name: "topic", kind: kindText}, {name: "modes", kind: kindUint}},
	0x83: {{name: "room", kind: kindText}, {name: "id", kind: kindBytes}, {name: "seq", kind: kindUint}, {name: "time", kind: kindTime}},
	0x84: fields([]specField{{name: "room", kind: kindText}}, msgBase, optional(msgExtra), optional(fileFields)),
	0x85: {{name: "room", kind: kindText}, {name: "count", kind: kindUint}, {name: "n", kind: kindUint}, {name: "changes", kind: kindChanges}},
	0x86: {{name: "room", kind: kindText}},
	0x87: {{name: "code", kind: kindUint}, {name: "flags", kind: kindByte}, {name: "room", kind: kindText}, {name: "text", kind: kindText},
		{name: "id", kind: kindBytes, opt: true}},
	0x88: {{name: "name", kind: kindText}, {name: "n", kind: kindUint}, {name: "dms", kind: kindRecords}},
	0x89: {{name: "room", kind: kindText}, {name: "before", kind: kindUint}, {name: "flags", kind: kindByte}, {name: "n", kind: kindUint}, {name: "messages", kind: kindRecords}},
	0x8a: {{name: "query", kind: kindText}, {name: "n", kind: kindUint}, {name: "rooms", kind: kindRecords}},
	0x8b: {{name: "room", kind: kindText}, {name: "seq", kind: kindUint}},
	0x8c: fields([]specField{{name: "kind", kind: kindByte}, {name: "room", kind: kindText}}, msgBase, optional(msgExtra), optional(fileFields)),
	0x8d: {{name: "room", kind: kindText}, {name: "action", kind: kindByte}, {name: "target", kind: kindText}, {name: "text", kind: kindText}},
	0x8e: {{name: "room", kind: kindText}, {name: "action", kind: kindByte}, {name: "actor", kind: kindText}, {name: "target", kind: kindText},
		{name: "seq", kind: kindUint}, {name: "until", kind: kindTime}, {name: "text", kind: kindText}},
	0x8f: {{name: "room", kind: kindText}, {name: "seq", kind: kindUint}, {name: "time", kind: kindTime}, {name: "actor", kind: kindText},
		{name: "kind", kind: kindByte}, {name: "target", kind: kindUint}, {name: "emoji", kind: kindText}, {name: "flags", kind: kindByte},
		{name: "state", kind: kindRecord, ifFlag: "flags", ifBit: 1}},
	0x90: {{name: "room", kind: kindText}, {name: "name", kind: kindText}, {name: "flags", kind: kindByte}},
	0x91: {{name: "query", kind: kindText}, {name: "flags", kind: kindByte}, {name: "n", kind: kindUint}, {name: "hits", kind: kindRecords}},
	0x92: fields([]specField{{name: "room", kind: kindText}, {name: "id", kind: kindBytes}, {name: "received", kind: kindUint}}, fileFields),
	0x93: {{name: "room", kind: kindText}, {name: "file", kind: kindText}, {name: "offset", kind: kindUint}, {name: "size", kind: kindUint},
		{name: "type", kind: kindText}, {name: "data", kind: kindBytes}},
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
// fields by name (the record lists of IDENTIFIED, PAGE, ROOMS, RESULTS,
// MESSAGE's reactions and the files × (…) of a file), or one such object
// (UPDATE's state). A field the
// frame does not carry (specField.opt, specField.ifFlag) is not listed.
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
	return decodeByTables(frame, specFields, specRecords, false)
}

// decodeByTables decodes a whole frame with the tables given (the spec's,
// or those of an earlier revision); trailing: bytes after the last field
// are ignored, as a receiver of an earlier revision ignores the fields
// appended after its time (README.md section 2), instead of refused.
func decodeByTables(frame []byte, specFields map[byte][]specField, specRecords map[byte]map[string][]specField, trailing bool) (*goldenDoc, error) {
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
	// flags are the values of the frame's byte and uint fields by name,
	// for the fields present only with a flag bit (specField.ifFlag).
	flags := map[string]uint64{}
	// readFields reads fields in order and hands each present one to emit;
	// top: the frame's own fields, not a record's.
	var readFields func(fs []specField, top bool, emit func(specField, any))
	readRecord := func(f specField) map[string]any {
		rec := map[string]any{}
		readFields(specRecords[typ][f.name], false, func(e specField, v any) { rec[e.name] = v })
		return rec
	}
	readFields = func(fs []specField, top bool, emit func(specField, any)) {
		var count uint64 // the last uint, for the lists that follow their n
		for _, f := range fs {
			if err != nil {
				return
			}
			if f.opt && len(b) == 0 {
				return // an appended field left out: it and the rest are absent
			}
			if f.ifFlag != "" && flags[f.ifFlag]&f.ifBit != f.ifBit {
				continue
			}
			var v any
			switch f.kind {
			case kindMagic:
				if len(b) < 4 || string(b[:4]) != "CHAT" {
					fail("no magic")
					return
				}
				v, b = string(b[:4]), b[4:]
			case kindUint, kindTime:
				count = uvarint(f.name)
				v = count
				if top {
					flags[f.name] = count
				}
			case kindByte:
				c := uint64(one(f.name))
				v = c
				if top {
					flags[f.name] = c
				}
			case kindText, kindBytes:
				v = scalar(f)
			case kindRecord:
				v = readRecord(f)
			case kindRecords:
				list := []map[string]any{}
				for i := uint64(0); i < count && err == nil; i++ {
					list = append(list, readRecord(f))
				}
				v = list
			case kindTexts:
				list := []string{}
				for i := uint64(0); i < count && err == nil; i++ {
					list = append(list, text(f.name))
				}
				v = list
			case kindChanges:
				list := []goldenChange{}
				for i := uint64(0); i < count && err == nil; i++ {
					k := one("kind")
					list = append(list, goldenChange{Kind: uint64(k), Name: text("name")})
				}
				v = list
			}
			if err != nil {
				return
			}
			emit(f, v)
		}
	}
	readFields(fields, true, func(f specField, v any) {
		d.Fields = append(d.Fields, goldenField{Name: f.name, Kind: encoding(typ, f), Value: v})
	})
	if err != nil {
		return nil, err
	}
	if len(b) != 0 && !trailing {
		return nil, fmt.Errorf("%d bytes after the last field", len(b))
	}
	return d, nil
}

// absent stands, in specValues, for a field the frame does not carry (an
// appended field left out, a field whose flag bit is clear).
type absent struct{}

// specValues lists m's values in the order of specFields, by hand from
// the struct fields, so that -update writes what the Go value says, not
// what the encoder made of it.
func specValues(m Message) []any {
	u := func(v uint64) any { return v }
	x := func(s string) any { return hex.EncodeToString([]byte(s)) }
	none := absent{}
	// optUint is an appended uint that a sender leaves out when it is 0.
	optUint := func(v uint64) any {
		if v == 0 {
			return none
		}
		return v
	}
	reactions := func(rs []Reaction) []map[string]any {
		list := []map[string]any{}
		for _, r := range rs {
			names := append([]string{}, r.Names...)
			list = append(list, map[string]any{"emoji": r.Emoji, "count": u(r.Count), "n": u(uint64(len(names))), "names": names})
		}
		return list
	}
	// file is a file's count and list (fileFields).
	file := func(f *File) []any {
		if f == nil {
			return []any{u(0), []map[string]any{}}
		}
		return []any{u(1), []map[string]any{{"id": f.ID, "name": f.Name, "type": f.Type, "size": u(f.Size),
			"width": u(f.Width), "height": u(f.Height), "thumb": f.Thumb,
			"thumb width": u(f.ThumbWidth), "thumb height": u(f.ThumbHeight)}}}
	}
	// extra are MESSAGE's appended fields: reply, edited and reactions
	// when one of them or the file is set, the file when set (msgExtra,
	// fileFields).
	extra := func(g *Msg) []any {
		if g.Reply == 0 && g.Edited == 0 && len(g.Reactions) == 0 && g.File == nil {
			return []any{none, none, none, none, none, none}
		}
		fs := []any{none, none}
		if g.File != nil {
			fs = file(g.File)
		}
		return append([]any{u(g.Reply), u(g.Edited), u(uint64(len(g.Reactions))), reactions(g.Reactions)}, fs...)
	}
	// record is a message as a record: msgBase, with msgExtra when full,
	// with fileFields when files.
	record := func(g *Msg, full, files bool) map[string]any {
		rec := map[string]any{"seq": u(g.Seq), "time": u(g.Time), "sender": g.Sender, "id": x(g.ID), "text": g.Text}
		if full {
			rec["reply"], rec["edited"] = u(g.Reply), u(g.Edited)
			rec["n"], rec["reactions"] = u(uint64(len(g.Reactions))), reactions(g.Reactions)
		}
		if files {
			f := file(g.File)
			rec["files"], rec["file"] = f[0], f[1]
		}
		return rec
	}
	flag := func(b bool, bit uint64) uint64 {
		if b {
			return bit
		}
		return 0
	}
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
		if m.File == "" {
			return []any{m.Room, x(m.ID), m.Text, optUint(m.Reply), none}
		}
		return []any{m.Room, x(m.ID), m.Text, u(m.Reply), m.File}
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
		// file rate and max upload come together, left out when both are 0.
		files := []any{none, none}
		if l.FileBytesPerSec != 0 || l.MaxUpload != 0 {
			files = []any{u(l.FileBytesPerSec), u(l.MaxUpload)}
		}
		return append([]any{u(m.Version), m.Server, u(m.Time), u(m.MaxFrame), u(m.MaxText), u(m.MaxName),
			u(m.MaxRoom), u(m.MaxRooms), u(m.History), u(m.PingMs), u(uint64(m.Flags)),
			u(l.SendIntervalMs), u(l.SendBurst), u(l.FloodAfterMs), u(l.RetryAfterMs),
			u(l.QueueFrames), u(l.MaxListed), u(l.PresenceBatchAbove), u(l.IdleTimeoutMs)}, files...)
	case *Joined:
		names := append([]string{}, m.Members...)
		return []any{m.Room, m.Name, u(m.After), u(m.Head), u(m.Count), u(uint64(len(names))), names, u(m.Epoch),
			u(m.Read), u(m.Mentions), m.Topic, u(uint64(m.Modes))}
	case *Ack:
		return []any{m.Room, x(m.ID), u(m.Seq), u(m.Time)}
	case *Msg:
		return append([]any{m.Room, u(m.Seq), u(m.Time), m.Sender, x(m.ID), m.Text}, extra(m)...)
	case *Presence:
		changes := []goldenChange{}
		for _, c := range m.Changes {
			changes = append(changes, goldenChange{Kind: uint64(c.Kind), Name: c.Name})
		}
		return []any{m.Room, u(m.Count), u(uint64(len(changes))), changes}
	case *Left:
		return []any{m.Room}
	case *Error:
		id := any(none)
		if m.ID != "" {
			id = x(m.ID)
		}
		return []any{u(uint64(m.Code)), u(uint64(m.Flags)), m.Room, m.Text, id}
	case *Identify:
		return []any{m.Name, x(m.Secret), x(m.Key)}
	case *History:
		return []any{m.Room, u(m.Before), u(m.Limit), optUint(flag(m.Full || m.Files, 1) | flag(m.Files, 2))}
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
		msgs := []map[string]any{}
		for i := range m.Messages {
			msgs = append(msgs, record(&m.Messages[i], m.Full || m.Files, m.Files))
		}
		return []any{m.Room, u(m.Before), flag(m.First, 1) | flag(m.Full || m.Files, 2) | flag(m.Files, 4), u(uint64(len(msgs))), msgs}
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
		return append([]any{u(uint64(m.Kind)), g.Room, u(g.Seq), u(g.Time), g.Sender, x(g.ID), g.Text}, extra(g)...)
	case *Change:
		return []any{m.Room, u(uint64(m.Kind)), u(m.Target), x(m.ID), m.Text}
	case *Typing:
		return []any{m.Room, flag(m.Stopped, 1)}
	case *Search:
		return []any{m.Query, m.Room, u(m.Before), u(m.Limit)}
	case *Update:
		state := any(none)
		withFile := m.State != nil && m.State.File != nil
		if m.State != nil {
			state = record(m.State, true, withFile)
		}
		return []any{m.Room, u(m.Seq), u(m.Time), m.Actor, u(uint64(m.Kind)), u(m.Target), m.Emoji,
			flag(m.State != nil, 1) | flag(withFile, 2), state}
	case *IsTyping:
		return []any{m.Room, m.Name, flag(m.Stopped, 1)}
	case *Results:
		hits := []map[string]any{}
		for _, h := range m.Hits {
			matches := []map[string]any{}
			for _, s := range h.Matches {
				matches = append(matches, map[string]any{"start": u(s.Start), "end": u(s.End)})
			}
			hits = append(hits, map[string]any{"room": h.Room, "seq": u(h.Seq), "time": u(h.Time), "sender": h.Sender,
				"text": h.Text, "n": u(uint64(len(matches))), "matches": matches})
		}
		return []any{m.Query, flag(m.More, 1), u(uint64(len(hits))), hits}
	case *Upload:
		return []any{m.Room, x(m.ID), m.Name, u(m.Size), u(m.Offset), x(string(m.Data))}
	case *Uploaded:
		return append([]any{m.Room, x(m.ID), u(m.Received)}, file(m.File)...)
	case *Fetch:
		return []any{m.Room, m.File, u(m.Offset), u(m.Length)}
	case *Part:
		return []any{m.Room, m.File, u(m.Offset), u(m.Size), m.MIME, x(string(m.Data))}
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
		if _, ok := values[i].(absent); ok {
			continue
		}
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
