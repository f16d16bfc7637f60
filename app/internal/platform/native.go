//go:build !js

package platform

import (
	"gioui.org/font"
	"gioui.org/font/gofont"
	"gioui.org/text"
)

const (
	serverField   = true
	defaultServer = "localhost:7878"
)

// fonts prefers the system's sans-serif face, which covers the scripts and
// emoji the user's machine knows, and keeps the Go fonts as the fallback
// for machines without fonts (minimal containers).
func fonts() (*text.Shaper, font.Typeface) {
	return text.NewShaper(text.WithCollection(gofont.Collection())), "sans-serif, Go"
}
