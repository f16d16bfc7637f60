//go:build !js

package main

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"chat/app/internal/settings"
	"chat/internal/testserver"
	"chat/internal/xvfbtest"
)

// desktopApp is the app, this test binary running main, in a window on an
// Xvfb display, with its own config directory and notification bus.
type desktopApp struct {
	t       *testing.T
	ctx     context.Context
	display *xvfbtest.Display
	win     string
	out     *testserver.LockedBuffer
}

func startDesktopApp(t *testing.T, ctx context.Context, display *xvfbtest.Display, config string, env ...string) *desktopApp {
	t.Helper()
	app := exec.CommandContext(ctx, os.Args[0], "-debug") // logs what the tests wait for
	app.Env = display.Env(append(append(os.Environ(), runAsApp+"=1", "XDG_CONFIG_HOME="+config), env...))
	a := &desktopApp{t: t, ctx: ctx, display: display, out: new(testserver.LockedBuffer)}
	app.Stdout, app.Stderr = a.out, a.out
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	display.Output = a.out.String
	t.Cleanup(func() {
		_ = app.Process.Kill()
		_ = app.Wait()
		if t.Failed() {
			t.Logf("app output:\n%s", a.out.String())
		}
	})
	a.win = display.WaitWindow(ctx, "^Chat$", 30*time.Second)
	a.x("windowfocus", "--sync", a.win)
	return a
}

func (a *desktopApp) x(args ...string) string {
	a.t.Helper()
	return a.display.X(a.ctx, args...)
}

// waitTitle waits for the window's title to match re, which is how the
// window says what it shows: "(3) #general — Chat" with #general open and
// three unread messages.
func (a *desktopApp) waitTitle(re string) {
	a.t.Helper()
	a.display.WaitWindow(a.ctx, re, 30*time.Second)
}

// shoot saves the screen under dist/screenshots and returns it.
func (a *desktopApp) shoot(name string) image.Image {
	a.t.Helper()
	return a.display.Screenshot(a.ctx, filepath.Join(repoRoot(), "dist", "screenshots", name))
}

// waitScreen takes screenshots until one satisfies ok, as the window
// draws the next frames, and keeps the last as name.
func (a *desktopApp) waitScreen(name, what string, ok func(image.Image) bool) {
	a.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ok(a.shoot(name)) {
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("timed out waiting for %s; see %s", what, name)
		}
	}
}

// click clicks the primary button at (x, y) of the window (at the
// screen's corner: there is no window manager to move it).
func (a *desktopApp) click(x, y int) {
	a.t.Helper()
	a.x("mousemove", "--sync", strconv.Itoa(x), strconv.Itoa(y))
	a.x("click", "1")
}

// unfocus gives the keyboard focus to the screen's root window, as when
// the user turns to another program.
func (a *desktopApp) unfocus() {
	a.t.Helper()
	root := strings.TrimSpace(a.x("search", "--maxdepth", "0", "")) // the root window only
	since := len(a.out.String())
	a.x("windowfocus", "--sync", root)
	a.waitOutput(since, regexp.MustCompile(`msg="window focus" focused=false`))
}

// waitOutput waits for the app to write, after the first since bytes of
// its output, a line matching re (with -debug, its loop logs what it
// learns).
func (a *desktopApp) waitOutput(since int, re *regexp.Regexp) {
	a.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		out, more := a.out.Next()
		if re.MatchString(out[since:]) {
			return
		}
		select {
		case <-more:
		case <-deadline:
			a.t.Fatalf("the app did not log %q", re)
		}
	}
}

// Where the conversation list's rows are, in window pixels (one per dp
// under Xvfb): the middle of the first room's row, under the list's
// header and the "Rooms" heading, and the rows' height.
const (
	sideRowX       = 100
	sideFirstRoomY = 115
	sideRowHeight  = 33
)

// TestDesktopConversations is the app as a person lives in it, in a real
// window: alice, in #general and #random since last time, starts the app
// and joins with the filled form; bob, on the terminal client, writes in
// #random; the list shows
// the unread badge and the title counts it; a click opens #random and
// clears it; then, while alice looks at another program, bob writes to
// her directly: the conversation appears and the desktop shows a
// notification with his words.
func TestDesktopConversations(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	display := xvfbtest.StartSize(t, 1100, 800)
	bus := startNotificationBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	config := t.TempDir()
	store := settings.Open(filepath.Join(config, "chat"))
	if err := store.Save(settings.Settings{Server: srv.Addr, Name: "alice", Room: "general",
		Rooms: map[string][]string{srv.Addr: {"general", "random"}}}); err != nil {
		t.Fatal(err)
	}
	bob, bobLines := startTerminal(t, ctx, srv.Addr, "bob", "random")

	app := startDesktopApp(t, ctx, display, config, "DBUS_SESSION_BUS_ADDRESS="+bus.Addr)
	app.x("key", "Return") // the form is filled in from last time
	bobLines.waitFor(t, regexp.MustCompile(`^\* alice joined`), 30*time.Second)

	fmt.Fprintln(bob, "hello from random")
	app.waitTitle(`^\(1\) #general .* Chat$`)
	img := app.shoot("xvfb-desktop-1-unread.png")
	// The badge: the accent-free pill of a plain unread count, right in
	// #random's row.
	randomY := sideFirstRoomY + sideRowHeight
	if !hasColor(img, image.Rect(200, randomY-12, 272, randomY+12), divider) {
		t.Errorf("no unread badge in #random's row (y %d) of the list; see xvfb-desktop-1-unread.png", randomY)
	}

	app.click(sideRowX, randomY)
	app.waitTitle(`^#random .* Chat$`) // opened at its bottom, in a focused window: read
	img = app.shoot("xvfb-desktop-2-read.png")
	if !divided(img) {
		t.Error("the wide window shows no list beside the conversation; see xvfb-desktop-2-read.png")
	}
	app.unfocus()
	fmt.Fprintln(bob, "/msg alice psst, alice: lunch?")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the terminal's output:\n%s", bobLines)
		}
	})
	n := bus.wait(t, 30*time.Second)
	if n.Summary != "bob" || n.Body != "psst, alice: lunch?" {
		t.Fatalf("notification %+v, want bob saying %q", n, "psst, alice: lunch?")
	}
	app.waitTitle(`^\(1\) #random .* Chat$`) // the conversation with bob appeared, unread
	app.shoot("xvfb-desktop-3-direct.png")

	// A phone-sized window: one pane at a time.
	app.x("windowsize", "--sync", app.win, "400", "800")
	app.x("windowfocus", "--sync", app.win)
	app.waitScreen("xvfb-desktop-4-narrow.png", "the 400 px window to show one pane", func(img image.Image) bool { return !divided(img) })
}

// divider is the light theme's divider color.
var divider = color.RGBA{0xdf, 0xe1, 0xe6, 0xff}

// divided reports whether img shows the line between the list and the
// conversation of the wide layout: the column right of the list, all
// divider from below the header to above the composer.
func divided(img image.Image) bool {
	for y := 100; y < 600; y++ {
		if !near(img.At(272, y), divider) {
			return false
		}
	}
	return true
}
