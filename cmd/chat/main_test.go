package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// TestPipeSendsLinesPrintsRoomAndLeaves drives the terminal client as a
// script would: lines on stdin, the room on stdout, a clean exit at EOF.
func TestPipeSendsLinesPrintsRoomAndLeaves(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	peer := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "peer"})
	peer.C.Join("general")
	peer.WaitJoined(t, "general")
	// Stored before the bot joins, so the bot gets it with the room's
	// history: messages from different connections have no order of their
	// own, and a send still on its way could land after the bot has gone.
	const greeting = "hi bot\nsecond line \x1b[31mred?"
	if _, err := peer.C.Send("general", greeting); err != nil {
		t.Fatal(err)
	}
	peer.WaitText(t, greeting)

	stdin, feed := io.Pipe()
	var out, errOut testserver.LockedBuffer
	done := make(chan int)
	go func() {
		done <- run(context.Background(), []string{"-server", srv.Addr, "-name", "bot~1"}, stdin, &out, &errOut)
	}()
	fmt.Fprintln(feed, "build passed ~ all green")
	fmt.Fprintln(feed, "") // blank lines are not sent
	fmt.Fprintln(feed, "🎉 שלום")
	peer.WaitText(t, "🎉 שלום")
	feed.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d; stderr %q; stdout:\n%s", code, errOut.String(), out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("did not exit at end of input; stdout:\n%s", out.String())
	}

	got := out.String()
	t.Logf("stdout:\n%s", got)
	for _, pattern := range []string{
		`(?m)^-- connected$`,
		`(?m)^-- joined general as bot~1; 2 here: `,
		`(?m)^\[\d\d:\d\d\] peer: hi bot\n {8}second line \\x1b\[31mred\?$`, // escape shown, not obeyed
		`(?m)^\[\d\d:\d\d\] bot~1: build passed ~ all green$`,
		`(?m)^\[\d\d:\d\d\] bot~1: 🎉 שלום$`,
	} {
		if !regexp.MustCompile(pattern).MatchString(got) {
			t.Errorf("stdout does not match %s", pattern)
		}
	}
	if strings.Contains(got, "\x1b") {
		t.Error("a raw escape character reached the terminal")
	}
	if n := len(peer.Messages()); n != 3 {
		t.Errorf("peer saw %d messages, want 3 (blank line not sent)", n)
	}
	peer.Wait(t, "bot left", func(ev client.Event) bool {
		p, ok := ev.(client.Presence)
		return ok && len(p.Changes) == 1 && p.Changes[0].Name == "bot~1" && p.Changes[0].Kind.String() == "left"
	})
}

func TestRefusalsExitNonZeroWithASentence(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	holder := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "taken"})
	holder.C.Join("general")
	holder.WaitJoined(t, "general")

	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-server", srv.Addr}, 2, "give your name with -name"},
		{[]string{"-server", srv.Addr, "-name", " spaced"}, 2, "starts or ends with a space"},
		{[]string{"-server", srv.Addr, "-name", "x", "-room", "bad\troom"}, 2, "room name"},
		{[]string{"-server", srv.Addr, "-name", "TAKEN"}, 1, "name-owned"},
	}
	for _, tc := range tests {
		stdin, feed := io.Pipe()
		defer feed.Close()
		var out, errOut testserver.LockedBuffer
		done := make(chan int)
		go func() { done <- run(context.Background(), tc.args, stdin, &out, &errOut) }()
		select {
		case code := <-done:
			all := out.String() + errOut.String()
			if code != tc.code || !strings.Contains(all, tc.want) {
				t.Errorf("%v: exit %d, output %q; want exit %d and %q", tc.args, code, all, tc.code, tc.want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%v: did not exit", tc.args)
		}
	}
}

// session runs the terminal client with args and input lines until it
// exits at the end of input, and returns its exit code and output.
func session(t *testing.T, args []string, lines ...string) (int, string) {
	t.Helper()
	var out testserver.LockedBuffer
	in := strings.NewReader(strings.Join(lines, "\n"))
	done := make(chan int)
	go func() { done <- run(context.Background(), args, in, &out, &out) }()
	select {
	case code := <-done:
		return code, out.String()
	case <-time.After(30 * time.Second):
		t.Fatalf("%v did not exit; output:\n%s", args, out.String())
		return 0, ""
	}
}

// TestTrustingASelfSignedServer: the first connection is refused with the
// fingerprint and the command to trust it; once trusted, it is remembered.
func TestTrustingASelfSignedServer(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	certFile, keyFile, cert := testserver.SelfSigned(t, t.TempDir())
	srv := testserver.Start(t, testserver.Options{Args: []string{"-tls-cert", certFile, "-tls-key", keyFile}})
	addr := "tls://" + srv.Addr
	fp := protocol.CertFingerprint(cert.Raw)

	code, out := session(t, []string{"-server", addr, "-name", "ann"}, "hello")
	if code != 1 || !strings.Contains(out, "not trusted") || !strings.Contains(out, "-trust "+fp) {
		t.Fatalf("first contact: exit %d\n%s", code, out)
	}
	// Exit 0 after the end of input means the message was acknowledged.
	code, out = session(t, []string{"-server", addr, "-name", "ann", "-trust", fp}, "trusted now")
	if code != 0 || !strings.Contains(out, "-- joined general") {
		t.Fatalf("with -trust: exit %d\n%s", code, out)
	}
	code, out = session(t, []string{"-server", addr, "-name", "ann"}, "remembered")
	if code != 0 || !strings.Contains(out, "-- joined general") {
		t.Fatalf("the pin was not remembered: exit %d\n%s", code, out)
	}
	code, out = session(t, []string{"-server", addr, "-name", "ann", "-trust", "SHA256:" + strings.Repeat("00", 32)}, "x")
	if code != 1 || !strings.Contains(out, "has changed") {
		t.Fatalf("a different pin: exit %d\n%s", code, out)
	}
}

// TestNameKeyMovesANameToAnotherDevice: a name claimed on one computer is
// refused on another until that one uses the first one's name key.
func TestNameKeyMovesANameToAnotherDevice(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	laptop, phone := t.TempDir(), t.TempDir()

	t.Setenv("XDG_CONFIG_HOME", laptop)
	if code, out := session(t, []string{"-server", srv.Addr, "-name", "ann"}, "from the laptop"); code != 0 {
		t.Fatalf("laptop: exit %d\n%s", code, out)
	}
	code, key := session(t, []string{"-show-name-key"})
	key = strings.TrimSpace(key)
	if code != 0 || len(key) < 32 {
		t.Fatalf("-show-name-key: exit %d, %q", code, key)
	}

	t.Setenv("XDG_CONFIG_HOME", phone)
	if code, out := session(t, []string{"-server", srv.Addr, "-name", "ann"}, "impostor?"); code != 1 || !strings.Contains(out, "name-owned") {
		t.Fatalf("another device without the key: exit %d\n%s", code, out)
	}
	if code, out := session(t, []string{"-server", srv.Addr, "-name", "ann", "-name-key", key[:8] + " " + key[8:]}, "from the phone"); code != 0 || !strings.Contains(out, "-- joined general") {
		t.Fatalf("with the name key: exit %d\n%s", code, out)
	}
	if code, out := session(t, []string{"-server", srv.Addr, "-name", "ann"}, "remembered"); code != 0 {
		t.Fatalf("the name key was not remembered: exit %d\n%s", code, out)
	}
}

func TestServerKey(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{Args: []string{"-key", "k3y"}})
	if code, out := session(t, []string{"-server", srv.Addr, "-name", "ann"}, "x"); code != 1 || !strings.Contains(out, "unauthorized") {
		t.Fatalf("without the key: exit %d\n%s", code, out)
	}
	t.Setenv("CHAT_KEY", "k3y")
	if code, out := session(t, []string{"-server", srv.Addr, "-name", "ann"}, "with the key"); code != 0 || !strings.Contains(out, "-- joined general") {
		t.Fatalf("with CHAT_KEY: exit %d\n%s", code, out)
	}
}
