// Package platform holds what differs between the app's targets (desktop,
// Android, browser), so that the UI code itself assumes none of them: which
// fonts exist and how the missing ones are loaded, whether the user
// chooses the server, and its default.
package platform

import (
	"gioui.org/font"
	"gioui.org/text"
)

// NewFonts returns a window's font loader: its Shaper (taken again at the
// start of every frame: it changes when faces for new scripts arrive) and
// the typeface to ask for first (Face). Each window needs its own.
func NewFonts() *FontLoader { return fonts() }

// Fonts returns a shaper that never grows, with the fonts of this
// platform at the start (the Go fonts, and the system's outside the
// browser), and the typeface to ask for first: for tests and tools. A
// window uses NewFonts.
func Fonts() (*text.Shaper, font.Typeface) {
	l := fonts()
	l.opts.Source = nil
	return l.Shaper(), l.Face()
}

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

// WatchFocus reports through report (on any goroutine, now and at every
// change) whether the window has the focus, where the platform knows it
// better than the window's ConfigEvent: in the browser, the page's focus
// and visibility. It returns false where ConfigEvent.Focused is the one
// to follow, and then never calls report.
func WatchFocus(report func(focused bool)) bool { return watchFocus(report) }
