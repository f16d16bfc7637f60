//go:build js

package platform

import (
	"syscall/js"

	"gioui.org/font"
	"gioui.org/font/gofont"
	"gioui.org/text"
)

// In the browser the server is the one that served the page: the field is
// hidden and the address is the page's own WebSocket endpoint.
const serverField = false

// defaultServer is ws://host/ws for a page loaded over http, wss://host/ws
// for https, so the connection is as secure as the page.
func defaultServer() string {
	loc := js.Global().Get("location")
	scheme := "ws://"
	if loc.Get("protocol").String() == "https:" {
		scheme = "wss://"
	}
	return scheme + loc.Get("host").String() + "/ws"
}

// fonts uses only the embedded Go fonts: a browser gives WASM no access to
// system fonts, and without a collection no text would show at all.
func fonts() (*text.Shaper, font.Typeface) {
	return text.NewShaper(text.NoSystemFonts(), text.WithCollection(gofont.Collection())), "Go"
}

func settingsDir() (string, error) { return "", nil }
