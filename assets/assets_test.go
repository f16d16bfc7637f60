package assets

import (
	"io/fs"
	"os"
	"runtime"
	"testing"

	"chat/assets/fonts"
	"chat/internal/fontmanifest"
)

// TestWebHasTheFonts: the files the server embeds show the fonts under
// fonts/, as chat-server -web serves them from a directory; the apps'
// fallback has the CJK files only where the system may lack CJK fonts.
func TestWebHasTheFonts(t *testing.T) {
	data, err := fs.ReadFile(Web(), "fonts/"+fontmanifest.Name)
	if err != nil {
		if os.Getenv("CHAT_REQUIRE_ARTIFACTS") == "1" {
			t.Fatal(err)
		}
		t.Skipf("the fonts are not built (%v): run ./build.sh fonts", err)
	}
	m, err := fontmanifest.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	cjk := 0
	for _, f := range m.Files {
		for name, fsys := range map[string]fs.FS{"web": Web(), "fonts": fonts.FS()} {
			prefix := map[string]string{"web": "fonts/", "fonts": ""}[name]
			if st, err := fs.Stat(fsys, prefix+f.File); err != nil || st.Size() != f.Size {
				t.Errorf("%s: %s%s: %v", name, prefix, f.File, err)
			}
		}
		_, err := fs.Stat(fonts.Fallback(), f.File)
		if f.File[:4] == "cjk/" {
			cjk++
			if hasCJK := runtime.GOOS == "linux"; (err == nil) != hasCJK {
				t.Errorf("the apps' fallback on %s has %s: %v", runtime.GOOS, f.File, err == nil)
			}
		} else if err != nil {
			t.Errorf("the apps' fallback lacks %s", f.File)
		}
	}
	if cjk == 0 {
		t.Error("no CJK files in the manifest")
	}
	licences, err := fs.Glob(Web(), "fonts/LICENSE-*.txt")
	if err != nil || len(licences) != 6 {
		t.Errorf("licences under fonts/: %v (%v)", licences, err)
	}
	if _, err := fs.ReadFile(Web(), "index.html"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"fonts/../index.html", "fonts/cjk/../manifest.json", "fonts//x"} {
		if _, err := Web().Open(bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}
