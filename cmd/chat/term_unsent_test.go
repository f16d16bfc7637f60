package main

import (
	"strings"
	"testing"

	"chat/internal/testserver"
)

// TestUnsentLinesFailTheExit: chat exits 0 only once every line is
// stored. A script's line for a room the server then refuses (its name
// is longer than this server allows) is not stored: the exit says so.
func TestUnsentLinesFailTheExit(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{Args: []string{"-max-room", "10"}})
	code, out := session(t, []string{"-server", srv.Addr, "-name", "ci"}, "/join a-long-room-name", "deploy finished")
	if code == 0 || !strings.Contains(out, "1 messages not sent") {
		t.Fatalf("exit %d; output:\n%s", code, out)
	}
}
