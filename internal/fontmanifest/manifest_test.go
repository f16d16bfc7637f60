package fontmanifest

import (
	"strings"
	"testing"
)

func TestRanges(t *testing.T) {
	rs, err := ParseRanges("U+05D0-05EA, U+0590-05CF,U+20AA,20ab, fb1d-fb4f")
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.String(); got != "590-5ea,20aa-20ab,fb1d-fb4f" {
		t.Errorf("normalized: %s", got)
	}
	for r, want := range map[rune]bool{0x58F: false, 0x590: true, 0x5EA: true, 0x5EB: false, 0x20AB: true, 0xFB4F: true, 0xFB50: false} {
		if rs.Contains(r) != want {
			t.Errorf("Contains(%X) = %v", r, !want)
		}
	}
	other := Ranges{{0x5A0, 0x5B0}, {0x20AA, 0x20AA}, {0xFB00, 0xFB20}}
	if got := rs.Minus(other).String(); got != "590-59f,5b1-5ea,20ab,fb21-fb4f" {
		t.Errorf("Minus: %s", got)
	}
	if got := rs.Intersect(other).String(); got != "5a0-5b0,20aa,fb1d-fb20" {
		t.Errorf("Intersect: %s", got)
	}
	if n := rs.Count(); n != 0x5EA-0x590+1+2+0xFB4F-0xFB1D+1 {
		t.Errorf("Count = %d", n)
	}
	for _, bad := range []string{"xyz", "5ea-590", "110000", "U+"} {
		if _, err := ParseRanges(bad); err == nil {
			t.Errorf("ParseRanges(%q) accepted", bad)
		}
	}
}

func TestParse(t *testing.T) {
	m, err := Parse([]byte(`{"files":[{"file":"a.woff","family":"A","ranges":"590-5ff","size":10},{"file":"cjk/b-1.woff","ranges":"4e00-4e10","v":"abc"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if i := m.Lookup(0x4E05); i != 1 || m.Files[i].URL() != "cjk/b-1.woff?v=abc" {
		t.Errorf("Lookup(4E05) = %d", i)
	}
	if i := m.Lookup(0x41); i != -1 {
		t.Errorf("Lookup(A) = %d", i)
	}
	if m.Files[0].URL() != "a.woff" {
		t.Errorf("URL without a version: %s", m.Files[0].URL())
	}
	for _, bad := range []string{
		`{"files":[{"file":"a.woff","ranges":"590-5ff"},{"file":"b.woff","ranges":"5f0"}]}`, // claimed twice
		`{"files":[{"file":"../a.woff","ranges":"590"}]}`,
		`{"files":[{"file":"a/b/c.woff","ranges":"590"}]}`,
		`{"files":[{"file":".a.woff","ranges":"590"}]}`,
		`{"files":[{"file":"A.woff","ranges":"590"}]}`,
		`{"files":[{"file":"a.woff","ranges":"zz"}]}`,
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		} else if !strings.HasPrefix(err.Error(), "font manifest") && !strings.Contains(err.Error(), "bad") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
