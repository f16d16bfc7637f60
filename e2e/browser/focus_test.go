package browser_test

import (
	"path/filepath"
	"strings"
	"testing"

	"chat/internal/browsertest"
	"chat/internal/testserver"
)

// stubNotifications puts a recorder in place of the page's Web
// Notifications API, with the permission granted: window.notes lists
// "title: body" of each notification shown. (One line: the driver reads
// one command per line.)
const stubNotifications = `(window.notes = [], window.Notification = function(title, opts) { window.notes.push(title + ": " + opts.body) }, window.Notification.permission = "granted", window.Notification.requestPermission = () => Promise.resolve("granted"), true)`

// TestPageInUseDoesNotNotify: on a phone-sized page the user goes back
// from #general to the conversation list, which has no text field: the
// page's hidden text input loses the keyboard focus, while the page
// itself keeps it. A direct message arriving then is in the list at
// once; it shows no notification, since the user is looking at the page.
// Once the page loses the focus (another window, another tab), the next
// one does.
func TestPageInUseDoesNotNotify(t *testing.T) {
	b := browsertest.Start(t)
	web := buildWeb(t)
	srv := testserver.Start(t, testserver.Options{Args: []string{"-web", web}})
	term := startTerminal(t, srv.Addr, "terminal")
	term.waitLine("-- joined general")
	shot := filepath.Join(t.TempDir(), "screen.png")

	b.Do("goto http://" + srv.HTTPAddr + "/")
	b.WaitApp()
	b.Do("eval " + stubNotifications)
	b.Do("type webuser")
	b.Do("press Enter")
	term.waitLine("* webuser joined")
	b.WaitText("No messages yet", shot)
	b.Do("press Escape") // back to the list
	b.WaitText("Direct messages", shot)
	if got := b.Do("eval document.hasFocus() && document.visibilityState"); got != `"visible"` {
		t.Fatalf("the page is not the focused, visible one (%s): the test means nothing", got)
	}

	term.say("/msg webuser are you looking?")
	b.WaitText("terminal", shot) // the conversation is in the list
	if got := b.Do("eval window.notes"); got != "[]" {
		t.Errorf("notified while the page has the focus: %s", got)
	}

	b.Do(`eval (window.dispatchEvent(new Event("blur")), true)`) // as when another window takes the focus
	term.say("/msg webuser and now?")
	b.WaitFor("a notification once the page lost the focus", "window.notes.filter(n => n.includes('and now?')).length === 1")
	if got := b.Do("eval window.notes"); strings.Contains(got, "are you looking?") {
		t.Errorf("notifications %s", got)
	}
}
