//go:build !js

package platform

import (
	"fmt"
	"path/filepath"

	"gioui.org/app"
	"gioui.org/font"
	"gioui.org/font/gofont"
	"gioui.org/text"
)

const serverField = true

func defaultServer() string { return "localhost:7878" }

// fonts prefers the system's sans-serif face, which covers the scripts and
// emoji the user's machine knows, and keeps the Go fonts as the fallback
// for machines without fonts (minimal containers).
func fonts() (*text.Shaper, font.Typeface) {
	return text.NewShaper(text.WithCollection(gofont.Collection())), "sans-serif, Go"
}

func settingsDir() (string, error) {
	dir, err := app.DataDir()
	if err != nil {
		return "", fmt.Errorf("no config directory (%v)", err)
	}
	return filepath.Join(dir, "chat"), nil
}
