package main

import (
	"testing"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
)

// TestFirstDirectMessageCountsAsRead: bob's first direct message is
// printed from its notice (and not again from the room's history); what
// the terminal prints counts as read on the name's other devices, that
// one included.
func TestFirstDirectMessageCountsAsRead(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	needInbox(t, srv)
	secret := client.NewSecret()
	ann := startChat(t, "-server", srv.Addr, "-name", "ann", "-name-key", secret)
	ann.waitLine(`^-- joined general as ann`, 0)
	phone := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "ann", Secret: secret})
	phone.C.Join("elsewhere")
	phone.WaitJoined(t, "elsewhere")

	bob := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "bob", Secret: client.NewSecret()})
	dm := bob.C.DirectRoom("ann")
	bob.C.Join(dm)
	bob.WaitJoined(t, dm)
	bob.C.Send(dm, "got a minute?")
	ann.waitLine(`^\[@bob\] `+hhmm+`bob: got a minute\?$`, 0)
	phone.Wait(t, "the terminal's read marker for the direct message", func(ev client.Event) bool {
		m, ok := ev.(client.ReadMarker)
		return ok && m.Room == dm && m.Seq == 1
	})
	if code := ann.end(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
