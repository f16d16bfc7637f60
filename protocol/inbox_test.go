package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// inboxTypes are the types of the inbox revision (README.md sections 3
// and 4): IDENTIFY, HISTORY, READ, LIST and their answers, MARKER, NOTICE.
var inboxTypes = map[Type]bool{
	TypeIdentify: true, TypeHistory: true, TypeRead: true, TypeList: true, TypeIdentified: true,
	TypePage: true, TypeRooms: true, TypeMarker: true, TypeNotice: true,
}

// inboxEdgeCases are hand-made frame bodies of the new types and of the
// fields JOINED gained: each decodes to want, or fails with code. They are
// also seeds of FuzzDecode (corpus_test.go writes them to testdata/fuzz).
var inboxEdgeCases = []struct {
	name string
	body []byte
	want Message   // when it decodes
	code ErrorCode // when it does not
}{
	// JOINED from a server of before the inbox revision: no read and
	// mentions, or not even an epoch; read without mentions.
	{"joined-before-read", []byte{byte(TypeJoined), 1, 'r', 1, 'n', 0, 1, 1, 1, 1, 'n', 7},
		&Joined{Room: "r", Name: "n", Head: 1, Count: 1, Members: []string{"n"}, Epoch: 7}, 0},
	{"joined-before-epoch", []byte{byte(TypeJoined), 1, 'r', 1, 'n', 0, 1, 1, 1, 1, 'n'},
		&Joined{Room: "r", Name: "n", Head: 1, Count: 1, Members: []string{"n"}}, 0},
	{"joined-read-only", []byte{byte(TypeJoined), 1, 'r', 1, 'n', 0, 1, 1, 1, 1, 'n', 7, 1},
		&Joined{Room: "r", Name: "n", Head: 1, Count: 1, Members: []string{"n"}, Epoch: 7, Read: 1}, 0},
	{"joined-mentions-bad-varint", []byte{byte(TypeJoined), 1, 'r', 1, 'n', 0, 1, 1, 1, 1, 'n', 7, 1, 0x80},
		nil, CodeMalformed},

	// Forged list counts: refused by the count check before anything is
	// allocated for them.
	{"identified-forged-count", []byte{byte(TypeIdentified), 1, 'a', 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0},
		nil, CodeMalformed},
	{"page-forged-count", []byte{byte(TypePage), 1, 'r', 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0},
		nil, CodeMalformed},
	{"rooms-forged-count", []byte{byte(TypeRooms), 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0},
		nil, CodeMalformed},
	// One record more than the frame holds, though the count passes the
	// count check: the records run out.
	{"page-records-run-out", []byte{byte(TypePage), 1, 'r', 0, 0, 2, 1, 0, 0, 0, 3, 'a', 'b', 'c', 2, 0},
		nil, CodeMalformed},

	// Records of the smallest size the count checks assume (IDENTIFIED and
	// ROOMS 4 bytes, PAGE 5): a count check stricter than the encoding
	// would refuse these.
	{"identified-smallest-records", []byte{byte(TypeIdentified), 0, 2, 0, 0, 0, 0, 0, 0, 0, 0},
		&Identified{DMs: []RoomState{{}, {}}}, 0},
	{"page-smallest-records", []byte{byte(TypePage), 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		&Page{Messages: []Msg{{}, {}}}, 0},
	{"rooms-smallest-records", []byte{byte(TypeRooms), 0, 2, 0, 0, 0, 0, 0, 0, 0, 0},
		&Rooms{Rooms: []RoomInfo{{}, {}}}, 0},

	// Flags and kinds of a later revision are kept or skipped, not refused.
	// (bits 0 first and 1 full are defined; 2-7 are not.)
	{"page-unknown-flags", []byte{byte(TypePage), 1, 'r', 5, 0xfc, 0},
		&Page{Room: "r", Before: 5}, 0},
	{"page-first-and-unknown-flags", []byte{byte(TypePage), 1, 'r', 5, 0xfd, 0},
		&Page{Room: "r", Before: 5, First: true}, 0},
	// Bits 0 (full) and 1 (files) are defined; the others are ignored.
	{"history-unknown-flags", []byte{byte(TypeHistory), 1, 'r', 5, 0, 0xfc, 0x01},
		&History{Room: "r", Before: 5}, 0},
	{"notice-unknown-kind", []byte{byte(TypeNotice), 9, 1, 'r', 1, 2, 1, 'b', 1, 'i', 1, 't'},
		&Notice{Kind: 9, Msg: Msg{Room: "r", Seq: 1, Time: 2, Sender: "b", ID: "i", Text: "t"}}, 0},

	// Text fields are UTF-8 in the new frames too; id and secret are bytes.
	{"page-sender-not-utf8", []byte{byte(TypePage), 1, 'r', 0, 0, 1, 1, 0, 1, 0xff, 0, 0},
		nil, CodeInvalidUTF8},
	{"notice-text-not-utf8", []byte{byte(TypeNotice), 1, 1, 'r', 1, 2, 1, 'b', 0, 1, 0xc3},
		nil, CodeInvalidUTF8},
	{"rooms-room-not-utf8", []byte{byte(TypeRooms), 0, 1, 1, 0x80, 0, 0, 0},
		nil, CodeInvalidUTF8},
	{"identify-binary-secret", []byte{byte(TypeIdentify), 1, 'a', 2, 0xff, 0x00, 0},
		&Identify{Name: "a", Secret: "\xff\x00"}, 0},
	{"identify-name-not-utf8", []byte{byte(TypeIdentify), 1, 0xff, 0, 0},
		nil, CodeInvalidUTF8},
	{"list-query-not-utf8", []byte{byte(TypeList), 1, 0xfe},
		nil, CodeInvalidUTF8},

	// Varints: shortest form only, at most 64 bits.
	{"history-before-not-shortest", []byte{byte(TypeHistory), 1, 'r', 0x80, 0x00, 0},
		nil, CodeMalformed},
	{"read-seq-overflows", append([]byte{byte(TypeRead), 1, 'r'}, bytes.Repeat([]byte{0xff}, 10)...),
		nil, CodeMalformed},
	{"marker-seq-max", []byte{byte(TypeMarker), 1, 'r', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		&Marker{Room: "r", Seq: 1<<64 - 1}, 0},

	// Frames that end early.
	{"identify-without-key", []byte{byte(TypeIdentify), 1, 'a', 1, 's'}, nil, CodeMalformed},
	{"history-without-limit", []byte{byte(TypeHistory), 1, 'r', 5}, nil, CodeMalformed},
	{"notice-without-kind", []byte{byte(TypeNotice)}, nil, CodeMalformed},
	{"page-without-flags", []byte{byte(TypePage), 1, 'r', 5}, nil, CodeMalformed},
}

func TestInboxEdgeCases(t *testing.T) {
	for _, tc := range inboxEdgeCases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.body)
			if tc.want == nil {
				var de *DecodeError
				if !errors.As(err, &de) || de.Code != tc.code {
					t.Fatalf("Decode = %#v, %v; want code %v", m, err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, tc.want) {
				t.Fatalf("decoded\n %#v\nwant\n %#v", m, tc.want)
			}
		})
	}
}

// TestInboxTruncated: no proper prefix of an inbox frame is misread: it is
// malformed (or, where the cut falls inside a UTF-8 sequence of a text
// field, invalid-utf8), or, cut just before fields a sender may leave out
// (HISTORY's flags, NOTICE's reply, edited and reactions), the frame
// without them.
func TestInboxTruncated(t *testing.T) {
	for _, g := range goldenMessages {
		if inboxTypes[g.msg.Type()] {
			checkPrefixes(t, g.name, Encode(g.msg)[LengthSize:])
		}
	}
}

// checkPrefixes checks every proper prefix of a frame body: Decode refuses
// it as malformed or invalid-utf8, or decodes a message whose encoding is
// that prefix itself (a shorter frame of this revision, without its
// optional appended fields), never something else. A prefix that ends
// right after appended fields written as zeros (a MESSAGE cut before its
// file, after reply, edited and reactions 0) encodes shorter: it must lie
// between Encode(m) and withAllFields(m), so the bytes it has beyond
// Encode(m) are only those zeros.
func checkPrefixes(t *testing.T, name string, body []byte) {
	t.Helper()
	for n := 1; n < len(body); n++ {
		m, err := Decode(body[:n])
		if err == nil {
			again := Encode(m)[LengthSize:]
			all := withAllFields(m)
			between := bytes.HasPrefix(body[:n], again) && bytes.HasPrefix(all, body[:n])
			if !bytes.Equal(again, body[:n]) && !between {
				t.Errorf("%s cut to %d of %d bytes decodes to %#v", name, n, len(body), m)
			}
			continue
		}
		var de *DecodeError
		if !errors.As(err, &de) || (de.Code != CodeMalformed && de.Code != CodeInvalidUTF8) {
			t.Errorf("%s cut to %d of %d bytes: Decode = %#v, %v", name, n, len(body), m, err)
		}
	}
}

// withFieldAppended is m's frame body with every field of this revision
// written out (withAllFields), and then a field of a later revision: a
// text and a byte no field of this revision reads.
func withFieldAppended(m Message) []byte {
	return append(withAllFields(m), 0x03, 'n', 'e', 'w', 0xff)
}

// withAllFields is m's frame body with the fields a sender may leave out
// (SEND's reply and file, MESSAGE's and NOTICE's reply, edited, reactions
// and file, HISTORY's flags, ERROR's id, WELCOME's file rate and max
// upload) written out as their zero values where Encode left them out.
// It decodes to m as Encode(m) does.
func withAllFields(m Message) []byte {
	body := Encode(m)[LengthSize:]
	msg := func(g *Msg) {
		if g.Reply == 0 && g.Edited == 0 && len(g.Reactions) == 0 && g.File == nil {
			body = append(body, 0, 0, 0) // reply, edited, no reactions
		}
		if g.File == nil {
			body = append(body, 0) // no file
		}
	}
	switch m := m.(type) {
	case *Send:
		if m.Reply == 0 && m.File == "" {
			body = append(body, 0) // reply 0
		}
		if m.File == "" {
			body = append(body, 0) // file empty
		}
	case *Msg:
		msg(m)
	case *Notice:
		msg(&m.Msg)
	case *History:
		if !m.Full && !m.Files {
			body = append(body, 0) // flags 0
		}
	case *Error:
		if m.ID == "" {
			body = append(body, 0) // id empty
		}
	case *Welcome:
		if m.Limits.FileBytesPerSec == 0 && m.Limits.MaxUpload == 0 {
			body = append(body, 0, 0) // file rate, max upload
		}
	}
	return body
}

// TestInboxAppendedFields: a later revision may append fields to the new
// messages too; a receiver of this one reads what it knows.
func TestInboxAppendedFields(t *testing.T) {
	for _, g := range goldenMessages {
		if !inboxTypes[g.msg.Type()] && g.msg.Type() != TypeJoined {
			continue
		}
		body := withFieldAppended(g.msg)
		m, err := Decode(body)
		if err != nil {
			t.Fatalf("%s with a field appended: %v", g.name, err)
		}
		if !reflect.DeepEqual(m, g.msg) {
			t.Errorf("%s with a field appended:\n got %#v\nwant %#v", g.name, m, g.msg)
		}
	}
}

// TestForgedCounts: a 16-byte frame that claims 2³⁵ records is refused by
// the count check, before the decoder makes room for them (a slice of 2³⁵
// messages would not even be allocatable).
func TestForgedCounts(t *testing.T) {
	for _, typ := range []Type{TypeIdentified, TypePage, TypeRooms, TypeJoined, TypePresence} {
		body := []byte{byte(typ)}
		switch typ {
		case TypeIdentified:
			body = append(body, 1, 'a')
		case TypePage:
			body = append(body, 1, 'r', 0, 0)
		case TypeRooms:
			body = append(body, 0)
		case TypeJoined:
			body = append(body, 1, 'r', 1, 'n', 0, 0, 0)
		case TypePresence:
			body = append(body, 1, 'r', 0)
		}
		body = binary.AppendUvarint(body, 1<<35)
		body = append(body, make([]byte, 8)...)
		m, err := Decode(body)
		var de *DecodeError
		if !errors.As(err, &de) || de.Code != CodeMalformed || !strings.Contains(de.Reason, "count larger than the frame can hold") {
			t.Errorf("%v with a forged count: %#v, %v; want the count refused", typ, m, err)
		}
	}
	// The count check assumes each record's smallest encoding (IDENTIFIED
	// and ROOMS 4 bytes, PAGE 5; the *-smallest-records cases decode two
	// of them): three records in two records' worth of bytes are refused
	// by it too, not only later when the bytes run out.
	for _, body := range [][]byte{
		append([]byte{byte(TypeIdentified), 0, 3}, make([]byte, 2*4)...),
		append([]byte{byte(TypePage), 0, 0, 0, 3}, make([]byte, 2*5)...),
		append([]byte{byte(TypeRooms), 0, 3}, make([]byte, 2*4)...),
	} {
		m, err := Decode(body)
		var de *DecodeError
		if !errors.As(err, &de) || !strings.Contains(de.Reason, "count larger than the frame can hold") {
			t.Errorf("% x: %#v, %v; want the count refused", body, m, err)
		}
	}
}

// TestPageMessagesCarryTheRoom: PAGE does not repeat the room per message,
// but the decoded messages carry it, so a client handles them as MESSAGEs.
func TestPageMessagesCarryTheRoom(t *testing.T) {
	p := &Page{Room: "general", Before: 10, Messages: []Msg{
		{Seq: 8, Time: 1, Sender: "a", ID: "x", Text: "one"},
		{Room: "elsewhere", Seq: 9, Time: 2, Sender: "b", ID: "y", Text: "two"}}}
	m, err := Decode(Encode(p)[LengthSize:])
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range m.(*Page).Messages {
		if x.Room != "general" {
			t.Errorf("message %d has room %q", x.Seq, x.Room)
		}
	}
	// The encoding does not depend on the messages' Room.
	q := *p
	q.Messages = []Msg{p.Messages[0], p.Messages[1]}
	q.Messages[0].Room, q.Messages[1].Room = "general", "general"
	if !bytes.Equal(Encode(p), Encode(&q)) {
		t.Error("a message's Room changes the PAGE encoding")
	}
}

func TestNoticeKindString(t *testing.T) {
	for k, want := range map[NoticeKind]string{NoticeMention: "mention", NoticeDirect: "direct", 0: "unknown", 3: "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("NoticeKind(%d) = %q, want %q", k, got, want)
		}
	}
}

// TestWelcomeInboxFlag: the flag is bit 1, next to bit 0 (key required),
// and an older WELCOME (flags 0 or 1) does not announce it.
func TestWelcomeInboxFlag(t *testing.T) {
	if WelcomeKeyRequired != 1 || WelcomeInbox != 2 {
		t.Fatalf("flags: key required %d, inbox %d; the spec says bits 0 and 1", WelcomeKeyRequired, WelcomeInbox)
	}
	for _, g := range goldenMessages {
		w, ok := g.msg.(*Welcome)
		if !ok {
			continue
		}
		if got, want := w.Flags&WelcomeInbox != 0, g.name == "welcome-inbox" || g.name == "welcome-messages" || g.name == "welcome-files"; got != want {
			t.Errorf("%s: inbox flag %v", g.name, got)
		}
	}
}
