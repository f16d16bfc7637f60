package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// chatRun is the terminal client running in-process with its input fed
// by the test.
type chatRun struct {
	t         *testing.T
	feed      *io.PipeWriter
	out, errs testserver.LockedBuffer
	exit      chan int
}

func startChat(t *testing.T, args ...string) *chatRun {
	t.Helper()
	stdin, feed := io.Pipe()
	r := &chatRun{t: t, feed: feed, exit: make(chan int, 1)}
	go func() { r.exit <- run(context.Background(), args, stdin, &r.out, &r.errs) }()
	t.Cleanup(func() { feed.Close() })
	return r
}

func (r *chatRun) say(lines ...string) {
	r.t.Helper()
	for _, l := range lines {
		if _, err := fmt.Fprintln(r.feed, l); err != nil {
			r.t.Fatalf("writing %q: %v", l, err)
		}
	}
}

// waitLine waits for a line of stdout matching the regular expression,
// after mark bytes of output (see mark).
func (r *chatRun) waitLine(pattern string, after int) {
	r.t.Helper()
	waitMatch(r.t, &r.out, regexp.MustCompile(`(?m)`+pattern), after)
}

// waitErr waits for stderr to contain s.
func (r *chatRun) waitErr(s string) {
	r.t.Helper()
	waitOutput(r.t, &r.errs, s)
}

// mark is how much was printed so far: waitLine(…, mark) ignores it.
func (r *chatRun) mark() int { return len(r.out.String()) }

// end closes the input and returns the exit code.
func (r *chatRun) end() int {
	r.t.Helper()
	r.feed.Close()
	select {
	case code := <-r.exit:
		return code
	case <-time.After(30 * time.Second):
		r.t.Fatalf("did not exit at the end of input; stdout:\n%s", r.out.String())
		return 0
	}
}

func waitMatch(t *testing.T, out *testserver.LockedBuffer, re *regexp.Regexp, after int) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		got, written := out.Next() // woken by the next write, not polled
		if len(got) >= after && re.MatchString(got[after:]) {
			return
		}
		select {
		case <-written:
		case <-timeout:
			t.Fatalf("no line matching %s within 20s in:\n%s", re, got[min(after, len(got)):])
		}
	}
}

const hhmm = `\[\d\d:\d\d\] `

// TestCommandsAndRoomPrefixes drives the terminal through its commands
// with a real server: /help, /names, /join (a second room: lines get
// the room's prefix, and typed lines go to the room joined last), //, an
// unknown command (a sentence, nothing fatal), /part (back to the room
// before, lines without prefix again), /join of a room already joined
// (a switch), /msg (a direct message in the DM room) and exit 0 at the
// end.
func TestCommandsAndRoomPrefixes(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	bob := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "bob"})
	for _, room := range []string{"general", "random", bob.C.DirectRoom("ann")} {
		bob.C.Join(room)
		bob.WaitJoined(t, room)
	}

	ann := startChat(t, "-server", srv.Addr, "-name", "ann")
	ann.waitLine(`^-- joined general as ann; 2 here`, 0)

	ann.say("/help")
	for _, cmd := range []string{"/join ROOM", "/part", "/msg NAME text", "/rooms", "/names", "/help", "//text"} {
		ann.waitLine(`^--   `+regexp.QuoteMeta(cmd)+` `, 0)
	}
	ann.waitLine(`^-- other lines go to the current room: now #general$`, 0)
	ann.say("/names")
	ann.waitLine(`^-- 2 in #general: ann, bob$`, 0)

	bob.C.Send("general", "alone in general")
	ann.waitLine(`^`+hhmm+`bob: alone in general$`, 0) // one room: no prefix

	m := ann.mark()
	ann.say("/join random")
	ann.waitLine(`^-- joined random as ann; 2 here`, m)
	bob.C.Send("random", "hi from random")
	bob.C.Send("general", "hi in general")
	ann.waitLine(`^\[#random\] `+hhmm+`bob: hi from random$`, m)
	ann.waitLine(`^\[#general\] `+hhmm+`bob: hi in general$`, m)

	ann.say("typed in random", "//slash at the start")
	for _, text := range []string{"typed in random", "/slash at the start"} {
		if got := bob.WaitText(t, text); got.Room != "random" {
			t.Errorf("%q went to %s, want random", text, got.Room)
		}
	}
	ann.waitLine(`^\[#random\] `+hhmm+`ann: /slash at the start$`, m)

	ann.say("/frobnicate now")
	ann.waitErr("chat: unknown command /frobnicate; /help lists the commands")
	ann.say("/names")
	ann.waitLine(`^-- 2 in #random: ann, bob$`, m)

	m = ann.mark()
	ann.say("/part")
	ann.waitLine(`^-- now talking in #general$`, m)
	ann.waitLine(`^-- left #random$`, m)
	bob.Wait(t, "ann left random", func(ev client.Event) bool {
		p, ok := ev.(client.Presence)
		return ok && p.Room == "random" && len(p.Changes) == 1 && p.Changes[0].Name == "ann" && p.Changes[0].Kind == protocol.PresenceLeft
	})
	ann.say("back in general")
	if got := bob.WaitText(t, "back in general"); got.Room != "general" {
		t.Errorf("the line after /part went to %s", got.Room)
	}
	ann.waitLine(`^`+hhmm+`ann: back in general$`, m) // one room again: no prefix

	ann.say("/join GENERAL")
	ann.waitLine(`^-- now talking in #general$`, m)

	m = ann.mark()
	ann.say("/msg Bob psst, a secret")
	dm := bob.WaitText(t, "psst, a secret")
	if dm.Room != "@ann@bob" || dm.Sender != "ann" {
		t.Errorf("the direct message %+v, want in @ann@bob", dm)
	}
	ann.waitLine(`^\[@bob\] `+hhmm+`ann: psst, a secret$`, m)
	ann.say("and general still")
	if got := bob.WaitText(t, "and general still"); got.Room != "general" {
		t.Errorf("/msg switched the room: the next line went to %s", got.Room)
	}
	m = ann.mark()
	ann.say("/join @BOB", "talking to bob")
	ann.waitLine(`^-- now talking in @bob$`, m)
	if got := bob.WaitText(t, "talking to bob"); got.Room != "@ann@bob" {
		t.Errorf("the line after /join @BOB went to %s", got.Room)
	}
	ann.say("/msg bob", "/part extra", "/join")
	ann.waitErr("chat: usage: /msg NAME text")
	ann.waitErr("chat: /part leaves the current room and takes nothing after it")
	ann.waitErr("chat: /join needs a room")

	if code := ann.end(); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, ann.errs.String(), ann.out.String())
	}
	t.Logf("stdout:\n%s", ann.out.String())
}

// TestPartOfTheLastRoom: after /part of its only room the terminal is in
// no room: a typed line is refused with a sentence, /join brings it back,
// and the exit code stays 0.
func TestPartOfTheLastRoom(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	bob := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "bob"})
	bob.C.Join("random")
	bob.WaitJoined(t, "random")

	ann := startChat(t, "-server", srv.Addr, "-name", "ann")
	ann.waitLine(`^-- joined general as ann`, 0)
	ann.say("/part")
	ann.waitLine(`^-- left #general$`, 0)
	ann.say("into the void", "/names")
	ann.waitErr("chat: not sent: you are in no room; /join one")
	ann.waitErr("chat: /names: you are in no room")
	ann.say("/join random", "here now")
	if got := bob.WaitText(t, "here now"); got.Room != "random" {
		t.Errorf("went to %s", got.Room)
	}
	if code := ann.end(); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, ann.errs.String(), ann.out.String())
	}
}

// TestCommandsInAPipe: commands work in a pipe like lines: the script
// joins a second room, posts there and to the first, has an unknown
// command in between, and exits 0 once all is stored.
func TestCommandsInAPipe(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	watcher := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "watcher"})
	watcher.C.Join("deploys")
	watcher.WaitJoined(t, "deploys")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := `printf '%s\n' 'starting' '/join deploys' 'deploy finished' '/oops' '//etc/hosts changed' '/join general' 'back' | "$CHAT" -server "$SERVER" -name ci-bot`
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Env = append(os.Environ(), "CHAT_TEST_MAIN=1", "CHAT="+exe, "SERVER="+srv.Addr, "XDG_CONFIG_HOME="+t.TempDir())
	var out, errOut testserver.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chat: %v; stderr %q\nstdout:\n%s", err, errOut.String(), out.String())
	}
	for _, text := range []string{"deploy finished", "/etc/hosts changed"} {
		if m := watcher.WaitText(t, text); m.Room != "deploys" {
			t.Errorf("%q went to %s", text, m.Room)
		}
	}
	if !strings.Contains(errOut.String(), "unknown command /oops") {
		t.Errorf("stderr %q", errOut.String())
	}
	got := out.String()
	for _, pattern := range []string{`(?m)^\[#general\] ` + hhmm + `ci-bot: back$`, `(?m)^\[#deploys\] ` + hhmm + `ci-bot: deploy finished$`,
		`(?m)^(\[#general\] )?` + hhmm + `ci-bot: starting$`} {
		if !regexp.MustCompile(pattern).MatchString(got) {
			t.Errorf("stdout does not match %s:\n%s", pattern, got)
		}
	}
}

// needInbox skips a test when the server has no identities, DMs by
// notice, read markers or room list yet (protocol.WelcomeInbox).
func needInbox(t *testing.T, srv *testserver.Server) {
	t.Helper()
	raw, w := testserver.Handshake(t, srv.Addr)
	raw.Conn.Close()
	if w.Flags&protocol.WelcomeInbox == 0 {
		t.Skip("the server in this tree does not announce protocol.WelcomeInbox yet")
	}
}

// TestRoomsCommand: /rooms lists the server's rooms with their member
// counts and last activity; /rooms TEXT those whose name contains TEXT.
func TestRoomsCommand(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	needInbox(t, srv)
	bob := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "bob"})
	carol := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "carol"})
	for _, c := range []*clienttest.Recorder{bob, carol} {
		c.C.Join("busy")
		c.WaitJoined(t, "busy")
	}
	bob.C.Send("busy", "something")
	bob.WaitText(t, "something")

	ann := startChat(t, "-server", srv.Addr, "-name", "ann")
	ann.waitLine(`^-- joined general as ann`, 0)
	ann.say("/rooms")
	ann.waitLine(`^-- 2 rooms:$`, 0)
	ann.waitLine(`^--   #busy\s+2 here, last message \d\d:\d\d$`, 0)
	ann.waitLine(`^--   #general\s+1 here, you included, no messages$`, 0)
	m := ann.mark()
	ann.say("/rooms US")
	ann.waitLine(`^-- 1 room matching "US":\n--   #busy `, m)
	ann.say("/rooms nothing-like-it")
	ann.waitLine(`^-- no rooms matching "nothing-like-it"$`, m)
	if code := ann.end(); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, ann.errs.String(), ann.out.String())
	}
}

// TestIncomingDirectMessageOpensTheConversation: bob writes to ann, who
// is in general only. ann's terminal joins the DM room, says who wrote
// and prints the message once (not again with the room's history), then
// bob's next message with the DM prefix; /msg answers.
func TestIncomingDirectMessageOpensTheConversation(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	needInbox(t, srv)
	ann := startChat(t, "-server", srv.Addr, "-name", "ann")
	ann.waitLine(`^-- joined general as ann`, 0)

	bob := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "bob"})
	dm := bob.C.DirectRoom("ann")
	bob.C.Join(dm)
	bob.WaitJoined(t, dm)
	bob.C.Send(dm, "are you there?")
	ann.waitLine(`^-- direct message from bob; answer with /msg bob text$`, 0)
	ann.waitLine(`^\[@bob\] `+hhmm+`bob: are you there\?$`, 0)
	ann.waitLine(`^-- joined @ann@bob as ann`, 0)
	bob.C.Send(dm, "second")
	ann.waitLine(`^\[@bob\] `+hhmm+`bob: second$`, 0)
	ann.say("/msg bob yes")
	bob.WaitText(t, "yes")
	ann.waitLine(`^\[@bob\] `+hhmm+`ann: yes$`, 0)
	if n := strings.Count(ann.out.String(), "bob: are you there?"); n != 1 {
		t.Errorf("the first direct message printed %d times:\n%s", n, ann.out.String())
	}

	// In no room at all, a direct message opens the conversation too, and
	// it becomes the room typed lines go to.
	m := ann.mark()
	ann.say("/part", "/part")
	ann.waitLine(`^-- left @bob$`, m)
	ann.waitLine(`^-- left #general$`, m)
	bob.C.Send(dm, "still there?")
	ann.waitLine(`^-- direct message from bob`, m)
	ann.waitLine(`^\[@bob\] `+hhmm+`bob: still there\?$`, m)
	ann.waitLine(`^-- joined @ann@bob as ann`, m)
	ann.say("a plain line")
	if got := bob.WaitText(t, "a plain line"); got.Room != dm {
		t.Errorf("the plain line went to %s", got.Room)
	}
	if code := ann.end(); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, ann.errs.String(), ann.out.String())
	}
	if n := strings.Count(ann.out.String(), "bob: "); n != 3 {
		t.Errorf("%d lines of bob's, want 3 (none again from the history):\n%s", n, ann.out.String())
	}
}
