package protocol

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestDMRoom(t *testing.T) {
	if got := DMRoom("Bob", "alice"); got != "@alice@bob" {
		t.Fatalf("DMRoom = %q", got)
	}
	if DMRoom("alice", "BOB") != DMRoom("bob", "Alice") {
		t.Fatal("DMRoom depends on order or case")
	}
	a, b, ok := ParseDM("@BOB@Alice")
	if !ok || a != "alice" || b != "bob" {
		t.Fatalf("ParseDM = %q %q %v", a, b, ok)
	}
	for _, bad := range []string{"@", "@@", "@bob", "@bob@", "@@bob", "@a@b@c", "general", "@a b @c"} {
		if _, _, ok := ParseDM(bad); ok {
			t.Errorf("ParseDM(%q) accepted", bad)
		}
		if bad != "general" && CheckRoom(bad) == nil {
			t.Errorf("CheckRoom(%q) accepted", bad)
		}
	}
	if CheckRoom("@alice@bob") != nil || CheckRoom("general") != nil || CheckRoom("a@b") != nil {
		t.Fatal("CheckRoom refused a good room")
	}
	if p, ok := DMPeer("@alice@bob", "Alice"); !ok || p != "bob" {
		t.Fatalf("DMPeer = %q %v", p, ok)
	}
	if _, ok := DMPeer("@alice@bob", "carol"); ok {
		t.Fatal("carol is a peer of alice and bob's DM")
	}
	if p, ok := DMPeer("@alice@alice", "alice"); !ok || p != "alice" {
		t.Fatalf("DM with oneself: %q %v", p, ok)
	}
	for _, bad := range []string{"a@b", "＠bob", "bob@", "﹫bob", "bob\uFE6B"} {
		if CheckMemberName(bad) == nil {
			t.Errorf("CheckMemberName(%q) accepted", bad)
		}
	}
}

func TestMentions(t *testing.T) {
	yes := []struct{ text, name string }{
		{"@bob hi", "bob"}, {"hi @Bob", "bob"}, {"hi @BOB, how", "bob"}, {"(@bob)", "bob"},
		{"@ＢＯＢ!", "bob"}, {"hey @bob smith", "Bob Smith"}, {"@bob", "bob"}, {"שלום @דני", "דני"},
		{"@राम जी", "राम"}, {"@bobé hi", "bobé"}, {"@👍🏽!", "👍🏽"},
		{"@bob's", "bob"}, {"@bob-smith", "bob"}, {"@@bob", "bob"}, {"@bob.", "bob"},
	}
	for _, c := range yes {
		if !Mentions(c.text, c.name) {
			t.Errorf("Mentions(%q, %q) = false", c.text, c.name)
		}
	}
	no := []struct{ text, name string }{
		{"@bobby hi", "bob"}, {"bob@example.org", "example"}, {"hi bob", "bob"}, {"@ bob", "bob"},
		{"@bo", "bob"}, {"x_@bob", "bob"},
		// The name goes on: a letter, digit, '_', combining mark (Devanagari
		// vowel signs and viramas, Hebrew points, a decomposed accent) or an
		// emoji joiner or skin tone after it.
		{"@bob_2 hi", "bob"}, {"@bob2", "bob"}, {"@राम जी", "र"}, {"@bobé hi", "bobe"},
		{"@👍🏽", "👍"}, {"@👨‍💻", "👨"},
		// A combining mark before the '@' makes it part of a word too.
		{"café@bob", "bob"},
	}
	for _, c := range no {
		if Mentions(c.text, c.name) {
			t.Errorf("Mentions(%q, %q) = true", c.text, c.name)
		}
	}
	got := MentionedKeys("hi @Bob Smith and @carol.", 32)
	for _, want := range []string{"bob", "bob smith", "carol"} {
		if !slices.Contains(got, want) {
			t.Errorf("MentionedKeys misses %q: %q", want, got)
		}
	}
	if n := len(MentionedKeys(string(make([]byte, 0))+repeat("@a ", 2000), 32)); n > 64 {
		t.Errorf("MentionedKeys returned %d keys", n)
	}
}

func repeat(s string, n int) string {
	b := make([]byte, 0, len(s)*n)
	for range n {
		b = append(b, s...)
	}
	return string(b)
}

// FuzzMentions checks that the server's candidates (MentionedKeys) and the
// client's rule (Mentions) agree on every text: a name whose key is among
// the candidates of a text is mentioned by it, and the other way round.
func FuzzMentions(f *testing.F) {
	for _, s := range [][2]string{
		{"@bob hi", "bob"}, {"hey @Bob Smith!", "bob smith"}, {"@ＢＯＢ", "bob"}, {"a@b.org", "b"},
		{"@राम जी", "र"}, {"@bobe\u0301 hi", "bobé"}, {"x_@bob", "bob"}, {"@bob_2", "bob"},
		{"@\U0001F44D\U0001F3FD", "\U0001F44D"}, {"שלום @דני!", "דני"}, {"@\u203ea", "\u203ea"},
		{"@bob＠carol", "carol"}, {"@" + repeat("a ", 70) + "@bob", "bob"},
	} {
		f.Add(s[0], s[1])
	}
	const maxName = 32
	f.Fuzz(func(t *testing.T, text, name string) {
		keys := MentionedKeys(text, maxName)
		if len(keys) > maxMentionAts*maxMentionCandidates {
			t.Fatalf("%d candidate keys", len(keys))
		}
		if CheckMemberName(name) != nil || len(Key(name)) > maxName {
			return // no server has this name
		}
		mentioned := Mentions(text, name)
		if in := slices.Contains(keys, Key(name)); in != mentioned {
			t.Fatalf("Mentions(%q, %q) = %v, but MentionedKeys has its key: %v (%q)", text, name, mentioned, in, keys)
		}
	})
}

// TestMentionBounds: the bounds of the rule hold alike for Mentions and
// MentionedKeys, and no candidate runs past an '@' in any of its forms.
func TestMentionBounds(t *testing.T) {
	mentioned := func(text, name string) bool {
		m, k := Mentions(text, name), slices.Contains(MentionedKeys(text, 32), Key(name))
		if m != k {
			t.Errorf("%q: Mentions says %v, MentionedKeys %v", text, m, k)
		}
		return m
	}
	// The 8th candidate after an '@' counts, the 9th does not.
	if !mentioned("@a b c d e f g h", "a b c d e f g h") || mentioned("@a b c d e f g h i", "a b c d e f g h i") {
		t.Error("the bound on candidates is not 8")
	}
	// 16 '@' that start mentions, then bob.
	if mentioned(repeat("@x ", 16)+"@bob", "bob") || !mentioned(repeat("@x ", 15)+"@bob", "bob") {
		t.Error("the bound on '@' is not 16")
	}
	if n := len(MentionedKeys(repeat("@"+repeat("a.", 20)+" ", 40), 32)); n != 8 {
		t.Errorf("MentionedKeys gives %d keys for a repeated '@a.a.a…', want 8", n)
	}
	var many strings.Builder // 20 '@', each followed by 10 words: 16 × 8 candidates count
	for i := range 20 {
		many.WriteString("@")
		for j := range 10 {
			fmt.Fprintf(&many, "w%d.%d ", i, j)
		}
	}
	if n := len(MentionedKeys(many.String(), 32)); n != maxMentionAts*maxMentionCandidates {
		t.Errorf("MentionedKeys gives %d keys, want %d", n, maxMentionAts*maxMentionCandidates)
	}
	// A long mention in fullwidth letters: 32 bytes of key, 96 of spelling.
	long := repeat("ａ", 31) + "b"
	if !mentioned("hi @"+long+"!", Key(long)) {
		t.Error("a 32-byte name in fullwidth letters is not mentioned")
	}
	for _, text := range []string{"@bob＠carol", "@bob﹫carol", "@bob@carol", "@bob\ncarol"} {
		for _, k := range MentionedKeys(text, 32) {
			if k != "bob" {
				t.Errorf("MentionedKeys(%q) has %q", text, k)
			}
		}
	}
	// The runes whose key holds an '@' are those endsMention knows.
	for r := rune(0); r <= 0x2FFFF; r++ {
		if (r < 0xD800 || r > 0xDFFF) && strings.Contains(Key(string(r)), "@") && !endsMention(r) {
			t.Errorf("%U: key %q, endsMention %v", r, Key(string(r)), endsMention(r))
		}
	}
}

func TestMentionCandidates(t *testing.T) {
	got := MentionedKeys("@Bob Smith, hi", 32)
	if want := []string{"bob", "bob smith", "bob smith,", "bob smith, hi"}; !slices.Equal(got, want) {
		t.Errorf("candidates %q, want %q", got, want)
	}
}
