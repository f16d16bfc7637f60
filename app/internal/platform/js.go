//go:build js

package platform

import (
	"gioui.org/font"
	"gioui.org/font/gofont"
	"gioui.org/text"
)

// In the browser the page decides the server (issue 4 fills in how), so the
// field is hidden and there is no default here.
const (
	serverField   = false
	defaultServer = ""
)

// fonts uses only the embedded Go fonts: a browser gives WASM no access to
// system fonts, and without a collection no text would show at all.
func fonts() (*text.Shaper, font.Typeface) {
	return text.NewShaper(text.NoSystemFonts(), text.WithCollection(gofont.Collection())), "Go"
}
