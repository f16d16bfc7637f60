// Package platform holds what differs between the app's targets (desktop,
// Android, browser), so that the UI code itself assumes none of them: which
// fonts exist, whether the user chooses the server, and its default.
package platform

import (
	"gioui.org/font"
	"gioui.org/text"
)

// Fonts returns the text shaper for the app and the typeface to ask for
// first. Shaping caches glyphs, so a window should keep the one shaper.
func Fonts() (*text.Shaper, font.Typeface) { return fonts() }

// ServerField reports whether the join screen lets the user type a server
// address. In the browser the server is the page's origin, so it does not.
func ServerField() bool { return serverField }

// DefaultServer is the address offered when none was used before; in the
// browser, the only address there is.
func DefaultServer() string { return defaultServer() }

// SettingsDir is the directory for the app's settings: Gio's DataDir (the
// user config directory on desktops, the app's files on Android). In the
// browser it is "" and no error: settings live in the page's localStorage.
func SettingsDir() (string, error) { return settingsDir() }
