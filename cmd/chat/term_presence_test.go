package main

import (
	"regexp"
	"testing"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
)

// TestOwnJoinIsNotAnnounced: the server reports our own join in the
// room's presence; the terminal does not print "* ann joined" to ann
// (nor "* ann left" when a reconnect replaces a stale session, which
// also took ann out of /names), only others coming and going.
func TestOwnJoinIsNotAnnounced(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	ann := startChat(t, "-server", srv.Addr, "-name", "ann")
	ann.waitLine(`^-- joined general as ann`, 0)
	bob := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "bob"})
	bob.C.Join("general")
	bob.WaitJoined(t, "general")
	ann.waitLine(`^\* bob joined$`, 0)
	if regexp.MustCompile(`(?m)^\* ann `).MatchString(ann.out.String()) {
		t.Errorf("ann's own join announced to ann:\n%s", ann.out.String())
	}
	if code := ann.end(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
