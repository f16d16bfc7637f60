package ui

import (
	"slices"
	"testing"
)

func TestFindLinks(t *testing.T) {
	type want struct{ text, url string }
	for _, c := range []struct {
		in   string
		want []want
	}{
		{"no links here", nil},
		{"https://example.org", []want{{"https://example.org", "https://example.org"}}},
		{"see http://example.org/a?b=c&d#e, then", []want{{"http://example.org/a?b=c&d#e", "http://example.org/a?b=c&d#e"}}},
		{"HTTPS://EXAMPLE.ORG.", []want{{"HTTPS://EXAMPLE.ORG", "HTTPS://EXAMPLE.ORG"}}},
		{"(at https://en.wikipedia.org/wiki/Go_(game))", []want{{"https://en.wikipedia.org/wiki/Go_(game)", "https://en.wikipedia.org/wiki/Go_(game)"}}},
		{"(https://example.org)", []want{{"https://example.org", "https://example.org"}}},
		{"go to www.example.org/x!", []want{{"www.example.org/x", "https://www.example.org/x"}}},
		{"WWW.Example.org", []want{{"WWW.Example.org", "https://WWW.Example.org"}}},
		{"two: https://a.example https://b.example", []want{{"https://a.example", "https://a.example"}, {"https://b.example", "https://b.example"}}},
		{"<https://example.org/x>", []want{{"https://example.org/x", "https://example.org/x"}}},
		{`"https://example.org"`, []want{{"https://example.org", "https://example.org"}}},
		{"ünïcode https://пример.рф/путь ok", []want{{"https://пример.рф/путь", "https://пример.рф/путь"}}},
		{"https://[::1]:8080/x", []want{{"https://[::1]:8080/x", "https://[::1]:8080/x"}}},
		// Links to messages (actions.go).
		{"see chat://general/42.", []want{{"chat://general/42", "chat://general/42"}}},
		{"chat://@alice@bob/7", []want{{"chat://@alice@bob/7", "chat://@alice@bob/7"}}},
		// Not links.
		{"chat://", nil},
		{"https://", nil},
		{"https:// example.org", nil},
		{"xhttps://example.org", nil},
		{"mail me at bob@www.example.org", nil},
		{"www.", nil},
		{"www.example", nil},
		{"ftp://example.org", nil},
		{"javascript:alert(1)", nil},
	} {
		got := findLinks(c.in)
		var gw []want
		for _, l := range got {
			gw = append(gw, want{c.in[l.from:l.to], l.url})
			runes := []rune(c.in)
			if string(runes[l.start:l.end]) != c.in[l.from:l.to] {
				t.Errorf("%q: runes [%d,%d) are %q, bytes [%d,%d) %q", c.in, l.start, l.end, string(runes[l.start:l.end]), l.from, l.to, c.in[l.from:l.to])
			}
		}
		if !slices.Equal(gw, c.want) {
			t.Errorf("findLinks(%q) = %q, want %q", c.in, gw, c.want)
		}
	}
}

func TestMessageLinks(t *testing.T) {
	for _, c := range []struct {
		in   string
		room string
		seq  uint64
		ok   bool
	}{
		{"chat://general/42", "general", 42, true},
		{"chat://@alice@bob/7", "@alice@bob", 7, true},
		{"chat://general/0", "", 0, false},
		{"chat://general/x", "", 0, false},
		{"chat:///42", "", 0, false},
		{"https://general/42", "", 0, false},
	} {
		room, seq, ok := parseMessageLink(c.in)
		if room != c.room || seq != c.seq || ok != c.ok {
			t.Errorf("parseMessageLink(%q) = %q, %d, %v; want %q, %d, %v", c.in, room, seq, ok, c.room, c.seq, c.ok)
		}
	}
	if l := MessageLink("General", 42); l != "chat://general/42" {
		t.Errorf("MessageLink = %q", l)
	}
}
