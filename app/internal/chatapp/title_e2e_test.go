package chatapp_test

import (
	"testing"
	"time"

	"gioui.org/io/key"

	"chat/app/internal/chatapp"
	"chat/app/internal/settings"
	"chat/internal/testserver"
)

// TestTitleFollowsUnreadWithoutFrames: a hidden browser tab draws no
// frames, yet its title counts the messages that arrive (TitleChanged).
func TestTitleFollowsUnreadWithoutFrames(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	titles := make(chan string, 100)
	r := startRigOpts(t, srv.Addr, settings.Open(t.TempDir()), wide, func(o *chatapp.Options) {
		o.Tune = fastBackoff
		o.TitleChanged = func(t string) {
			select {
			case titles <- t:
			default:
			}
		}
	})
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("connected")
	bob := newPeer(t, srv.Addr, "bob")
	r.waitShows("bob joined")
	if got := r.app.Title(); got != "#general — Chat" {
		t.Fatalf("title %q", got)
	}

	// The tab is hidden: no frame from here on.
	r.app.Focus(false)
	if _, err := bob.c.Send("general", "are you there?"); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for want := "(1) #general — Chat"; ; {
		select {
		case got := <-titles:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("the title is %q, want %q", r.app.Title(), want)
		}
	}
}
