package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
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
		`(?m)^-- connected to 127\.0\.0\.1:\d+$`,
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
		{[]string{"-server", srv.Addr, "-name", "x", "-room", "@bob@carol"}, 2, "direct-message room of other names than x"},
		{[]string{"-server", srv.Addr, "-name", "x@y"}, 2, "contains @"},
		{[]string{"-server", srv.Addr, "-name", "TAKEN"}, 1, "name-owned"},
		// Longer than the server's 32 bytes: the client refuses it itself,
		// and the program says so and fails like any refusal.
		{[]string{"-server", srv.Addr, "-name", strings.Repeat("n", 40)}, 1, "longer than the 32 bytes the server allows"},
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

// TestMain runs the program itself when the test binary is started as
// chat by a test (CHAT_TEST_MAIN=1), so a test can put it in a shell
// pipe exactly as users do.
func TestMain(m *testing.M) {
	if os.Getenv("CHAT_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestPipeOf300LinesAtTheDefaultRate: a script pipes 300 lines into chat
// against a server with its default limits (5 frames a second after a
// burst of 20; 10 s over the rate is a flood). chat paces its sends, waits
// while they make progress, and exits 0 only when all 300 are stored, in
// order. The old client wrote them all at once, was cut off as a flood,
// and gave up 10 s after the end of input with most lines unsent.
//
// Paced at the server's rate this takes about a minute, so it runs in
// parallel with the package's other tests.
func TestPipeOf300LinesAtTheDefaultRate(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, testserver.Options{Args: []string{"-msg-rate", "5"}}) // testserver turns the rate off
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", `seq 300 | sed 's/^/msg /' | "$CHAT" -server "$SERVER" -name ci-bot`)
	cmd.Env = append(os.Environ(), "CHAT_TEST_MAIN=1", "CHAT="+exe, "SERVER="+srv.Addr, "XDG_CONFIG_HOME="+t.TempDir())
	var out, errOut testserver.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("chat: %v after %v; stderr %q\nstdout:\n%s", err, took, errOut.String(), out.String())
	}
	t.Logf("300 lines piped, stored and echoed in %v", took.Round(100*time.Millisecond))
	if n := strings.Count(out.String(), "] ci-bot: msg "); n != 300 {
		t.Errorf("%d of 300 lines printed back", n)
	}
	if strings.Contains(out.String(), "rate-limited") {
		t.Errorf("cut off as a flood:\n%s", out.String())
	}
	raw, _ := testserver.Handshake(t, srv.Addr)
	raw.Send(&protocol.Join{Room: "general", Name: "checker", Resume: true})
	testserver.Expect[*protocol.Joined](raw)
	for i, m := range raw.Messages(300) {
		if want := fmt.Sprint("msg ", i+1); m.Text != want || m.Sender != "ci-bot" {
			t.Fatalf("stored #%d: %s %q, want ci-bot %q", i+1, m.Sender, m.Text, want)
		}
	}
}

// TestCertificateChangedSaysHowToTrustTheNewOne: the server's certificate
// changes after it was trusted. chat refuses it and prints the exact
// command that trusts the new one; that command then works.
func TestCertificateChangedSaysHowToTrustTheNewOne(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir := t.TempDir()
	certFile, keyFile, cert := testserver.SelfSigned(t, dir)
	srv := testserver.Start(t, testserver.Options{Args: []string{"-tls-cert", certFile, "-tls-key", keyFile}})
	addr := "tls://" + srv.Addr
	if code, out := session(t, []string{"-server", addr, "-name", "ann", "-trust", protocol.CertFingerprint(cert.Raw)}, "first"); code != 0 {
		t.Fatalf("trusting the first certificate: exit %d\n%s", code, out)
	}

	_, _, renewed := testserver.SelfSigned(t, dir) // the operator replaces it
	srv.Restart()
	fp := protocol.CertFingerprint(renewed.Raw)
	code, out := session(t, []string{"-server", addr, "-name", "ann"}, "second")
	want := "chat -server " + addr + " -trust " + fp
	if code != 1 || !strings.Contains(out, "has changed") || !strings.Contains(out, want) {
		t.Fatalf("changed certificate: exit %d, want 1 and %q in:\n%s", code, want, out)
	}
	t.Logf("output:\n%s", out)
	args := strings.Fields(strings.TrimPrefix(want, "chat "))
	if code, out := session(t, append(args, "-name", "ann"), "third"); code != 0 || !strings.Contains(out, "-- joined general") {
		t.Fatalf("the printed command: exit %d\n%s", code, out)
	}
}

// TestWebPortIsNamedAtOnce: pointed at the server's web port, chat used to
// wait 10 s and blame the server. It now says at once which port to use.
func TestWebPortIsNamedAtOnce(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	start := time.Now()
	code, out := session(t, []string{"-server", srv.HTTPAddr, "-name", "ann"}, "hello")
	took := time.Since(start)
	if code != 1 || !strings.Contains(out, "this is the server's web port; the apps use port 7878 (or a ws:// URL)") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if took > 3*time.Second {
		t.Errorf("took %v", took)
	}
}

// gatedDialer dials TCP and lets a test cut the connection and hold the
// next dials, to keep a client offline while others talk.
type gatedDialer struct {
	mu   sync.Mutex
	gate chan struct{}
	last client.Conn
}

func (g *gatedDialer) dial(ctx context.Context, addr string) (client.Conn, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c, err := client.DialTCP(ctx, addr)
	if err == nil {
		g.mu.Lock()
		g.last = c
		g.mu.Unlock()
	}
	return c, err
}

// cutAndHold drops the connection and holds dials until release.
func (g *gatedDialer) cutAndHold() (release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gate := make(chan struct{})
	g.gate = gate
	g.last.Close()
	return func() {
		g.mu.Lock()
		g.gate = nil
		g.mu.Unlock()
		close(gate)
	}
}

// waitOutput waits up to 20 s for out to contain s.
func waitOutput(t *testing.T, out *testserver.LockedBuffer, s string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		got, written := out.Next() // woken by the next write, not polled
		if strings.Contains(got, s) {
			return
		}
		select {
		case <-written:
		case <-timeout:
			t.Fatalf("no %q within 20s in:\n%s", s, out.String())
		}
	}
}

var messageLine = regexp.MustCompile(`(?m)^\[\d\d:\d\d\] (.*)$`)

// TestOfflineLineIsPrintedAtItsPlace: ann types a line while offline; bob
// posts meanwhile. The server stores bob's first, so both terminals must
// print bob's line first: chat prints our own lines when the server's
// MESSAGE brings them, in sequence order, not when typed. While offline it
// says that the line waits (the old client said nothing).
func TestOfflineLineIsPrintedAtItsPlace(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	g := &gatedDialer{}
	ann, err := client.New(client.Config{Addr: srv.Addr, Name: "ann", Dial: g.dial,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ann.Join("general")
	annLines, annDone := make(chan string), make(chan error, 1)
	var annOut testserver.LockedBuffer
	annExit := make(chan int, 1)
	go func() {
		annExit <- loop(context.Background(), ann, "general", srv.Addr, 10*time.Second, annLines, annDone, &annOut, &annOut)
	}()
	waitOutput(t, &annOut, "-- joined general")

	bobIn, bobFeed := io.Pipe()
	var bobOut testserver.LockedBuffer
	bobExit := make(chan int, 1)
	go func() {
		bobExit <- run(context.Background(), []string{"-server", srv.Addr, "-name", "bob"}, bobIn, &bobOut, &bobOut)
	}()
	waitOutput(t, &bobOut, "-- joined general")

	release := g.cutAndHold()
	waitOutput(t, &annOut, "-- reconnecting")
	fmt.Fprintln(bobFeed, "posted meanwhile")
	waitOutput(t, &bobOut, "bob: posted meanwhile")
	annLines <- "typed offline"
	waitOutput(t, &annOut, "-- not connected: what you type is sent when the connection is back")
	release()
	waitOutput(t, &bobOut, "ann: typed offline")
	waitOutput(t, &annOut, "ann: typed offline")

	annDone <- nil
	bobFeed.Close()
	for name, exit := range map[string]chan int{"ann": annExit, "bob": bobExit} {
		select {
		case code := <-exit:
			if code != 0 {
				t.Errorf("%s: exit %d", name, code)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not exit", name)
		}
	}
	want := "[bob: posted meanwhile ann: typed offline]"
	for name, out := range map[string]string{"ann": annOut.String(), "bob": bobOut.String()} {
		var got []string
		for _, m := range messageLine.FindAllStringSubmatch(out, -1) {
			got = append(got, m[1])
		}
		if fmt.Sprint(got) != want {
			t.Errorf("%s printed %q, want %s; output:\n%s", name, got, want, out)
		}
	}
}
