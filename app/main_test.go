package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"chat/app/internal/settings"
	"chat/internal/testserver"
	"chat/internal/xvfbtest"
)

// runAsApp makes the test binary run the app itself when a test starts it
// with this variable set, so the window test needs no second build of Gio.
const runAsApp = "CHAT_APP_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsApp) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

// lines collects a process's output and lets the test wait for a line.
type lines struct {
	mu     sync.Mutex
	all    []string
	notify chan struct{}
}

func newLines(r io.Reader) *lines {
	l := &lines{notify: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			l.mu.Unlock()
			select {
			case l.notify <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

func (l *lines) waitFor(t *testing.T, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		for _, s := range l.all {
			if re.MatchString(s) {
				l.mu.Unlock()
				return s
			}
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-deadline:
			t.Fatalf("no line matching %q within %v; output so far:\n%s", re, timeout, l)
		}
	}
}

// startTerminal runs the terminal client (cmd/chat, built for the test)
// as name in room, with a config directory of its own, and returns its
// input and its output lines once it has joined.
func startTerminal(t *testing.T, ctx context.Context, addr, name, room string) (io.WriteCloser, *lines) {
	t.Helper()
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "chat"), "chat/cmd/chat")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building cmd/chat: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "chat"), "-server", addr, "-name", name, "-room", room)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir()) // its name key
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); _ = cmd.Wait() })
	l := newLines(out)
	l.waitFor(t, regexp.MustCompile(`^-- joined `+regexp.QuoteMeta(room)+` as `+regexp.QuoteMeta(name)), 20*time.Second)
	return in, l
}

// TestWindowUnderXvfb starts the server, a terminal client and the app in
// a real X window, and uses the app with synthetic key presses as a
// person would: type a name, Enter, type a message, Enter. The terminal
// client must receive it. Screenshots go to dist/screenshots.
func TestWindowUnderXvfb(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	display := xvfbtest.StartSize(t, 960, 680) // the window's size

	// The terminal client, bob, in #general.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bobIn, bobLines := startTerminal(t, ctx, srv.Addr, "bob", "general")

	// The app, this test binary running main, with its own config dir.
	config := t.TempDir()
	app := exec.CommandContext(ctx, os.Args[0], "-server", srv.Addr)
	app.Env = display.Env(append(os.Environ(), runAsApp+"=1", "XDG_CONFIG_HOME="+config))
	var appOut testserver.LockedBuffer
	app.Stdout, app.Stderr = &appOut, &appOut
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	display.Output = appOut.String
	t.Cleanup(func() {
		_ = app.Process.Kill()
		_ = app.Wait()
		if t.Failed() {
			t.Logf("app output:\n%s", appOut.String())
		}
	})
	x := func(args ...string) string {
		t.Helper()
		return display.X(ctx, args...)
	}
	shots := filepath.Join(repoRoot(), "dist", "screenshots")
	// shootWhen takes screenshots as the window draws until one shows
	// what ok looks for, and keeps it as name.
	shootWhen := func(name, what string, ok func(image.Image) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok(display.Screenshot(ctx, filepath.Join(shots, name))) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; see %s", what, name)
			}
		}
	}
	bg, surface := color.RGBA{0xf3, 0xf4, 0xf6, 0xff}, color.RGBA{0xff, 0xff, 0xff, 0xff}

	// Wait for the window, give it the keyboard, and let it draw.
	win := display.WaitWindow(ctx, "^Chat$", 30*time.Second)
	x("windowfocus", "--sync", win)
	shootWhen("xvfb-1-join.png", "the form", func(img image.Image) bool { return near(img.At(10, 400), bg) })

	// The name field has the focus at start: type and press Enter.
	x("type", "--delay", "40", "alice")
	x("key", "Return")
	bobLines.waitFor(t, regexp.MustCompile(`^\* alice joined`), 20*time.Second)
	// The conversation list (white, where the form was grey).
	shootWhen("xvfb-2-joined.png", "the conversations", func(img image.Image) bool { return near(img.At(10, 400), surface) })

	// After joining, the focus is in the message editor.
	x("type", "--delay", "40", "hello from the window")
	x("key", "Return")
	got := bobLines.waitFor(t, regexp.MustCompile(`alice: hello from the window$`), 20*time.Second)
	if !regexp.MustCompile(`^\[\d\d:\d\d\] alice: hello from the window$`).MatchString(got) {
		t.Fatalf("bob printed %q", got)
	}
	fmt.Fprintln(bobIn, "hi alice, this is the terminal")
	// Bob's bubble: white on the grey of the conversation.
	shootWhen("xvfb-3-chat.png", "bob's message", func(img image.Image) bool {
		return hasColor(img, image.Rect(290, 60, 600, 620), surface)
	})

	// The app remembered the join.
	b, err := os.ReadFile(filepath.Join(config, "chat", settings.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var st settings.Settings
	if err := json.Unmarshal(b, &st); err != nil || st.Name != "alice" || st.Server != srv.Addr {
		t.Fatalf("settings file %s: %+v, %v", b, st, err)
	}
}

// TestNoWaylandNoiseWithoutXDGRuntimeDir starts the app in an X session
// without XDG_RUNTIME_DIR, as under ssh -X, in containers and on plain X
// desktops: it must open its window without libwayland's "error:
// XDG_RUNTIME_DIR is invalid or not set" on stderr. Gio tries Wayland
// before X11, so by the time the window shows, the line would be there.
func TestNoWaylandNoiseWithoutXDGRuntimeDir(t *testing.T) {
	display := xvfbtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") {
			env = append(env, kv)
		}
	}
	app := exec.CommandContext(ctx, os.Args[0], "-server", "127.0.0.1:1")
	app.Env = display.Env(append(env, runAsApp+"=1", "XDG_CONFIG_HOME="+t.TempDir()))
	var stdout, stderr testserver.LockedBuffer
	app.Stdout, app.Stderr = &stdout, &stderr
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	display.Output = stderr.String
	t.Cleanup(func() {
		_ = app.Process.Kill()
		_ = app.Wait()
	})
	display.WaitWindow(ctx, "^Chat$", 30*time.Second)
	out := stderr.String()
	if strings.Contains(out, "XDG_RUNTIME_DIR") || strings.Contains(strings.ToLower(out), "error") {
		t.Fatalf("the app wrote an error to stderr at start:\n%s", out)
	}
	if out != "" {
		t.Logf("stderr (not errors):\n%s", out)
	}
}

// hasColor reports whether some pixel of r in img has about color c.
func hasColor(img image.Image, r image.Rectangle, c color.RGBA) bool {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if near(img.At(x, y), c) {
				return true
			}
		}
	}
	return false
}

// near reports whether c is about want (a few levels per channel).
func near(c color.Color, want color.RGBA) bool {
	r, g, b, _ := c.RGBA()
	d := func(x uint32, y uint8) int { return max(int(x>>8)-int(y), int(y)-int(x>>8)) }
	return d(r, want.R) <= 6 && d(g, want.G) <= 6 && d(b, want.B) <= 6
}
