//go:build linux && !android

package main

import (
	"os"
	"strings"
)

// noWayland is a Wayland display path that cannot exist (/dev/null is no
// directory): connecting to it fails at once and without a message.
const noWayland = "/dev/null/wayland-0"

// skipUnreachableWayland keeps libwayland quiet on X11 desktops without
// XDG_RUNTIME_DIR (a plain X session, ssh -X, a container, Xvfb). Gio's
// app package tries Wayland first and falls back to X11 (newWindow in
// gioui.org/app's os_unix.go); libwayland looks for a relative display
// name (WAYLAND_DISPLAY, by default wayland-0) under XDG_RUNTIME_DIR and,
// without it, prints "error: XDG_RUNTIME_DIR is invalid or not set in the
// environment." at every start: noise that looks like a failure. Without
// XDG_RUNTIME_DIR a relative name can never be reached, so the display is
// pointed at a path that fails quietly and Gio goes on to X11 as before.
// It must run before the window is made; os.Setenv reaches C's
// environment, where libwayland reads it, because Gio links with cgo.
func skipUnreachableWayland() {
	if os.Getenv("WAYLAND_SOCKET") != "" || strings.HasPrefix(os.Getenv("WAYLAND_DISPLAY"), "/") {
		return // libwayland needs no runtime directory for these
	}
	if strings.HasPrefix(os.Getenv("XDG_RUNTIME_DIR"), "/") {
		return
	}
	_ = os.Setenv("WAYLAND_DISPLAY", noWayland)
}
