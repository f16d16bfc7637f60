package protocol

import (
	"slices"
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
	for _, bad := range []string{"a@b", "＠bob", "bob@"} {
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
// client's rule (Mentions) agree: a name whose key is among the candidates
// of a text is mentioned by it, and the other way round, as long as the
// text stays under the candidate cap.
func FuzzMentions(f *testing.F) {
	for _, s := range [][2]string{
		{"@bob hi", "bob"}, {"hey @Bob Smith!", "bob smith"}, {"@ＢＯＢ", "bob"}, {"a@b.org", "b"},
		{"@राम जी", "र"}, {"@bobe\u0301 hi", "bobé"}, {"x_@bob", "bob"}, {"@bob_2", "bob"},
		{"@\U0001F44D\U0001F3FD", "\U0001F44D"}, {"שלום @דני!", "דני"}, {"@\u203ea", "\u203ea"},
	} {
		f.Add(s[0], s[1])
	}
	const maxName = 32
	f.Fuzz(func(t *testing.T, text, name string) {
		keys := MentionedKeys(text, maxName)
		if len(keys) > 4*maxMentions {
			t.Fatalf("%d candidate keys", len(keys))
		}
		mentioned := Mentions(text, name)
		if CheckMemberName(name) != nil || len(name) > maxName-2 || len(Key(name)) > maxName ||
			len(keys) == 4*maxMentions {
			return
		}
		if in := slices.Contains(keys, Key(name)); in != mentioned {
			t.Fatalf("Mentions(%q, %q) = %v, but MentionedKeys has its key: %v (%q)", text, name, mentioned, in, keys)
		}
	})
}
