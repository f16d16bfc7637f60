package platform

import "testing"

func TestCheckURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://example.org/a_(b)?q=1#x": "https://example.org/a_(b)?q=1#x",
		"HTTP://Example.org":              "HTTP://Example.org",
		"https://www.example.org":         "https://www.example.org",
		"mailto:bob@example.org":          "mailto:bob@example.org",
		"https://пример.рф/путь":          "https://пример.рф/путь",
	} {
		if got, err := CheckURL(in); err != nil || got != want {
			t.Errorf("CheckURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "javascript:alert(1)", "file:///etc/passwd", "data:text/html,hi", "ftp://example.org",
		"https://", "https:///path", "mailto:", "-n https://example.org", "example.org",
		"https://example.org/\nrm -rf", "intent://scan/#Intent;scheme=zxing;end",
	} {
		if got, err := CheckURL(in); err == nil {
			t.Errorf("CheckURL(%q) = %q, accepted", in, got)
		}
	}
	if err := OpenURL("file:///etc/passwd"); err == nil {
		t.Error("OpenURL opened a file URL")
	}
}
