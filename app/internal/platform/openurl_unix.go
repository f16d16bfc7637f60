//go:build (linux && !android) || freebsd || openbsd || netbsd || dragonfly

package platform

// opener is xdg-open, the freedesktop.org way to open a URL with the
// user's preferred application.
func opener(u string) (string, []string) { return "xdg-open", []string{u} }
