//go:build !js

package platform

import (
	"context"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"gioui.org/font"
	"gioui.org/io/system"
	"gioui.org/text"
	"golang.org/x/image/math/fixed"

	"chat/app/internal/textdir"
	fontfiles "chat/assets/fonts"
	"chat/internal/fontmanifest"
	"chat/protocol"
)

// scripts are the texts the tests shape: what a person might write.
var scripts = []struct{ name, text string }{
	{"Hebrew", "שלום עולם"},
	{"Arabic", "مرحبا بالعالم"},
	{"emoji", "😀🎉👍🏽❤️🇯🇵👨‍👩‍👧🐱"},
	// The reactions a message can have (protocol.Reactions): the
	// reaction chips and picker must draw every one.
	{"reactions", strings.Join(protocol.Reactions[:], "")},
	{"Chinese", "你好世界，國語"},
	{"Japanese", "こんにちは カタカナ"},
	{"Korean", "안녕하세요 한국어"},
	{"Devanagari", "नमस्ते दुनिया क्षत्रिय"},
}

// embeddedSource reads the files ./build.sh fonts wrote, as the desktop
// app does, counting what is read.
type embeddedSource struct {
	files fs.FS
	read  atomic.Int64 // bytes of font files
}

func (s *embeddedSource) Fetch(ctx context.Context, name string) ([]byte, error) {
	data, err := fsSource{fsys: s.files}.Fetch(ctx, name)
	if err == nil && name != fontmanifest.Name {
		s.read.Add(int64(len(data)))
	}
	return data, err
}

func needFonts(t *testing.T) fs.FS {
	t.Helper()
	files := fontfiles.FS()
	if _, err := fs.Stat(files, fontmanifest.Name); err != nil {
		msg := "the fonts are not built (assets/fonts): run ./build.sh fonts"
		if os.Getenv("CHAT_REQUIRE_ARTIFACTS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return files
}

type shaped struct {
	glyphs []text.Glyph
	runes  int
}

func shape(sh *text.Shaper, s string, weight font.Weight) shaped {
	return shapeDir(sh, s, weight, system.LTR)
}

func shapeDir(sh *text.Shaper, s string, weight font.Weight, dir system.TextDirection) shaped {
	sh.LayoutString(text.Parameters{
		Font:     font.Font{Typeface: "Go", Weight: weight},
		PxPerEm:  fixed.I(20),
		MaxWidth: 1e6,
		Locale:   system.Locale{Language: "und", Direction: dir},
	}, s)
	var out shaped
	for {
		g, ok := sh.NextGlyph()
		if !ok {
			return out
		}
		out.glyphs = append(out.glyphs, g)
		out.runes += int(g.Runes)
	}
}

// notdef counts the glyphs that are the missing glyph (glyph 0: a box).
func (s shaped) notdef() int {
	n := 0
	for _, g := range s.glyphs {
		if uint32(g.ID) == 0 {
			n++
		}
	}
	return n
}

// waitLoaded waits until the loader has fetched what the shaped text asked
// for and returns the next frame's shaper.
func waitLoaded(t *testing.T, l *FontLoader) *text.Shaper {
	t.Helper()
	select {
	case <-l.Idle():
	case <-time.After(30 * time.Second):
		t.Fatal("the fonts did not load in 30 s")
	}
	return l.Shaper()
}

// TestFontLoaderShapesEveryScript: text in Hebrew, Arabic, emoji, CJK and
// Devanagari comes out as boxes with the Go fonts; shaping it makes the
// loader fetch exactly the files those characters are in, and the next
// shaper draws every character with a real glyph. Arabic letters join
// (contextual forms), Devanagari forms conjuncts, Hebrew and Arabic run
// right to left.
func TestFontLoaderShapesEveryScript(t *testing.T) {
	files := needFonts(t)
	src := &embeddedSource{files: files}
	l := NewFontLoader(FontOptions{Source: src, Logf: t.Logf})
	var changes atomic.Int32
	l.OnChange(func() { changes.Add(1) })

	sh := l.Shaper()
	for _, s := range scripts {
		if got := shape(sh, s.text, font.Normal); got.notdef() == 0 {
			t.Errorf("%s: no box before any font was loaded: the test would prove nothing", s.name)
		}
	}
	start := time.Now()
	sh = waitLoaded(t, l)
	t.Logf("fetched, parsed and made a new shaper in %v", time.Since(start))
	if changes.Load() == 0 {
		t.Error("the loader loaded faces but never told the window")
	}
	loaded := l.Loaded()
	t.Logf("loaded %d files, %d bytes: %v", len(loaded), src.read.Load(), loaded)
	for _, s := range scripts {
		for _, w := range []font.Weight{font.Normal, font.Bold} {
			got := shape(sh, s.text, w)
			if n := got.notdef(); n > 0 {
				t.Errorf("%s (weight %v): %d of %d glyphs are still boxes", s.name, w, n, len(got.glyphs))
			}
		}
	}
	for _, want := range []string{"noto-sans-hebrew-hebrew.woff", "noto-sans-arabic-arabic.woff", "noto-sans-devanagari-devanagari.woff"} {
		if !slices.Contains(loaded, want) {
			t.Errorf("%s was not loaded", want)
		}
	}
	// Lazy: only the slices holding these characters, not the 196 files
	// (5 MB) there are.
	if len(loaded) > 20 || src.read.Load() > 1_500_000 {
		t.Errorf("loaded %d files, %d bytes, for a few words", len(loaded), src.read.Load())
	}

	// Shaping, not just glyphs: the three behs of "ببب" take their initial,
	// medial and final forms (Noto draws each as its dotless form and a dot:
	// three forms and the dot make four glyph shapes; unjoined, two);
	// क्ष is one conjunct glyph, not three.
	if g := shape(sh, "ببب", font.Normal).glyphs; distinct(g) < 4 {
		t.Errorf("Arabic is not joined: glyphs %v", ids(g))
	}
	if g := shape(sh, "क्ष", font.Normal).glyphs; len(g) >= 3 {
		t.Errorf("Devanagari क्ष is %d glyphs, want a conjunct", len(g))
	}
	// Emoji sequences are one glyph each: a thumb with a skin tone, a flag
	// of two regional indicators, a family joined by ZWJs.
	for _, s := range []string{"👍🏽", "🇯🇵", "👨‍👩‍👧"} {
		if g := shape(sh, s, font.Normal).glyphs; len(g) != 1 || uint32(g[0].ID) == 0 {
			t.Errorf("%q is %d glyphs %v, want one", s, len(g), ids(g))
		}
	}
	for _, s := range []string{"שלום עולם", "مرحبا بالعالم"} {
		for _, g := range shape(sh, s, font.Normal).glyphs {
			if g.Flags&text.FlagTowardOrigin == 0 {
				t.Errorf("%q: a glyph is not in a right-to-left run", s)
				break
			}
		}
	}
	// A Latin line next to Hebrew keeps its order; the Hebrew word runs
	// right to left inside it (Gio's bidi).
	mixed := shape(sh, "abc שלום def", font.Normal).glyphs
	var rtl, ltr int
	for _, g := range mixed {
		if g.Flags&text.FlagTowardOrigin != 0 {
			rtl++
		} else {
			ltr++
		}
	}
	if rtl != 4 || ltr < 8 {
		t.Errorf("mixed line: %d right-to-left glyphs, %d left-to-right; want 4 and the rest", rtl, ltr)
	}

	// A Hebrew paragraph laid out right to left (textdir, as the message
	// list does) has its first word on the right: שלום left of בית would
	// read "house peace".
	for _, s := range []string{"שלום בית", "سلام كتب"} {
		first, second, _ := strings.Cut(s, " ")
		a, b := idSet(shape(sh, first, font.Normal).glyphs), idSet(shape(sh, second, font.Normal).glyphs)
		for id := range a {
			if b[id] {
				t.Fatalf("%q: the words share glyph %d; the test needs words without a common letter", s, uint32(id))
			}
		}
		g := shapeDir(sh, s, font.Normal, textdir.Of(s)).glyphs
		var firstLeft, secondRight fixed.Int26_6 = 1 << 30, -1 << 30
		for _, gl := range g {
			if a[gl.ID] {
				firstLeft = min(firstLeft, gl.X)
			}
			if b[gl.ID] {
				secondRight = max(secondRight, gl.X+gl.Advance)
			}
		}
		if secondRight > firstLeft {
			t.Errorf("%q laid out right to left: its second word ends at %v, right of where the first starts (%v)", s, secondRight, firstLeft)
		}
	}
	// The paragraph's direction places what is neutral at its ends: the
	// "!" that ends a Hebrew sentence is at its left end (with a
	// left-to-right paragraph it would hang at the right, after the first
	// word).
	for _, s := range []string{"שלום!", "مرحبا!"} {
		word := idSet(shape(sh, strings.TrimSuffix(s, "!"), font.Normal).glyphs)
		bang := idSet(shape(sh, "!", font.Normal).glyphs)
		var wordLeft, bangX fixed.Int26_6 = 1 << 30, 0
		for _, gl := range shapeDir(sh, s, font.Normal, textdir.Of(s)).glyphs {
			if word[gl.ID] {
				wordLeft = min(wordLeft, gl.X)
			}
			if bang[gl.ID] {
				bangX = gl.X
			}
		}
		if bangX >= wordLeft {
			t.Errorf("%q right to left: the ! is at %v, not left of the word (%v)", s, bangX, wordLeft)
		}
	}

	// A space between Chinese words is the Chinese face's space, not a
	// missing glyph's em-wide gap; the space after an emoji is no wider
	// than an em either (Noto Emoji's own is 1.3 em).
	for _, s := range []string{"你好 世界", "שלום עולם", "🐱 end"} {
		for _, g := range shape(sh, s, font.Normal).glyphs {
			if g.Bounds.Empty() && g.Advance > fixed.I(20) || uint32(g.ID) == 0xFFFFFFFF && !strings.HasPrefix(s, "🐱") {
				t.Errorf("a space in %q is %v wide (glyph %x)", s, g.Advance, uint32(g.ID))
			}
		}
	}

	// Asking again for what is loaded fetches nothing.
	before := src.read.Load()
	for _, s := range scripts {
		l.Need(s.text)
	}
	<-l.Idle()
	if src.read.Load() != before {
		t.Errorf("Need fetched again what was loaded")
	}
}

func idSet(gs []text.Glyph) map[text.GlyphID]bool {
	ids := map[text.GlyphID]bool{}
	for _, g := range gs {
		if g.Advance > 0 && uint32(g.ID) != 0 {
			ids[g.ID] = true
		}
	}
	return ids
}

func distinct(gs []text.Glyph) int {
	seen := map[text.GlyphID]bool{}
	for _, g := range gs {
		seen[g.ID] = true
	}
	return len(seen)
}

func ids(gs []text.Glyph) []uint32 {
	var out []uint32
	for _, g := range gs {
		out = append(out, uint32(g.ID))
	}
	return out
}

// TestFontLoaderNeedFetchesAhead: Need loads the faces for text before it
// is drawn, and Latin text needs nothing.
func TestFontLoaderNeedFetchesAhead(t *testing.T) {
	src := &embeddedSource{files: needFonts(t)}
	l := NewFontLoader(FontOptions{Source: src, Logf: t.Logf})
	l.Need("plain ASCII, Ελληνικά, кириллица: the Go fonts have it all")
	<-l.Idle()
	if got := l.Loaded(); len(got) != 0 || src.read.Load() != 0 {
		t.Errorf("Latin, Greek and Cyrillic loaded %v", got)
	}
	l.Need("שלום")
	sh := waitLoaded(t, l)
	if got := l.Loaded(); !slices.Equal(got, []string{"noto-sans-hebrew-hebrew.woff"}) {
		t.Errorf("loaded %v, want the Hebrew file", got)
	}
	if n := shape(sh, "שלום", font.Normal).notdef(); n > 0 {
		t.Errorf("%d boxes after Need", n)
	}
}

// TestFontLoaderWithoutFonts: a server without fonts (no manifest) leaves
// boxes, says so once, and the app goes on.
func TestFontLoaderWithoutFonts(t *testing.T) {
	var logs atomic.Int32
	var msg atomic.Value
	l := NewFontLoader(FontOptions{
		Source: fsSource{fsys: fstest.MapFS{}},
		Logf: func(f string, args ...any) {
			logs.Add(1)
			msg.Store(f)
		},
	})
	shape(l.Shaper(), "שלום 你好", font.Normal)
	<-l.Idle()
	shape(l.Shaper(), "مرحبا", font.Normal)
	<-l.Idle()
	if logs.Load() != 1 || !strings.Contains(msg.Load().(string), "boxes") {
		t.Errorf("%d log lines (%v), want one saying characters are boxes", logs.Load(), msg.Load())
	}
}

// TestFontLoaderPrefersSystemFonts: on desktop the system's fonts come
// first and the embedded files fill in what they lack. This machine's
// DejaVu has Hebrew and Arabic but no CJK, emoji or Devanagari.
func TestFontLoaderPrefersSystemFonts(t *testing.T) {
	src := &embeddedSource{files: needFonts(t)}
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // Gio's font index, made afresh
	l := NewFontLoader(FontOptions{Source: src, SystemFonts: true, Face: "sans-serif, Go", Logf: t.Logf})
	sh := l.Shaper()
	for _, s := range scripts {
		shape(sh, s.text, font.Normal)
	}
	sh = waitLoaded(t, l)
	for _, s := range scripts {
		if n := shape(sh, s.text, font.Normal).notdef(); n > 0 {
			t.Errorf("%s: %d boxes with system fonts and the fallback", s.name, n)
		}
	}
	loaded := l.Loaded()
	t.Logf("with system fonts, loaded %v", loaded)
	hasDejaVu := false
	if _, err := os.Stat("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"); err == nil {
		hasDejaVu = true
	}
	if hasDejaVu && slices.Contains(loaded, "noto-sans-hebrew-hebrew.woff") {
		t.Errorf("the Hebrew fallback was loaded though DejaVu Sans has Hebrew")
	}
	if !slices.ContainsFunc(loaded, func(s string) bool { return strings.HasPrefix(s, "cjk/") }) {
		if _, err := os.Stat("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"); err != nil {
			t.Errorf("no CJK fallback was loaded, and the system has no CJK font")
		}
	}
}
