//go:build js

package platform

import (
	"errors"
	"syscall/js"
)

// openURL opens u in a new tab. With noopener the page cannot reach back
// into the chat's window (window.opener is null), and window.open
// returns null whether or not the tab opened, so a popup blocker cannot
// be told apart: the click that leads here is a user gesture, which
// browsers let open a tab for a few seconds.
func openURL(u string) error {
	w := js.Global()
	if !w.Get("open").Truthy() {
		return errors.New("this browser cannot open links (no window.open)")
	}
	w.Call("open", u, "_blank", "noopener,noreferrer")
	return nil
}
