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
	}
	for _, c := range yes {
		if !Mentions(c.text, c.name) {
			t.Errorf("Mentions(%q, %q) = false", c.text, c.name)
		}
	}
	no := []struct{ text, name string }{
		{"@bobby hi", "bob"}, {"bob@example.org", "example"}, {"hi bob", "bob"}, {"@ bob", "bob"},
		{"@bo", "bob"}, {"x_@bob", "bob"},
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
