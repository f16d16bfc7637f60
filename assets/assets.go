// Package assets holds what the builds package: the web client's files
// (embedded in the server binary), with the fonts of assets/fonts under
// fonts/, and the app icon.
//
// web/index.html is the page shell and is committed. web/wasm_exec.js
// (Go's WebAssembly loader, which must match the Go version that built the
// app) and web/main.wasm.gz (the app built for js/wasm, pre-compressed)
// are produced by `./build.sh wasm` and are not in git; a server built
// without them says on its web page how to build them.
package assets

import (
	"embed"
	"io/fs"
	"strings"

	"chat/assets/fonts"
)

//go:embed web
var web embed.FS

//go:embed appicon.png
var icon []byte

// Icon returns the app icon (512×512 PNG), also the web page's favicon.
func Icon() []byte { return icon }

// Web returns the web client's files, rooted at the web directory, and
// the fonts (assets/fonts) under fonts/.
func Web() fs.FS {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // "web" is embedded above; Sub fails only for an invalid name
	}
	return withFonts{sub}
}

// withFonts shows the fonts under fonts/.
type withFonts struct{ fs.FS }

func (w withFonts) Open(name string) (fs.File, error) {
	if rest, ok := strings.CutPrefix(name, "fonts/"); ok {
		return fonts.FS().Open(rest)
	}
	if name == "fonts" {
		return fonts.FS().Open(".")
	}
	return w.FS.Open(name)
}
