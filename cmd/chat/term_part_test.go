package main

import (
	"strings"
	"testing"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
)

// TestPartInAPipeSendsFirst: a script joins a room, posts there and
// parts. Its lines come before the connection is up, so /part finds the
// room not joined yet: the line posted before it must still be stored
// (then the room is left), as it would be on a live connection.
func TestPartInAPipeSendsFirst(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	watcher := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "watcher"})
	watcher.C.Join("deploys")
	watcher.WaitJoined(t, "deploys")
	code, out := session(t, []string{"-server", srv.Addr, "-name", "ci"}, "/join deploys", "deploy finished", "/part", "back in general")
	if code != 0 || strings.Contains(out, "not sent") {
		t.Fatalf("exit %d; output:\n%s", code, out)
	}
	if m := watcher.WaitText(t, "deploy finished"); m.Room != "deploys" {
		t.Fatalf("went to %s", m.Room)
	}
	if !strings.Contains(out, "-- left #deploys") {
		t.Errorf("the room was not left:\n%s", out)
	}
}
