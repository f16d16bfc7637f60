//go:build !js

package platform

import (
	"fmt"
	"path/filepath"

	"gioui.org/app"

	fontfiles "chat/assets/fonts"
)

const serverField = true

func defaultServer() string { return "localhost:7878" }

// fonts prefers the system's sans-serif face, which covers the scripts and
// emoji the user's machine knows, then the Go fonts, then, for characters
// no system font has (a minimal Linux install has no CJK, Hebrew or
// emoji font), the Noto files embedded in the app (assets/fonts; the CJK
// ones only where the system may lack them), each parsed only when a
// character needs it.
func fonts() *FontLoader {
	files := fontfiles.Fallback()
	return NewFontLoader(FontOptions{
		Source:      fsSource{fsys: files},
		SystemFonts: true,
		Face:        "sans-serif, Go",
	})
}

func settingsDir() (string, error) {
	dir, err := app.DataDir()
	if err != nil {
		return "", fmt.Errorf("no config directory (%v)", err)
	}
	return filepath.Join(dir, "chat"), nil
}
