package main

import (
	"regexp"
	"testing"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
)

// TestRoomsInAPipe: `echo /rooms | chat -name x` is the scripted way to
// list a server's rooms. The line comes before the connection is up: it
// is asked once connected, and the program waits for the answer.
func TestRoomsInAPipe(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	needInbox(t, srv)
	bob := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "bob"})
	bob.C.Join("busy")
	bob.WaitJoined(t, "busy")
	code, out := session(t, []string{"-server", srv.Addr, "-name", "ann"}, "/rooms")
	if code != 0 || !regexp.MustCompile(`(?m)^--   #busy\s+1 here`).MatchString(out) {
		t.Fatalf("exit %d; output:\n%s", code, out)
	}
}
