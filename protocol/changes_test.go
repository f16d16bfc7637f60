package protocol

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// messagesTypes are the frames of acting on messages (README.md section
// 4, "Acting on messages"), and the older frames that gained fields for it.
var messagesTypes = map[Type]bool{
	TypeChange: true, TypeTyping: true, TypeSearch: true, TypeUpdate: true, TypeIsTyping: true, TypeResults: true,
	TypeSend: true, TypeMessage: true, TypeNotice: true, TypeHistory: true, TypePage: true, TypeError: true,
}

// messagesEdgeCases are hand-made frame bodies of those frames: each
// decodes to want, or fails with code. They are seeds of FuzzDecode too.
var messagesEdgeCases = []struct {
	name string
	body []byte
	want Message   // when it decodes
	code ErrorCode // when it does not
}{
	// Kinds and flag bits of a later revision decode; a server refuses an
	// unknown change kind with invalid, a client skips an UPDATE of one.
	{"change-unknown-kind", []byte{byte(TypeChange), 1, 'r', 9, 3, 1, 'c', 0},
		&Change{Room: "r", Kind: 9, Target: 3, ID: "c"}, 0},
	{"update-unknown-flags", []byte{byte(TypeUpdate), 1, 'r', 4, 5, 1, 'a', 1, 3, 0, 0xfe},
		&Update{Room: "r", Seq: 4, Time: 5, Actor: "a", Kind: ChangeEdit, Target: 3}, 0},
	{"typing-unknown-flags", []byte{byte(TypeTyping), 1, 'r', 0xfe},
		&Typing{Room: "r"}, 0},
	{"is-typing-stopped-and-unknown-flags", []byte{byte(TypeIsTyping), 1, 'r', 1, 'b', 0xff},
		&IsTyping{Room: "r", Name: "b", Stopped: true}, 0},
	{"results-more-and-unknown-flags", []byte{byte(TypeResults), 1, 'q', 0x81, 0},
		&Results{Query: "q", More: true}, 0},

	// A change id is bytes, its text is text.
	{"change-binary-id", []byte{byte(TypeChange), 1, 'r', 1, 3, 2, 0xff, 0x00, 1, 'x'},
		&Change{Room: "r", Kind: ChangeEdit, Target: 3, ID: "\xff\x00", Text: "x"}, 0},
	{"change-text-not-utf8", []byte{byte(TypeChange), 1, 'r', 3, 3, 1, 'c', 2, 0xf0, 0x9f},
		nil, CodeInvalidUTF8},
	{"error-binary-id", []byte{byte(TypeError), 0xd6, 0x01, 0, 1, 'r', 0, 2, 0xff, 0x00},
		&Error{Code: CodeInvalid, Room: "r", ID: "\xff\x00"}, 0},
	{"search-query-not-utf8", []byte{byte(TypeSearch), 1, 0xff, 0, 0, 0},
		nil, CodeInvalidUTF8},
	{"results-hit-text-not-utf8", []byte{byte(TypeResults), 0, 0, 1, 1, 'r', 1, 2, 1, 'b', 1, 0xc3, 0},
		nil, CodeInvalidUTF8},

	// MESSAGE's reply, edited and reactions come together: a frame may end
	// before reply, not inside them.
	{"message-reply-without-edited", []byte{byte(TypeMessage), 1, 'r', 1, 2, 1, 'b', 1, 'i', 1, 't', 3},
		nil, CodeMalformed},
	{"message-extra-zeros", []byte{byte(TypeMessage), 1, 'r', 1, 2, 1, 'b', 1, 'i', 1, 't', 0, 0, 0},
		&Msg{Room: "r", Seq: 1, Time: 2, Sender: "b", ID: "i", Text: "t"}, 0},
	{"send-reply-not-shortest", []byte{byte(TypeSend), 1, 'r', 1, 'i', 1, 't', 0x83, 0x00},
		nil, CodeMalformed},
	{"notice-reply", []byte{byte(TypeNotice), 1, 1, 'r', 9, 2, 1, 'b', 1, 'i', 1, 't', 7, 0, 0},
		&Notice{Kind: NoticeMention, Msg: Msg{Room: "r", Seq: 9, Time: 2, Sender: "b", ID: "i", Text: "t", Reply: 7}}, 0},

	// UPDATE's state follows only with flags bit 0, and then whole.
	{"update-state-missing", []byte{byte(TypeUpdate), 1, 'r', 4, 5, 1, 'a', 1, 3, 0, 1},
		nil, CodeMalformed},
	{"update-state-without-reactions", []byte{byte(TypeUpdate), 1, 'r', 4, 5, 1, 'a', 1, 3, 0, 1, 3, 2, 1, 'b', 1, 'i', 1, 't', 0, 5},
		nil, CodeMalformed},

	// Frames that end early.
	{"change-without-text", []byte{byte(TypeChange), 1, 'r', 2, 3, 1, 'c'}, nil, CodeMalformed},
	{"typing-without-flags", []byte{byte(TypeTyping), 1, 'r'}, nil, CodeMalformed},
	{"is-typing-without-flags", []byte{byte(TypeIsTyping), 1, 'r', 1, 'b'}, nil, CodeMalformed},
	{"search-without-limit", []byte{byte(TypeSearch), 1, 'q', 0, 0}, nil, CodeMalformed},
	{"results-without-flags", []byte{byte(TypeResults), 1, 'q'}, nil, CodeMalformed},

	// Forged counts: refused before anything is allocated for them.
	{"results-forged-count", []byte{byte(TypeResults), 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0, 0},
		nil, CodeMalformed},
	{"results-forged-matches", []byte{byte(TypeResults), 0, 0, 1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0},
		nil, CodeMalformed},
	{"message-forged-reactions", []byte{byte(TypeMessage), 1, 'r', 1, 2, 1, 'b', 1, 'i', 1, 't', 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0},
		nil, CodeMalformed},
	{"message-forged-names", []byte{byte(TypeMessage), 1, 'r', 1, 2, 1, 'b', 1, 'i', 1, 't', 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0},
		nil, CodeMalformed},

	// Records of the smallest size the count checks assume (a hit 6 bytes,
	// a match 2, a reaction 3, a name 1): a stricter check would refuse them.
	{"results-smallest-hits", []byte{byte(TypeResults), 0, 0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		&Results{Hits: []Hit{{Matches: []Span{{}}}, {}}}, 0},
	{"message-smallest-reactions", []byte{byte(TypeMessage), 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 1, 0, 0, 0, 0},
		&Msg{Reactions: []Reaction{{Names: []string{""}}, {}}}, 0},

	// A full PAGE: every record has the appended fields.
	{"page-full-smallest", []byte{byte(TypePage), 0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		&Page{Full: true, Messages: []Msg{{}}}, 0},
	{"page-full-forged-count", []byte{byte(TypePage), 0, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		nil, CodeMalformed}, // 15 bytes: two plain records' worth, less than two full ones
	{"page-full-record-cut", []byte{byte(TypePage), 0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0},
		nil, CodeMalformed},
}

func TestMessagesEdgeCases(t *testing.T) {
	for _, tc := range messagesEdgeCases {
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

// TestMessagesForgedCounts: the forged counts of messagesEdgeCases are
// refused by the count check itself, before anything is allocated for
// them, not later when the bytes run out. A full PAGE's records are at
// least 8 bytes, not 5.
func TestMessagesForgedCounts(t *testing.T) {
	forged := 0
	for _, tc := range messagesEdgeCases {
		if !strings.Contains(tc.name, "forged") {
			continue
		}
		forged++
		_, err := Decode(tc.body)
		var de *DecodeError
		if !errors.As(err, &de) || !strings.Contains(de.Reason, "count larger than the frame can hold") {
			t.Errorf("%s: %v; want the count refused", tc.name, err)
		}
	}
	if forged < 5 {
		t.Errorf("%d forged-count cases, want 5", forged)
	}
}

// TestMessagesTruncated: no proper prefix of these frames is misread
// (checkPrefixes).
func TestMessagesTruncated(t *testing.T) {
	for _, g := range goldenMessages {
		if messagesTypes[g.msg.Type()] {
			checkPrefixes(t, g.name, Encode(g.msg)[LengthSize:])
		}
	}
}

// TestMessagesAppendedFields: a later revision may append fields to these
// frames too, after the last one of this revision; a receiver of this one
// reads what it knows.
func TestMessagesAppendedFields(t *testing.T) {
	for _, g := range goldenMessages {
		if !messagesTypes[g.msg.Type()] {
			continue
		}
		m, err := Decode(withFieldAppended(g.msg))
		if err != nil {
			t.Fatalf("%s with a field appended: %v", g.name, err)
		}
		if !reflect.DeepEqual(m, g.msg) {
			t.Errorf("%s with a field appended:\n got %#v\nwant %#v", g.name, m, g.msg)
		}
	}
}

// TestOptionalFieldsLeftOut: a frame without the fields a sender leaves
// out when they are zero is the frame of the revision before them, byte
// for byte, so older peers read it as before.
func TestOptionalFieldsLeftOut(t *testing.T) {
	for _, tc := range []struct {
		m    Message
		want []byte
	}{
		{&Send{Room: "r", ID: "i", Text: "t"}, []byte{byte(TypeSend), 1, 'r', 1, 'i', 1, 't'}},
		{&Msg{Room: "r", Seq: 1, Time: 2, Sender: "b", ID: "i", Text: "t"}, []byte{byte(TypeMessage), 1, 'r', 1, 2, 1, 'b', 1, 'i', 1, 't'}},
		{&History{Room: "r", Before: 5, Limit: 6}, []byte{byte(TypeHistory), 1, 'r', 5, 6}},
		{&Error{Code: CodeMuted, Room: "r", Text: "t"}, []byte{byte(TypeError), 0xd0, 0x01, 0, 1, 'r', 1, 't'}},
		{&Page{Room: "r", Messages: []Msg{{Seq: 1, Reply: 9}}}, []byte{byte(TypePage), 1, 'r', 0, 0, 1, 1, 0, 0, 0, 0}},
	} {
		if got := Encode(tc.m)[LengthSize:]; !bytes.Equal(got, tc.want) {
			t.Errorf("%v: % x, want % x", tc.m.Type(), got, tc.want)
		}
	}
}

// TestChangeKindNumbers pins the change kinds and the reaction set of the
// spec.
func TestChangeKindNumbers(t *testing.T) {
	want := []string{1: "edit", 2: "delete", 3: "react", 4: "unreact"}
	for i, name := range want {
		k := ChangeKind(i)
		if name == "" {
			if k.Known() {
				t.Errorf("kind %d is known as %q", i, k)
			}
			continue
		}
		if k.String() != name || !k.Known() {
			t.Errorf("kind %d is %q, want %q", i, k, name)
		}
	}
	if ChangeKind(5).Known() || ChangeKind(255).String() != "unknown" {
		t.Error("kind 5 or 255 is known")
	}
	// The spec lists the set by its UTF-8 bytes (README.md section 4).
	hexes := []string{"f0 9f 91 8d", "e2 9d a4 ef b8 8f", "f0 9f 98 82", "f0 9f 98 ae", "f0 9f 98 a2", "f0 9f 8e 89", "f0 9f 99 8f", "f0 9f 91 80"}
	if len(Reactions) != len(hexes) {
		t.Fatalf("%d reactions, the spec lists %d", len(Reactions), len(hexes))
	}
	for i, r := range Reactions {
		if got := strings.TrimSpace(spaced([]byte(r))); got != hexes[i] {
			t.Errorf("reaction %d is %s, the spec says %s", i, got, hexes[i])
		}
		if !IsReaction(r) {
			t.Errorf("IsReaction(%q) = false", r)
		}
	}
	for _, s := range []string{"", "❤", "👍🏽", "🦄", "+1"} {
		if IsReaction(s) {
			t.Errorf("IsReaction(%q) = true", s)
		}
	}
	if CodeInvalid != 214 || CodeInvalid.String() != "invalid" || CodeInvalid.DefaultFlags() != 0 {
		t.Errorf("code 214 is %q with flags %d, want invalid, not closing", CodeInvalid, CodeInvalid.DefaultFlags())
	}
	if WelcomeMessages != 8 {
		t.Errorf("WELCOME flag messages is %d, the spec says bit 3", WelcomeMessages)
	}
}

// TestMsgUpdate: the UPDATE of a change entry carries the entry's place,
// time, actor and change, and the state given.
func TestMsgUpdate(t *testing.T) {
	state := &Msg{Room: "r", Seq: 3, Text: "new", Edited: 9}
	e := &Msg{Room: "r", Seq: 7, Time: 9, Sender: "alice", Change: &ChangeEntry{Kind: ChangeReact, Target: 3, Emoji: "👍"}}
	want := &Update{Room: "r", Seq: 7, Time: 9, Actor: "alice", Kind: ChangeReact, Target: 3, Emoji: "👍", State: state}
	if got := e.Update(state); !reflect.DeepEqual(got, want) {
		t.Fatalf("Update = %#v, want %#v", got, want)
	}
}

// TestMessagesRoundTrip is the round-trip property for the frames of
// acting on messages: Decode(Encode(m)) == m for random values, from a
// fixed seed so a failure repeats.
func TestMessagesRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 15))
	for i := range 2000 {
		m := randomMessagesFrame(r)
		got, err := Decode(Encode(m)[LengthSize:])
		if err != nil {
			t.Fatalf("%d: %#v: %v", i, m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%d: round trip\n got %#v\nwant %#v", i, got, m)
		}
	}
}

// randomMessagesFrame is one of the frames of acting on messages (or one
// that gained fields for it) with random values, nil where a decoder
// gives nil (empty lists, absent state).
func randomMessagesFrame(r *rand.Rand) Message {
	str := func() string {
		pieces := []string{"", "a", "général", "🎉", "👍", "\x00", "~", "שלום", "@bob", " "}
		var b strings.Builder
		for range r.IntN(4) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		return b.String()
	}
	id := func() string {
		b := make([]byte, r.IntN(5))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	num := func() uint64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return r.Uint64()
		default:
			return uint64(r.IntN(1 << 20))
		}
	}
	reactions := func() []Reaction {
		n := r.IntN(3)
		if n == 0 {
			return nil
		}
		rs := make([]Reaction, n)
		for i := range rs {
			rs[i] = Reaction{Emoji: Reactions[r.IntN(len(Reactions))], Count: num()}
			for range r.IntN(3) {
				rs[i].Names = append(rs[i].Names, str())
			}
		}
		return rs
	}
	data := func() []byte {
		if b := []byte(id()); len(b) > 0 {
			return b
		}
		return nil // a decoder gives nil for no data
	}
	file := func() *File {
		if r.IntN(2) == 0 {
			return nil
		}
		return &File{ID: str(), Name: str(), Type: str(), Size: num(), Width: num(), Height: num(),
			Thumb: str(), ThumbWidth: num(), ThumbHeight: num()}
	}
	// msg is a message of room; extra: with reply, edited and reactions;
	// files: perhaps with a file.
	msg := func(room string, extra, files bool) Msg {
		m := Msg{Room: room, Seq: num(), Time: num(), Sender: str(), ID: id(), Text: str()}
		if extra {
			m.Reply, m.Edited, m.Reactions = num(), num(), reactions()
		}
		if files {
			m.File = file()
		}
		return m
	}
	switch r.IntN(16) {
	case 0:
		return &Change{Room: str(), Kind: ChangeKind(r.IntN(6)), Target: num(), ID: id(), Text: str()}
	case 1:
		u := &Update{Room: str(), Seq: num(), Time: num(), Actor: str(), Kind: ChangeKind(r.IntN(6)), Target: num(), Emoji: str()}
		if r.IntN(2) == 0 {
			s := msg(u.Room, true, true)
			u.State = &s
		}
		return u
	case 2:
		return &Typing{Room: str(), Stopped: r.IntN(2) == 0}
	case 3:
		return &IsTyping{Room: str(), Name: str(), Stopped: r.IntN(2) == 0}
	case 4:
		return &Search{Query: str(), Room: str(), Before: num(), Limit: num()}
	case 5:
		res := &Results{Query: str(), More: r.IntN(2) == 0}
		for range r.IntN(3) {
			h := Hit{Room: str(), Seq: num(), Time: num(), Sender: str(), Text: str()}
			for range r.IntN(3) {
				h.Matches = append(h.Matches, Span{num(), num()})
			}
			res.Hits = append(res.Hits, h)
		}
		return res
	case 6:
		s := &Send{Room: str(), ID: id(), Text: str(), Reply: num()}
		if r.IntN(2) == 0 {
			s.File = str()
		}
		return s
	case 7:
		m := msg(str(), r.IntN(2) == 0, true)
		return &m
	case 8:
		return &Notice{Kind: NoticeKind(r.IntN(3)), Msg: msg(str(), r.IntN(2) == 0, true)}
	case 9:
		h := &History{Room: str(), Before: num(), Limit: num(), Full: r.IntN(2) == 0, Files: r.IntN(2) == 0}
		h.Full = h.Full || h.Files // files implies full
		return h
	case 10:
		p := &Page{Room: str(), Before: num(), First: r.IntN(2) == 0, Full: r.IntN(2) == 0, Files: r.IntN(2) == 0}
		p.Full = p.Full || p.Files // files implies full
		for range r.IntN(3) {
			p.Messages = append(p.Messages, msg(p.Room, p.Full, p.Files))
		}
		return p
	case 11:
		return &Upload{Room: str(), ID: id(), Name: str(), Size: num(), Offset: num(), Data: data()}
	case 12:
		return &Uploaded{Room: str(), ID: id(), Received: num(), File: file()}
	case 13:
		return &Fetch{Room: str(), File: str(), Offset: num(), Length: num()}
	case 14:
		return &Part{Room: str(), File: str(), Offset: num(), Size: num(), MIME: str(), Data: data()}
	default:
		return &Error{Code: ErrorCode(num()), Flags: ErrorFlags(r.IntN(4)), Room: str(), Text: str(), ID: id()}
	}
}

// TestRandomFramesCoverEveryType keeps the round-trip generator honest:
// it makes each of its sixteen frame types, and files in every frame
// that carries them.
func TestRandomFramesCoverEveryType(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 15))
	types := map[Type]int{}
	withFile := map[Type]int{}
	for range 1000 {
		m := randomMessagesFrame(r)
		types[m.Type()]++
		if carriesFile(m) {
			withFile[m.Type()]++
		}
	}
	if len(types) != 16 {
		t.Errorf("the generator made %d types, want 16: %v", len(types), types)
	}
	for _, typ := range []Type{TypeSend, TypeMessage, TypeNotice, TypeUpdate, TypePage, TypeUploaded} {
		if withFile[typ] == 0 {
			t.Errorf("the generator made no %v with a file", typ)
		}
	}
}

// carriesFile reports whether m has a file (or, for SEND, a file id).
func carriesFile(m Message) bool {
	switch m := m.(type) {
	case *Send:
		return m.File != ""
	case *Msg:
		return m.File != nil
	case *Notice:
		return m.Msg.File != nil
	case *Update:
		return m.State != nil && m.State.File != nil
	case *Page:
		for i := range m.Messages {
			if m.Messages[i].File != nil {
				return true
			}
		}
	case *Uploaded:
		return m.File != nil
	}
	return false
}
