package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
)

// openPTY returns a new pseudo-terminal: the side a terminal emulator
// holds (keys go in, the screen comes out) and the side a program runs on.
func openPTY(t *testing.T) (screen, program *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestTypingFromATerminal: chat on a (pseudo-)terminal, as a person runs
// it. Keys typed make the room hear that ann is typing; erasing the line
// stops it; Enter runs a command or sends the line; a search shows its
// match in bold.
// bob's typing shows on ann's screen. Ctrl-D ends chat, which gives the
// terminal its line editing back.
func TestTypingFromATerminal(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	screen, tty := openPTY(t)
	var out testserver.LockedBuffer
	go io.Copy(&out, screen)
	exit := make(chan int, 1)
	go func() {
		exit <- run(context.Background(), []string{"-server", srv.Addr, "-name", "ann"}, tty, tty, tty)
	}()
	waitOutput(t, &out, "-- joined general as ann")
	bob := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "bob"})
	bob.C.Join("general")
	bob.WaitJoined(t, "general")
	waitOutput(t, &out, "* bob joined")

	type_ := func(keys string) {
		t.Helper()
		if _, err := screen.WriteString(keys); err != nil {
			t.Fatal(err)
		}
	}
	type_("hel")
	if ty := waitTyping(t, bob, false); ty.Name != "ann" {
		t.Fatalf("Typing %+v", ty)
	}
	type_("\x15") // Ctrl-U: the line is erased
	if ty := waitTyping(t, bob, true); ty.Name != "ann" {
		t.Fatalf("Typing %+v, want stopped", ty)
	}
	type_("/names\r")
	waitOutput(t, &out, "-- 2 in #general: ann, bob")
	type_("hello from a terminal\r")
	bob.WaitText(t, "hello from a terminal")
	type_("/search terminal\r") // on a terminal the match is in bold
	waitOutput(t, &out, "ann: hello from a \x1b[1mterminal\x1b[0m")
	if err := bob.C.Typing("general"); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, &out, "* bob is typing…")

	type_("\x04")
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d:\n%s", code, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("chat did not end at Ctrl-D:\n%s", out.String())
	}
	tios, err := unix.IoctlGetTermios(int(tty.Fd()), ioctlGetTermios)
	if err != nil {
		t.Fatal(err)
	}
	if tios.Lflag&unix.ICANON == 0 || tios.Lflag&unix.ECHO == 0 {
		t.Error("the terminal's line editing and echo are still off after chat ended")
	}
}

func waitTyping(t *testing.T, r *clienttest.Recorder, stopped bool) client.Typing {
	t.Helper()
	return r.Wait(t, fmt.Sprintf("Typing stopped=%v", stopped), func(ev client.Event) bool {
		ty, ok := ev.(client.Typing)
		return ok && ty.Stopped == stopped
	}).(client.Typing)
}

// TestTerminalAfterSuspend: while chat runs on a terminal, Ctrl-\ is
// off (its SIGQUIT would end chat without giving the terminal its echo
// back). After Ctrl-Z and fg the shell may have put its own modes back:
// at SIGCONT chat turns key-by-key input on again and draws the draft
// again.
func TestTerminalAfterSuspend(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	screen, tty := openPTY(t)
	var out testserver.LockedBuffer
	go io.Copy(&out, screen)
	exit := make(chan int, 1)
	go func() {
		exit <- run(context.Background(), []string{"-server", srv.Addr, "-name", "ann"}, tty, tty, tty)
	}()
	waitOutput(t, &out, "-- joined general as ann")
	bob := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "bob"})
	bob.C.Join("general")
	bob.WaitJoined(t, "general")
	fd := int(tty.Fd())
	tios, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		t.Fatal(err)
	}
	if tios.Cc[unix.VQUIT] != vdisable {
		t.Errorf("Ctrl-\\ is still %#x while chat runs", tios.Cc[unix.VQUIT])
	}
	if _, err := screen.WriteString("half a li"); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, &out, "half a li")
	// What a shell does when chat is stopped: its own modes, with line
	// editing and echo.
	cooked := *tios
	cooked.Lflag |= unix.ICANON | unix.ECHO
	if err := unix.IoctlSetTermios(fd, ioctlSetTermios, &cooked); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGCONT); err != nil { // fg
		t.Fatal(err)
	}
	waitOutput(t, &out, "\r\x1b[Khalf a li")
	if tios, err := unix.IoctlGetTermios(fd, ioctlGetTermios); err != nil || tios.Lflag&(unix.ICANON|unix.ECHO) != 0 {
		t.Fatalf("after SIGCONT the terminal is in line mode again (%v)", err)
	}
	// Key by key again: the draft goes on, and the line is sent whole.
	if _, err := screen.WriteString("ne\r"); err != nil {
		t.Fatal(err)
	}
	if m := bob.WaitText(t, "half a line"); m.Sender != "ann" {
		t.Errorf("message %+v", m)
	}
	if _, err := screen.WriteString("\x04"); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d:\n%s", code, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("chat did not end at Ctrl-D:\n%s", out.String())
	}
	tios, err = unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		t.Fatal(err)
	}
	if tios.Lflag&unix.ICANON == 0 || tios.Cc[unix.VQUIT] == vdisable {
		t.Error("the terminal's modes were not given back after chat ended")
	}
}
