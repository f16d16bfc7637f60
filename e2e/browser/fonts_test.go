package browser_test

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"chat/internal/browsertest"
	"chat/internal/fontmanifest"
	"chat/internal/testserver"
)

// fontsDir is where ./build.sh fonts put the fonts; the test fails (with
// CHAT_REQUIRE_BROWSER=1, as ./build.sh test sets) or skips without them.
func fontsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(moduleRoot(), "assets", "fonts")
	if _, err := os.Stat(filepath.Join(dir, "base", fontmanifest.Name)); err != nil {
		msg := "the fonts are not built: run ./build.sh fonts"
		if os.Getenv("CHAT_REQUIRE_BROWSER") == "1" || os.Getenv("CHAT_REQUIRE_ARTIFACTS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// addFonts lays the fonts out in a web client directory as the server
// serves them (fonts/, fonts/cjk/), as ./build.sh wasm puts them in the
// web client's tar.
func addFonts(t *testing.T, web string) {
	t.Helper()
	src := fontsDir(t)
	for from, to := range map[string]string{"base": "fonts", "cjk": filepath.Join("fonts", "cjk")} {
		entries, err := os.ReadDir(filepath.Join(src, from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(web, to), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "README.md" && !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				copyFile(t, filepath.Join(src, from, e.Name()), filepath.Join(web, to, e.Name()))
			}
		}
	}
}

// scriptLines are the messages of the fonts test, each with the
// Tesseract language that reads it and what it must read.
var scriptLines = []struct{ text, lang, read string }{
	{"שלום עולם", "heb", "שלום"},
	{"مرحبا بالعالم", "ara", "مرحبا"},
	{"你好世界", "chi_sim", "你好世界"},
	{"नमस्ते दुनिया", "hin", "नमस्ते"},
	{"emoji 😀🎉👍🐱 end", "", ""},
}

// chatScreen opens the page, joins #general and sends the lines from the
// composer, as a person would, and waits until the last one is on screen.
func chatScreen(t *testing.T, b *browsertest.Browser, url, name, shot string) {
	t.Helper()
	b.Do("goto " + url)
	b.WaitApp()
	b.Do("type " + name)
	b.Do("press Enter")
	b.WaitText("No messages yet", shot)
	// Until someone writes in another script, the page fetches no font.
	if got := fontURLs(t, b); len(got) != 0 {
		t.Errorf("before any text needed them, the page fetched %v", got)
	}
	for _, l := range scriptLines {
		b.Do("type " + l.text)
		b.Do("press Enter")
	}
	b.WaitText("end", shot)
}

// fontURLs are the /fonts/ URLs the page has fetched.
func fontURLs(t *testing.T, b *browsertest.Browser) []string {
	t.Helper()
	var urls []string
	if err := json.Unmarshal([]byte(b.Do(`eval performance.getEntriesByType("resource").map(e => e.name).filter(n => n.includes("/fonts/"))`)), &urls); err != nil {
		t.Fatal(err)
	}
	return urls
}

// shownFonts is what the web client says it has drawn with
// (window.chatFonts, set by app/internal/platform).
func shownFonts(b *browsertest.Browser) []string {
	var v struct{ Shown []string }
	_ = json.Unmarshal([]byte(b.Do("eval window.chatFonts || null")), &v)
	return v.Shown
}

// ocr reads a screenshot in one language.
func ocr(t *testing.T, png, lang string) string {
	t.Helper()
	out, err := exec.Command("tesseract", png, "-", "-l", lang, "--psm", "11").Output()
	if err != nil {
		t.Fatalf("tesseract -l %s %s: %v (./build.sh deps installs tesseract-ocr-%s)", lang, png, err, strings.ReplaceAll(lang, "_", "-"))
	}
	return strings.Join(strings.Fields(string(out)), "")
}

// TestBrowserDrawsEveryScript: the web client, served by the real server
// with its fonts, draws Hebrew, Arabic, Chinese, Devanagari and emoji
// with real glyphs, fetching only the font files those characters are
// in. The proof is read off the screen: Tesseract reads each script's
// words in the screenshot, and does not read them in the screenshot of
// the same chat from a server without fonts (boxes); the emoji, which no
// OCR reads, differ from those boxes.
func TestBrowserDrawsEveryScript(t *testing.T) {
	b := browsertest.Start(t)
	withFonts := buildWeb(t)
	addFonts(t, withFonts)
	without := t.TempDir()
	for _, f := range []string{"index.html", "wasm_exec.js", "main.wasm.gz"} {
		copyFile(t, filepath.Join(withFonts, f), filepath.Join(without, f))
	}
	shots := browsertest.ScreenshotDir()

	// Without fonts: boxes.
	bare := testserver.Start(t, testserver.Options{Args: []string{"-web", without}})
	boxes := filepath.Join(shots, "browser-fonts-missing.png")
	chatScreen(t, b, "http://"+bare.HTTPAddr+"/", "nofonts", boxes)

	// With fonts.
	srv := testserver.Start(t, testserver.Options{Args: []string{"-web", withFonts}})
	glyphs := filepath.Join(shots, "browser-fonts.png")
	start := time.Now()
	chatScreen(t, b, "http://"+srv.HTTPAddr+"/", "fonts", glyphs)
	// Wait until a frame was drawn with the faces of every script.
	want := []string{"noto-sans-hebrew-hebrew.woff", "noto-sans-arabic-arabic.woff", "noto-sans-devanagari-devanagari.woff"}
	has := func(shown []string) bool {
		for _, w := range want {
			if !slices.Contains(shown, w) {
				return false
			}
		}
		return slices.ContainsFunc(shown, func(s string) bool { return strings.HasPrefix(s, "noto-emoji-") }) &&
			slices.ContainsFunc(shown, func(s string) bool { return strings.HasPrefix(s, "cjk/noto-sans-sc-") })
	}
	var shown []string
	for shown = shownFonts(b); !has(shown); shown = shownFonts(b) {
		if time.Since(start) > 60*time.Second {
			t.Fatalf("after 60 s the page has drawn with %v\n%s", shown, b.Console())
		}
		time.Sleep(100 * time.Millisecond) // a bounded poll: the page signals nothing to the test
	}
	b.Screenshot(glyphs)
	t.Logf("fonts drawn: %v", shown)

	// What it fetched: the manifest and those files, nothing more.
	fetched := fontURLs(t, b)
	t.Logf("fetched %d font URLs: %v", len(fetched), fetched)
	if len(fetched) != len(shown)+1 {
		t.Errorf("fetched %d font URLs for %d files drawn: %v", len(fetched), len(shown), fetched)
	}

	for _, l := range scriptLines {
		if l.lang == "" {
			continue
		}
		if got := ocr(t, glyphs, l.lang); !strings.Contains(got, strings.ReplaceAll(l.read, " ", "")) {
			t.Errorf("%s: Tesseract does not read %q in %s; it reads %q", l.lang, l.read, glyphs, got)
		}
		if got := ocr(t, boxes, l.lang); strings.Contains(got, strings.ReplaceAll(l.read, " ", "")) {
			t.Errorf("%s: Tesseract reads %q in %s too, drawn without fonts: the check proves nothing", l.lang, l.read, boxes)
		}
	}
	// The emoji: between the words "emoji" and "end" the page without
	// fonts draws four equal boxes; the page with fonts draws glyphs,
	// none of them that box, not all alike.
	bareGlyphs := glyphsBetween(t, boxes, "emoji", "end")
	if len(bareGlyphs) != 4 {
		t.Fatalf("without fonts, %d shapes between \"emoji\" and \"end\", want the 4 boxes (%s)", len(bareGlyphs), boxes)
	}
	box := bareGlyphs[0]
	for _, g := range bareGlyphs[1:] {
		if !g.same(box) {
			t.Fatalf("without fonts, the 4 emoji are not 4 equal boxes (%s)", boxes)
		}
	}
	emoji := glyphsBetween(t, glyphs, "emoji", "end")
	alike := 0
	for i, g := range emoji {
		if g.same(box) {
			t.Errorf("emoji shape %d is the box of the page without fonts (%s)", i, glyphs)
		}
		if i > 0 && g.same(emoji[0]) {
			alike++
		}
	}
	if len(emoji) < 4 || alike == len(emoji)-1 {
		t.Errorf("with fonts, %d shapes between \"emoji\" and \"end\", %d like the first: want 4 different emoji (%s)", len(emoji), alike, glyphs)
	}
	t.Logf("screenshots: %s (fonts), %s (no fonts)", glyphs, boxes)
}

// shape is the ink of one glyph (or part of one) on the screen.
type shape struct {
	w, h int
	ink  []bool
}

func (a shape) at(x, y int) bool {
	return x >= 0 && y >= 0 && x < a.w && y < a.h && a.ink[y*a.w+x]
}

// same reports whether two shapes are the same drawing, give or take a
// pixel (glyphs are drawn at fractional positions): sizes within two
// pixels, and, moved by up to a pixel, at least 60% of their ink shared.
func (a shape) same(b shape) bool {
	if abs(a.w-b.w) > 2 || abs(a.h-b.h) > 2 {
		return false
	}
	best := 0.0
	for dx := -1; dx <= 1; dx++ {
		for dy := -1; dy <= 1; dy++ {
			both, either := 0, 0
			for y := -1; y <= max(a.h, b.h); y++ {
				for x := -1; x <= max(a.w, b.w); x++ {
					p, q := a.at(x, y), b.at(x+dx, y+dy)
					if p && q {
						both++
					}
					if p || q {
						either++
					}
				}
			}
			if either > 0 {
				best = max(best, float64(both)/float64(either))
			}
		}
	}
	return best >= 0.6
}

func abs(x int) int { return max(x, -x) }

// glyphsBetween finds the words before and after in a screenshot (with
// Tesseract's word boxes) and returns the shapes drawn between them on
// their line, cut at blank columns.
func glyphsBetween(t *testing.T, png, before, after string) []shape {
	t.Helper()
	out, err := exec.Command("tesseract", png, "-", "-l", "eng", "--psm", "11", "tsv").Output()
	if err != nil {
		t.Fatalf("tesseract: %v", err)
	}
	type box struct{ x, y, w, h int }
	words := map[string]box{}
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 12 || f[0] != "5" {
			continue
		}
		var b box
		fmt.Sscan(f[6]+" "+f[7]+" "+f[8]+" "+f[9], &b.x, &b.y, &b.w, &b.h)
		words[strings.ToLower(strings.TrimSpace(f[11]))] = b
	}
	b1, ok1 := words[before]
	b2, ok2 := words[after]
	if !ok1 || !ok2 || b2.x <= b1.x+b1.w {
		t.Fatalf("%s: cannot find %q then %q on one line; Tesseract read %v", png, before, after, words)
	}
	img := readPNG(t, png)
	x0, x1 := b1.x+b1.w+2, b2.x-2
	y0, y1 := b1.y-b1.h/3, b1.y+b1.h+b1.h/3
	dark := func(x, y int) bool {
		r, g, b, _ := img.At(x, y).RGBA()
		return (r*299+g*587+b*114)/1000 < 0xA000 // the boxes' grey lines too
	}
	var shapes []shape
	for x := x0; x < x1; {
		if !columnInk(dark, x, y0, y1) {
			x++
			continue
		}
		start := x
		for x < x1 && columnInk(dark, x, y0, y1) {
			x++
		}
		// The shape's own rows.
		top, bottom := y1, y0
		for yy := y0; yy < y1; yy++ {
			for xx := start; xx < x; xx++ {
				if dark(xx, yy) {
					top, bottom = min(top, yy), max(bottom, yy+1)
				}
			}
		}
		sh := shape{w: x - start, h: bottom - top}
		for yy := top; yy < bottom; yy++ {
			for xx := start; xx < x; xx++ {
				sh.ink = append(sh.ink, dark(xx, yy))
			}
		}
		shapes = append(shapes, sh)
	}
	return shapes
}

func columnInk(dark func(x, y int) bool, x, y0, y1 int) bool {
	for y := y0; y < y1; y++ {
		if dark(x, y) {
			return true
		}
	}
	return false
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
