package platform

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log"
	"slices"
	"strings"
	"sync"

	"gioui.org/font"
	"gioui.org/font/gofont"
	"gioui.org/font/opentype"
	"gioui.org/text"
	gotext "github.com/go-text/typesetting/font"

	"chat/internal/fontmanifest"
)

// FontSource gives the font manifest and files by the names the manifest
// uses: the server's /fonts/ in the browser, the embedded files on
// desktop and Android.
type FontSource interface {
	Fetch(ctx context.Context, name string) ([]byte, error)
}

// FontOptions configure a FontLoader.
type FontOptions struct {
	// Source has the fonts to load on demand; nil: none (only the Go fonts,
	// and system fonts if SystemFonts).
	Source FontSource
	// SystemFonts lets Gio use the system's fonts first (desktop, Android).
	SystemFonts bool
	// Face is the typeface the UI asks for first.
	Face font.Typeface
	// Logf reports fonts that cannot be loaded (log.Printf if nil).
	Logf func(format string, args ...any)
	// Shown, if set, is called on the window's goroutine with the names of
	// the loaded files each time a frame has been drawn with a shaper that
	// has them all (the browser publishes it for its tests).
	Shown func(files []string)
}

// FontLoader is the window's text shaper, which grows by the faces the
// text needs. Gio takes a shaper's fonts when it is made, so each time new
// faces arrive it makes a new shaper with them; the window picks it up
// with Shaper at the start of its next frame (OnChange tells it to draw
// one), and the text widgets, seeing another shaper, shape their text
// again.
//
// How it knows what the text needs: the last face of every shaper is a
// stand-in ("missing") claiming every character that no face has yet.
// Gio's font fallback picks it only for those, and when it is asked for
// one of them the loader looks the character up in the manifest and
// fetches the file that has it, in the background. So nothing needs to
// tell the loader what is on screen, though Need can fetch ahead.
type FontLoader struct {
	opts FontOptions

	// The window's goroutine only.
	shaper    *text.Shaper
	faces     []font.FontFace // the loaded ones, in load order
	names     []string        // their files
	gen, seen int             // shaper generation, and the last one drawn

	mu        sync.Mutex
	covered   fontmanifest.Ranges    // what the Go fonts and loaded faces have
	asked     map[rune]bool          // characters already looked up
	pending   []rune                 // characters to look up
	requested map[string]bool        // files fetched or being fetched
	fresh     []loadedFace           // loaded, not yet in a shaper
	manifest  *fontmanifest.Manifest // once fetched
	failed    bool                   // the manifest cannot be had
	working   bool                   // the worker goroutine runs
	onChange  func()                 // new faces: draw a frame
	idle      chan struct{}          // closed and replaced when the worker stops
	loadedAll map[string]fontmanifest.Ranges
}

type loadedFace struct {
	file  string
	faces []font.FontFace
}

// NewFontLoader returns a loader with the Go fonts.
func NewFontLoader(opts FontOptions) *FontLoader {
	if opts.Logf == nil {
		opts.Logf = log.Printf
	}
	if opts.Face == "" {
		opts.Face = "Go"
	}
	l := &FontLoader{
		opts:      opts,
		asked:     map[rune]bool{},
		requested: map[string]bool{},
		idle:      make(chan struct{}),
		loadedAll: map[string]fontmanifest.Ranges{},
	}
	close(l.idle)
	l.covered = goCoverage()
	return l
}

// Face is the typeface the UI asks for first.
func (l *FontLoader) Face() font.Typeface { return l.opts.Face }

// OnChange sets the function called, from any goroutine, when new faces
// are ready: it should make the window draw a frame (Window.Invalidate).
func (l *FontLoader) OnChange(f func()) {
	l.mu.Lock()
	l.onChange = f
	l.mu.Unlock()
}

// Shaper returns the shaper to draw this frame with: the one of the last
// frame, or a new one when faces arrived since. Call it from the window's
// goroutine at the start of each frame, and give the result to every
// widget that draws text.
func (l *FontLoader) Shaper() *text.Shaper {
	l.mu.Lock()
	fresh := l.fresh
	l.fresh = nil
	covered := l.covered
	onChange := l.onChange
	l.mu.Unlock()
	if l.shaper != nil && len(fresh) == 0 {
		if l.seen < l.gen {
			// The frame before this one was drawn with generation gen.
			l.seen = l.gen
			if l.opts.Shown != nil {
				l.opts.Shown(slices.Clone(l.names))
			}
		}
		return l.shaper
	}
	for _, f := range fresh {
		l.faces = append(l.faces, f.faces...)
		l.names = append(l.names, f.file)
	}
	coll := append(gofont.Collection(), l.faces...)
	coll = append(coll, missingFace(covered, l.report)...)
	opts := []text.ShaperOption{text.WithCollection(coll)}
	if !l.opts.SystemFonts {
		opts = append(opts, text.NoSystemFonts())
	}
	l.shaper = text.NewShaper(opts...)
	if len(fresh) > 0 {
		l.gen++
		// One more frame, so that Shown learns this one was drawn.
		if onChange != nil && l.opts.Shown != nil {
			onChange()
		}
	}
	return l.shaper
}

// Need fetches, in the background, the faces for the characters of s that
// no loaded face has. It is safe from any goroutine and cheap for text
// the faces cover.
func (l *FontLoader) Need(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range s {
		if !l.covered.Contains(r) && !ignorable(r) {
			l.askLocked(r)
		}
	}
}

// report is the missing face's: Gio asked it for r.
func (l *FontLoader) report(r rune) {
	l.mu.Lock()
	l.askLocked(r)
	l.mu.Unlock()
}

func (l *FontLoader) askLocked(r rune) {
	if l.asked[r] || l.failed || l.opts.Source == nil {
		return
	}
	l.asked[r] = true
	l.pending = append(l.pending, r)
	if !l.working {
		l.working = true
		l.idle = make(chan struct{})
		go l.work()
	}
}

// Idle returns a channel closed when no font is being looked up or
// fetched (for tests: wait for it after shaping, then take Shaper).
func (l *FontLoader) Idle() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.idle
}

// Loaded returns the names of the files loaded so far.
func (l *FontLoader) Loaded() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.loadedAll))
	for n := range l.loadedAll {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// work looks up the pending characters and loads their files until none
// are left.
func (l *FontLoader) work() {
	ctx := context.Background()
	for {
		l.mu.Lock()
		runes := l.pending
		l.pending = nil
		if len(runes) == 0 {
			l.working = false
			close(l.idle)
			l.mu.Unlock()
			return
		}
		m := l.manifest
		l.mu.Unlock()

		if m == nil {
			var err error
			if m, err = l.fetchManifest(ctx); err != nil {
				l.opts.Logf("fonts: %v; characters without a font are drawn as boxes", err)
				l.mu.Lock()
				l.failed = true
				l.pending = nil
				l.mu.Unlock()
				continue
			}
			l.mu.Lock()
			l.manifest = m
			l.mu.Unlock()
		}

		var files []fontmanifest.File
		l.mu.Lock()
		for _, r := range runes {
			if i := m.Lookup(r); i >= 0 && !l.requested[m.Files[i].File] {
				l.requested[m.Files[i].File] = true
				files = append(files, m.Files[i])
			}
		}
		l.mu.Unlock()

		// The files of one batch in parallel: a message in Chinese needs
		// several slices, and each is small.
		var wg sync.WaitGroup
		for _, f := range files {
			wg.Go(func() { l.load(ctx, f) })
		}
		wg.Wait()
	}
}

func (l *FontLoader) fetchManifest(ctx context.Context) (*fontmanifest.Manifest, error) {
	data, err := l.opts.Source.Fetch(ctx, fontmanifest.Name)
	if err != nil {
		return nil, err
	}
	return fontmanifest.Parse(data)
}

// load fetches and parses one file and hands its faces to the next shaper.
func (l *FontLoader) load(ctx context.Context, f fontmanifest.File) {
	data, err := l.opts.Source.Fetch(ctx, f.URL())
	if err != nil {
		l.opts.Logf("fonts: %v", err)
		return
	}
	faces, err := opentype.ParseCollection(data)
	if err != nil {
		l.opts.Logf("fonts: %s: %v", f.File, err)
		return
	}
	var cov fontmanifest.Ranges
	var all []font.FontFace
	for _, ff := range faces {
		// The face keeps to the characters the manifest gives its file, as
		// a browser keeps a @font-face to its unicode-range: the slices of
		// one font share some characters (emoji skin tones, for one), and
		// a sequence must not be split between two of them.
		// Spaces, joiners and selectors stay: they never choose a face
		// (Gio keeps them in the run of the characters around them), so
		// that face must have them: a family emoji is people joined by
		// ZWJs, and a space between Chinese words missing from the
		// Chinese face would be a wide gap.
		// (Not Noto Emoji's space, which is 1.3 em wide: without it the
		// space after an emoji is Gio's usual gap for a missing space.)
		face := ff.Face.Face()
		ft := *face.Font
		has := cmapRanges(ft.Cmap)
		rs := has.Intersect(f.Ranges)
		if gid, ok := ft.Cmap.Lookup(' '); ok && face.HorizontalAdvance(gid) > float32(ft.Upem())/2 {
			has = has.Minus(spaces)
		}
		ft.Cmap = &keptCmap{inner: ft.Cmap, ranges: append(has.Intersect(runContinuing), rs...).Normalize()}
		// A typeface of its own for each file: Gio's font map tells faces
		// apart by typeface and style, and the slices of one family would
		// otherwise all be taken for the last one loaded.
		all = append(all, variants(font.Typeface(f.File), fontFace{&ft})...)
		cov = append(cov, rs...)
	}
	l.mu.Lock()
	l.covered = append(l.covered, cov...).Normalize()
	l.loadedAll[f.File] = cov.Normalize()
	l.fresh = append(l.fresh, loadedFace{file: f.File, faces: all})
	onChange := l.onChange
	l.mu.Unlock()
	if onChange != nil {
		onChange()
	}
}

// variants registers face under every weight and style the Go fonts have.
// Gio's font map narrows the faces it falls back to by the style and
// weight asked for before it looks at which has the character: a face
// registered as regular only would never be used for bold or italic text,
// which would stay boxes. (It is drawn as it is, not made bold.)
func variants(typeface font.Typeface, face font.Face) []font.FontFace {
	var out []font.FontFace
	for _, st := range []font.Style{font.Regular, font.Italic} {
		for _, w := range []font.Weight{font.Normal, font.Medium, font.Bold} {
			out = append(out, font.FontFace{Font: font.Font{Typeface: typeface, Style: st, Weight: w}, Face: face})
		}
	}
	return out
}

// cmapRanges is the characters a cmap maps.
func cmapRanges(c gotext.Cmap) fontmanifest.Ranges {
	if rr, ok := c.(gotext.CmapRuneRanger); ok {
		return fontmanifest.Ranges(rr.RuneRanges(nil)).Normalize()
	}
	var rs fontmanifest.Ranges
	it := c.Iter()
	for it.Next() {
		r, _ := it.Char()
		rs = append(rs, [2]rune{r, r})
	}
	return rs.Normalize()
}

var goCov = sync.OnceValue(func() fontmanifest.Ranges {
	var rs fontmanifest.Ranges
	for _, f := range gofont.Collection() {
		rs = append(rs, cmapRanges(f.Face.Face().Font.Cmap)...)
	}
	return rs.Normalize()
})

// goCoverage is what the Go fonts have.
func goCoverage() fontmanifest.Ranges { return goCov() }

// ignorables are characters that are never drawn by themselves (controls,
// joiners, variation selectors, direction marks, tags, private use,
// surrogates): they take the face of the characters around them.
var ignorables = fontmanifest.Ranges{
	{0, 0x1F}, {0x7F, 0x9F}, {0xAD, 0xAD}, {0x34F, 0x34F}, {0x61C, 0x61C},
	{0x115F, 0x1160}, {0x17B4, 0x17B5}, {0x180B, 0x180F}, {0x200B, 0x200F},
	{0x2028, 0x202E}, {0x2060, 0x206F}, {0x3164, 0x3164}, {0xD800, 0xF8FF},
	{0xFE00, 0xFE0F}, {0xFEFF, 0xFEFF}, {0xFFA0, 0xFFA0}, {0xFFF0, 0xFFFF},
	{0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0000, 0x10FFFF},
}

func ignorable(r rune) bool { return ignorables.Contains(r) }

// spaces are the space characters (Zs).
var spaces = fontmanifest.Ranges{
	{0x20, 0x20}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
}

// runContinuing are the characters that never make Gio change faces: the
// ignorable ones and spaces.
var runContinuing = append(slices.Clone(spaces), ignorables...).Normalize()

// missingRanges is what the missing face may claim: the characters of the
// planes in use, less the ignorable ones.
var missingRanges = fontmanifest.Ranges{{0x00A0, 0x3FFFF}}.Minus(ignorables)

// missingFace is the stand-in face of a shaper: it claims the characters
// of missingRanges that are not covered and reports each one Gio asks it
// for. It draws them as the Go font's box (.notdef).
func missingFace(covered fontmanifest.Ranges, report func(rune)) []font.FontFace {
	ft := *goRegular() // a copy: its own cmap, the Go font's glyphs
	ft.Cmap = &missingCmap{ranges: missingRanges.Minus(covered), report: report}
	return variants("chat-missing", fontFace{&ft})
}

var goRegular = sync.OnceValue(func() *gotext.Font {
	for _, f := range gofont.Regular() {
		if f.Font.Weight == font.Normal && f.Font.Style == font.Regular && f.Font.Typeface == "Go" {
			return f.Face.Face().Font
		}
	}
	panic("gofont has no regular Go face")
})

// fontFace is a font as Gio wants it.
type fontFace struct{ ft *gotext.Font }

func (f fontFace) Face() *gotext.Face { return gotext.NewFace(f.ft) }

// keptCmap is a font's character map kept to some ranges.
type keptCmap struct {
	inner  gotext.Cmap
	ranges fontmanifest.Ranges
}

func (c *keptCmap) Lookup(r rune) (gotext.GID, bool) {
	if !c.ranges.Contains(r) {
		return 0, false
	}
	return c.inner.Lookup(r)
}

func (c *keptCmap) RuneRanges(dst [][2]rune) [][2]rune { return append(dst[:0], c.ranges...) }

func (c *keptCmap) Iter() gotext.CmapIter { return &rangeIter{ranges: c.ranges, r: -1} }

// missingCmap is the stand-in's character map: it has the characters of
// ranges (so Gio picks the face for them) but no glyph for them, and
// reports each one looked up.
type missingCmap struct {
	ranges fontmanifest.Ranges
	report func(rune)
}

func (c *missingCmap) Lookup(r rune) (gotext.GID, bool) {
	if c.ranges.Contains(r) {
		c.report(r)
	}
	return 0, false
}

func (c *missingCmap) RuneRanges(dst [][2]rune) [][2]rune {
	return append(dst[:0], c.ranges...)
}

func (c *missingCmap) Iter() gotext.CmapIter { return &rangeIter{ranges: c.ranges, r: -1} }

type rangeIter struct {
	ranges fontmanifest.Ranges
	i      int
	r      rune
}

func (it *rangeIter) Next() bool {
	for it.i < len(it.ranges) {
		if it.r < it.ranges[it.i][0] {
			it.r = it.ranges[it.i][0]
			return true
		}
		if it.r < it.ranges[it.i][1] {
			it.r++
			return true
		}
		it.i++
	}
	return false
}

func (it *rangeIter) Char() (rune, gotext.GID) { return it.r, 0 }

// fsSource reads fonts from a file system (the embedded files). The
// manifest it gives names only the files that are there.
type fsSource struct{ fsys fs.FS }

func (s fsSource) Fetch(_ context.Context, name string) ([]byte, error) {
	name, _, _ = strings.Cut(name, "?")
	data, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		return nil, fmt.Errorf("font %s: %w", name, err)
	}
	if name != fontmanifest.Name {
		return data, nil
	}
	m, err := fontmanifest.Parse(data)
	if err != nil {
		return nil, err
	}
	m.Files = slices.DeleteFunc(m.Files, func(f fontmanifest.File) bool {
		_, err := fs.Stat(s.fsys, f.File)
		return err != nil
	})
	return json.Marshal(m)
}
