package web

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"chat/internal/fontmanifest"
)

const manifestJSON = `{"files":[{"file":"noto-sans-hebrew-hebrew.woff","family":"Noto Sans Hebrew","ranges":"590-5ff","size":9},` +
	`{"file":"cjk/noto-sans-sc-119.woff","family":"Noto Sans SC","ranges":"4e00-4e10","size":9}]}`

func withFonts() fstest.MapFS {
	files := built()
	files["fonts/manifest.json"] = &fstest.MapFile{Data: []byte(manifestJSON)}
	files["fonts/noto-sans-hebrew-hebrew.woff"] = &fstest.MapFile{Data: []byte("wOFF hebrew")}
	files["fonts/cjk/noto-sans-sc-119.woff"] = &fstest.MapFile{Data: []byte("wOFF chinese")}
	files["fonts/LICENSE-noto-sans-hebrew.txt"] = &fstest.MapFile{Data: []byte("SIL Open Font License")}
	files["fonts/stray.woff"] = &fstest.MapFile{Data: []byte("wOFF not in the manifest")}
	return files
}

func version(data string) string {
	sum := sha256.Sum256([]byte(data))
	return hex.EncodeToString(sum[:8])
}

// TestFontsAreServed: the manifest names each file with its version; a
// versioned font is served as a font, cacheable for a year; the
// manifest itself is revalidated (a new build changes it), and sent
// compressed.
func TestFontsAreServed(t *testing.T) {
	h := newHandler(t, withFonts(), Health{})

	r := get(h, "/fonts/manifest.json")
	raw := body(r)
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("Cache-Control") != "no-cache" || r.Header.Get("ETag") == "" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("manifest: %d %v", r.StatusCode, r.Header)
	}
	m, err := fontmanifest.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"noto-sans-hebrew-hebrew.woff": "wOFF hebrew",
		"cjk/noto-sans-sc-119.woff":    "wOFF chinese",
	}
	if len(m.Files) != 2 {
		t.Fatalf("manifest: %s", raw)
	}
	for _, f := range m.Files {
		if f.V != version(want[f.File]) {
			t.Errorf("%s: version %q, want the content's %q", f.File, f.V, version(want[f.File]))
		}
		r := get(h, "/fonts/"+f.URL())
		if got := body(r); r.StatusCode != 200 || got != want[f.File] {
			t.Errorf("GET /fonts/%s: %d %q", f.URL(), r.StatusCode, got)
		}
		if r.Header.Get("Content-Type") != "font/woff" || r.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
			r.Header.Get("ETag") != `"`+f.V+`"` {
			t.Errorf("GET /fonts/%s: headers %v", f.URL(), r.Header)
		}
		// Without the version (or with an old one), revalidate.
		for _, u := range []string{"/fonts/" + f.File, "/fonts/" + f.File + "?v=0123456789abcdef"} {
			if r := get(h, u); r.StatusCode != 200 || r.Header.Get("Cache-Control") != "no-cache" {
				t.Errorf("GET %s: %d, Cache-Control %q", u, r.StatusCode, r.Header.Get("Cache-Control"))
			}
		}
		// A conditional request with the ETag: not modified.
		if r := get(h, "/fonts/"+f.URL(), "If-None-Match", `"`+f.V+`"`); r.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match: %d", r.StatusCode)
		}
	}

	r = get(h, "/fonts/manifest.json", "Accept-Encoding", "gzip, br")
	if r.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(r.Header.Get("Vary"), "Accept-Encoding") ||
		r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("manifest, gzip accepted: %v", r.Header)
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if unzipped, _ := io.ReadAll(zr); string(unzipped) != raw {
		t.Errorf("the gzip manifest differs from the plain one")
	}

	r = get(h, "/fonts/LICENSE-noto-sans-hebrew.txt")
	if got := body(r); r.StatusCode != 200 || got != "SIL Open Font License" || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("licence: %d %q %v", r.StatusCode, got, r.Header)
	}
}

// TestUnknownFontIsNotFound: only what the manifest names (and the
// licences) is served from fonts/; nothing else of the web client's files
// is reachable through /fonts/.
func TestUnknownFontIsNotFound(t *testing.T) {
	h := newHandler(t, withFonts(), Health{})
	for _, u := range []string{
		"/fonts/no-such-font.woff", "/fonts/stray.woff", "/fonts/cjk/", "/fonts/", "/fonts/cjk",
		"/fonts/noto-sans-sc-119.woff", "/fonts/../index.html", "/fonts/%2e%2e/index.html", "/fonts/..%2findex.html",
	} {
		r := get(h, u)
		if got := body(r); r.StatusCode == 200 || strings.Contains(got, "wOFF") || strings.Contains(got, "<script") {
			t.Errorf("GET %s: %d %q", u, r.StatusCode, got)
		}
	}
	if r := get(h, "/fonts/no-such-font.woff"); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown font: %d, want 404", r.StatusCode)
	}
}

// TestWithoutFonts: a server built without fonts serves none; the web
// client then keeps its Go fonts.
func TestWithoutFonts(t *testing.T) {
	h := newHandler(t, built(), Health{})
	if r := get(h, "/fonts/manifest.json"); r.StatusCode != http.StatusNotFound {
		t.Errorf("manifest without fonts: %d", r.StatusCode)
	}
}

// TestBrokenFontBuild: a manifest naming a missing file, or a bad
// manifest, stops the server at start, not a person's page later.
func TestBrokenFontBuild(t *testing.T) {
	for name, change := range map[string]func(fstest.MapFS){
		"missing file": func(f fstest.MapFS) { delete(f, "fonts/cjk/noto-sans-sc-119.woff") },
		"bad manifest": func(f fstest.MapFS) {
			f["fonts/manifest.json"] = &fstest.MapFile{Data: []byte(`{"files":[{"file":"../x.woff"}]}`)}
		},
		"not a font": func(f fstest.MapFS) {
			f["fonts/manifest.json"] = &fstest.MapFile{Data: []byte(`{"files":[{"file":"index.html","ranges":"590"}]}`)}
			f["fonts/index.html"] = &fstest.MapFile{Data: []byte("<html>")}
		},
	} {
		files := withFonts()
		change(files)
		_, err := New(Options{Files: files, WebSocket: http.NotFoundHandler(), Health: func() Health { return Health{} }})
		if err == nil || !strings.Contains(err.Error(), "fonts/") {
			t.Errorf("%s: New returned %v, want an error naming fonts/", name, err)
		}
	}
}
