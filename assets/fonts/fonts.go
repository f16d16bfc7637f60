// Package fonts holds the Noto font files for the scripts the Go fonts lack
// (Hebrew, Arabic, Devanagari, emoji, Hangul, CJK) and their manifest,
// which ./build.sh fonts writes into base/ and cjk/ (see README.md).
// The server serves them all to the web client (FS); the desktop and
// Android apps embed them as fallback faces for characters no system font
// has (Fallback), without the CJK ones where the system has its own.
package fonts

import (
	"embed"
	"errors"
	"io/fs"
	"strings"
)

//go:embed base
var base embed.FS

// FS returns the manifest (manifest.json), the licences and the font
// files, as the manifest names them ("x.woff", "cjk/y.woff"). Before
// ./build.sh fonts has run it holds only a README.
func FS() fs.FS { return merged{base: baseFS(), cjk: cjk()} }

// Fallback is FS for the apps: without the cjk/ files on Android, Windows,
// macOS and iOS, whose system fonts have CJK. Its manifest still names
// them: a reader skips the files that are not there.
func Fallback() fs.FS { return merged{base: baseFS(), cjk: fallbackCJK()} }

func baseFS() fs.FS {
	b, err := fs.Sub(base, "base")
	if err != nil {
		panic(err) // "base" is embedded above
	}
	return b
}

// merged shows cjk/ (nil on Android) under base's files.
type merged struct{ base, cjk fs.FS }

func (m merged) Open(name string) (fs.File, error) {
	if rest, ok := strings.CutPrefix(name, "cjk/"); ok {
		if m.cjk == nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return m.cjk.Open(rest)
	}
	if name == "cjk" && m.cjk != nil {
		return m.cjk.Open(".")
	}
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("invalid path")}
	}
	return m.base.Open(name)
}
