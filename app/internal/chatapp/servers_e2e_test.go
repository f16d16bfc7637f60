package chatapp_test

import (
	"net"
	"testing"

	"gioui.org/io/key"

	"chat/internal/testserver"
)

// TestServerListJoinsTheFirstThatAnswers: the server field takes a
// comma-separated list (the nodes of a cluster); the app joins through
// the first address that answers and remembers the list.
func TestServerListJoinsTheFirstThatAnswers(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	list := dead + ", " + srv.Addr
	r := newRig(t, list)

	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("connected")
	r.mustShow("#general")
	bob := newPeer(t, srv.Addr, "bob")
	if _, err := bob.c.Send("general", "through the second address"); err != nil {
		t.Fatal(err)
	}
	r.waitShows("through the second address")
	if st := r.settings(); st.Server != list {
		t.Errorf("saved server %q, want the list %q", st.Server, list)
	}
}
