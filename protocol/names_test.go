package protocol

import (
	"errors"
	"testing"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		want error
	}{
		{"alice", nil},
		{"Zoë", nil},
		{"李小龍", nil},
		{"مریم", nil},
		{"mary jane", nil},
		{"a~b", nil},
		{"👩‍💻", nil}, // emoji with zero-width joiner
		{"", ErrEmpty},
		{" alice", ErrEdgeSpace},
		{"alice ", ErrEdgeSpace},
		{"al\tice", ErrInvisible},
		{"al\nice", ErrInvisible},
		{"ali\u200bce", ErrInvisible}, // zero-width space
		{"\u202eecila", ErrInvisible}, // right-to-left override
		{"\u3164", ErrInvisible},      // Hangul filler
		{"\u2800", ErrInvisible},      // braille blank
		{"a\u00a0b", ErrWhitespace},   // no-break space
		{"\u0301", ErrNoVisible},      // a lone combining mark
	}
	for _, tc := range tests {
		if got := CheckName(tc.name); !errors.Is(got, tc.want) {
			t.Errorf("CheckName(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestKey(t *testing.T) {
	same := [][2]string{
		{"Alice", "alice"},
		{"ALICE", "alice"},
		{"Straße", "STRASSE"},
		{"Ｂｏｂ", "bob"},       // fullwidth letters
		{"Zoë", "zoe\u0308"}, // composed and decomposed
	}
	for _, p := range same {
		if Key(p[0]) != Key(p[1]) {
			t.Errorf("Key(%q)=%q and Key(%q)=%q differ", p[0], Key(p[0]), p[1], Key(p[1]))
		}
	}
	if Key("alice") == Key("alicia") {
		t.Error("different names share a key")
	}
}

// TestKeyASCII: the shortcut for ASCII gives what the full rule gives.
func TestKeyASCII(t *testing.T) {
	full := func(s string) string { return norm.NFKC.String(cases.Fold().String(norm.NFKC.String(s))) }
	var all []byte
	for c := range 128 {
		all = append(all, byte(c))
		if s := string(rune(c)); Key(s) != full(s) {
			t.Errorf("Key(%q) = %q, the rule says %q", s, Key(s), full(s))
		}
	}
	for _, s := range []string{string(all), "General", "Bob Smith", "a@B.ORG"} {
		if Key(s) != full(s) {
			t.Errorf("Key(%q) = %q, the rule says %q", s, Key(s), full(s))
		}
	}
}
