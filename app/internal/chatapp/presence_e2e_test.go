package chatapp_test

import (
	"testing"

	"gioui.org/io/key"

	"chat/app/internal/uitest"
	"chat/client"
	"chat/internal/testserver"
)

// TestRestartNoticesMatchWhoIsThere: the server restarts; alice is back
// before bob. Her re-join lists only her, so bob left as far as the room
// is concerned; then bob comes back. The notices must tell that story
// ("bob left", "bob joined"), not a second "bob joined" with no "left",
// and the header must count the two of them.
//
// The "left" comes from the client library's Presence after a resumed
// join.
func TestRestartNoticesMatchWhoIsThere(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	r := newRig(t, srv.Addr)
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("connected")
	g := newGate(t)
	bob := newPeerConfig(t, client.Config{Addr: srv.Addr, Name: "bob", Dial: g.dial})
	r.waitShows("bob joined")

	// The server dies first, so that it never tells alice bob left; then
	// bob is kept away until alice is back.
	srv.Kill()
	g.cut()
	r.waitShows("reconnecting…")
	srv.Restart()
	r.waitFor("alice to be back, alone", func() bool { return r.Shows("connected") && uitest.Count(r.Texts(), "1") == 1 })
	g.restore()
	bob.c.Nudge()
	r.waitFor("bob to be back", func() bool { return uitest.Count(r.Texts(), "2") == 1 })

	texts := r.Texts()
	joined, left := 0, 0
	for _, s := range texts {
		switch {
		case len(s) > 10 && s[:10] == "bob joined":
			joined++
		case len(s) > 8 && s[:8] == "bob left":
			left++
		}
	}
	if joined-left != 1 || left != 1 {
		t.Fatalf("%d \"bob joined\" and %d \"bob left\" notices; want 2 and 1: %q", joined, left, texts)
	}
}
