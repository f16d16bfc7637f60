package protocol

import (
	"errors"
	"reflect"
	"testing"
)

// modTypes are the types of the moderation revision (README.md section 4,
// "Moderation").
var modTypes = map[Type]bool{TypeModerate: true, TypeModerated: true, TypeModEvent: true}

// modEdgeCases are hand-made frame bodies of the moderation frames and of
// the fields JOIN and JOINED gained: each decodes to want, or fails with
// code. They are also seeds of FuzzDecode.
var modEdgeCases = []struct {
	name string
	body []byte
	want Message
	code ErrorCode
}{
	// JOIN and JOINED of before the moderation revision: no invite; no
	// topic and modes, or a topic without modes.
	{"join-before-invite", []byte{byte(TypeJoin), 1, 'r', 1, 'n', 0, 0, 0, 0, 7},
		&Join{Room: "r", Name: "n", Epoch: 7}, 0},
	{"joined-before-topic", []byte{byte(TypeJoined), 1, 'r', 1, 'n', 0, 1, 1, 1, 1, 'n', 7, 1, 0},
		&Joined{Room: "r", Name: "n", Head: 1, Count: 1, Members: []string{"n"}, Epoch: 7, Read: 1}, 0},
	{"joined-topic-only", []byte{byte(TypeJoined), 1, 'r', 1, 'n', 0, 1, 1, 1, 1, 'n', 7, 1, 0, 2, 'h', 'i'},
		&Joined{Room: "r", Name: "n", Head: 1, Count: 1, Members: []string{"n"}, Epoch: 7, Read: 1, Topic: "hi"}, 0},
	{"joined-topic-not-utf8", []byte{byte(TypeJoined), 1, 'r', 1, 'n', 0, 1, 1, 1, 1, 'n', 7, 1, 0, 1, 0xff},
		nil, CodeInvalidUTF8},
	{"join-invite-runs-out", []byte{byte(TypeJoin), 1, 'r', 1, 'n', 0, 0, 0, 0, 7, 5, 'a'},
		nil, CodeMalformed},
	// An action this revision does not know decodes (the server refuses it
	// with not-found, a client ignores such a MODEVENT).
	{"moderate-unknown-action", []byte{byte(TypeModerate), 1, 'r', 99, 0, 0, 0, 0},
		&Moderate{Room: "r", Action: 99}, 0},
	{"modevent-unknown-action", []byte{byte(TypeModEvent), 1, 'r', 99, 1, 'a', 0, 0, 0, 0},
		&ModEvent{Room: "r", Action: 99, Actor: "a"}, 0},
	{"moderate-without-action", []byte{byte(TypeModerate), 1, 'r'}, nil, CodeMalformed},
	{"moderate-text-not-utf8", []byte{byte(TypeModerate), 0, 1, 0, 0, 0, 2, 0xc3, 0x28}, nil, CodeInvalidUTF8},
	{"moderated-target-not-utf8", []byte{byte(TypeModerated), 1, 'r', 4, 1, 0xfe, 0}, nil, CodeInvalidUTF8},
	{"modevent-until-bad-varint", []byte{byte(TypeModEvent), 1, 'r', 5, 1, 'a', 1, 'b', 0, 0x80}, nil, CodeMalformed},
}

func TestModerationEdgeCases(t *testing.T) {
	for _, tc := range modEdgeCases {
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

// TestModerationTruncated: the moderation frames have only required
// fields, so every proper prefix of their golden frames is refused.
func TestModerationTruncated(t *testing.T) {
	for _, g := range goldenMessages {
		if !modTypes[g.msg.Type()] {
			continue
		}
		body := Encode(g.msg)[LengthSize:]
		for n := 1; n < len(body); n++ {
			m, err := Decode(body[:n])
			var de *DecodeError
			if !errors.As(err, &de) || (de.Code != CodeMalformed && de.Code != CodeInvalidUTF8) {
				t.Errorf("%s cut to %d of %d bytes: Decode = %#v, %v", g.name, n, len(body), m, err)
			}
		}
	}
}

// TestModerationAppendedFields: a later revision may append fields to the
// moderation frames and to JOIN; a receiver of this one reads what it knows.
func TestModerationAppendedFields(t *testing.T) {
	for _, g := range goldenMessages {
		if !modTypes[g.msg.Type()] && g.msg.Type() != TypeJoin {
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

// TestModActionNumbers pins the action numbers and names of the spec.
func TestModActionNumbers(t *testing.T) {
	want := []string{1: "oper", 2: "op", 3: "deop", 4: "kick", 5: "ban", 6: "ban-address", 7: "unban",
		8: "mute", 9: "unmute", 10: "delete", 11: "topic", 12: "invite-only-on", 13: "invite-only-off", 14: "invite"}
	for i, name := range want {
		a := ModAction(i)
		if name == "" {
			if a.Known() {
				t.Errorf("action %d is known as %q", i, a)
			}
			continue
		}
		if a.String() != name || !a.Known() {
			t.Errorf("action %d is %q, want %q", i, a, name)
		}
		if p, ok := ParseModAction(name); !ok || p != a {
			t.Errorf("ParseModAction(%q) = %d, %v", name, p, ok)
		}
	}
	if ModAction(15).Known() || ModAction(255).String() != "unknown" {
		t.Error("action 15 or 255 is known")
	}
	if ModeInviteOnly != 1 || ModeOperator != 2 || ModeMuted != 4 || ModeNoTyping != 8 {
		t.Error("JOINED modes are not bits 0, 1, 2, 3")
	}
}

// TestModerationErrorCodes pins the codes 207-211: not closing.
func TestModerationErrorCodes(t *testing.T) {
	for code, name := range map[ErrorCode]string{207: "banned", 208: "muted", 209: "invite-only", 210: "kicked", 211: "not-found"} {
		if code.String() != name || code.DefaultFlags() != 0 {
			t.Errorf("code %d: %q flags %d, want %q not closing", code, code, code.DefaultFlags(), name)
		}
	}
}
