package buildtest

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"chat/internal/disttest"
	"chat/internal/fontmanifest"
	"chat/internal/testserver"
)

// TestWebClientHasFonts checks the fonts in dist/chat-web-VERSION.tar
// (the directory chat-server -web serves): the manifest, every file it
// names, at the size it says, and a licence for each font package.
func TestWebClientHasFonts(t *testing.T) {
	files := webFiles(t)
	m, err := fontmanifest.Parse(files["fonts/"+fontmanifest.Name])
	if err != nil {
		t.Fatalf("fonts/%s in the web client's tar: %v", fontmanifest.Name, err)
	}
	var total int
	for _, f := range m.Files {
		b, ok := files["fonts/"+f.File]
		if !ok || int64(len(b)) != f.Size {
			t.Errorf("fonts/%s: in the tar %v, %d bytes; the manifest says %d", f.File, ok, len(b), f.Size)
		}
		total += len(b)
	}
	licences, err := filepath.Glob(filepath.Join(repoRoot(), "assets", "fonts", "LICENSES", "*.txt"))
	if err != nil || len(licences) == 0 {
		t.Fatalf("no licences in assets/fonts/LICENSES (%v)", err)
	}
	for _, l := range licences {
		name := "fonts/LICENSE-" + filepath.Base(l)
		if b, ok := files[name]; !ok || !bytes.Equal(b, mustRead(t, l)) {
			t.Errorf("%s is not in the tar as it is in the tree", name)
		}
		if !strings.Contains(string(mustRead(t, l)), "SIL Open Font License") {
			t.Errorf("%s is not the OFL", l)
		}
	}
	t.Logf("%d font files, %.1f MB, manifest %d bytes", len(m.Files), float64(total)/1e6, len(files["fonts/"+fontmanifest.Name]))
}

// TestBuiltServerServesFonts: the release server binary in dist/ has the
// fonts in it and serves them with their types and cache headers; an
// unknown font is not found.
func TestBuiltServerServesFonts(t *testing.T) {
	bin := disttest.Artifact(t, "chat-server-VERSION-linux-"+runtime.GOARCH)
	srv := testserver.Start(t, testserver.Options{Binary: bin})
	base := "http://" + srv.HTTPAddr + "/fonts/"
	get := func(url string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	resp, data := get(base + fontmanifest.Name)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("manifest: %s %v", resp.Status, resp.Header)
	}
	m, err := fontmanifest.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) < 100 || !slices.ContainsFunc(m.Files, func(f fontmanifest.File) bool { return strings.HasPrefix(f.File, "cjk/") }) {
		t.Fatalf("the built server offers %d font files", len(m.Files))
	}
	var total int64
	for _, f := range m.Files {
		total += f.Size
	}
	for _, f := range []fontmanifest.File{m.Files[0], m.Files[len(m.Files)-1]} {
		resp, b := get(base + f.URL())
		if resp.StatusCode != 200 || int64(len(b)) != f.Size || resp.Header.Get("Content-Type") != "font/woff" ||
			resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || !bytes.HasPrefix(b, []byte("wOFF")) {
			t.Errorf("%s: %s, %d bytes (manifest: %d), %v", f.URL(), resp.Status, len(b), f.Size, resp.Header)
		}
	}
	if resp, _ := get(base + "no-such-font.woff"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown font: %s", resp.Status)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (%.1f MB) offers %d font files, %.1f MB", filepath.Base(bin), float64(st.Size())/1e6, len(m.Files), float64(total)/1e6)
}
