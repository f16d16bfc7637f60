// Package xvfbtest runs a virtual X display for tests that open real
// windows (Debian's xvfb) and drives it as a person would: xdotool for
// the keyboard and the window, xwd and ImageMagick for screenshots.
package xvfbtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tool returns the path of a program the window tests need, failing the
// test with the Debian package that provides it when it is missing.
func tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed for the window tests (Debian package %s; ./build.sh deps installs it)", name, pkg)
	}
	return p
}

// Display is a running Xvfb screen (480×800 pixels unless StartSize says).
type Display struct {
	t       testing.TB
	Name    string // for DISPLAY, such as ":99"
	xdotool string
	// Output, when set, is shown with a failing xdotool command: the
	// output of the program under test, which usually says why.
	Output func() string
}

var envName = regexp.MustCompile(`^(DISPLAY|WAYLAND_DISPLAY)=`)

// Env returns env with DISPLAY set to d and no Wayland display, so a
// program started with it opens its windows on d.
func (d *Display) Env(env []string) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		if !envName.MatchString(kv) {
			out = append(out, kv)
		}
	}
	return append(out, "DISPLAY="+d.Name, "WAYLAND_DISPLAY=")
}

// X runs xdotool with args on d and returns its output, failing the test
// if it fails.
func (d *Display) X(ctx context.Context, args ...string) string {
	d.t.Helper()
	cmd := exec.CommandContext(ctx, d.xdotool, args...)
	cmd.Env = d.Env(os.Environ())
	out, err := cmd.CombinedOutput()
	if err != nil {
		more := ""
		if d.Output != nil {
			more = "\noutput of the program under test:\n" + d.Output()
		}
		d.t.Fatalf("xdotool %s: %v\n%s%s", strings.Join(args, " "), err, out, more)
	}
	return strings.TrimSpace(string(out))
}

// WaitWindow waits up to timeout for a visible window whose title
// matches the regular expression title, and returns its id.
func (d *Display) WaitWindow(ctx context.Context, title string, timeout time.Duration) string {
	d.t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(200 * time.Millisecond) {
		cmd := exec.CommandContext(ctx, d.xdotool, "search", "--onlyvisible", "--name", title)
		cmd.Env = d.Env(os.Environ())
		out, _ := cmd.Output() // exits 1 while there is no such window
		if f := strings.Fields(string(out)); len(f) > 0 {
			return f[0]
		}
		if time.Now().After(deadline) {
			more := ""
			if d.Output != nil {
				more = "; output of the program under test:\n" + d.Output()
			}
			d.t.Fatalf("no visible window titled %q within %v%s", title, timeout, more)
		}
	}
}

// Screenshot saves the whole screen as a PNG at path and returns it.
func (d *Display) Screenshot(ctx context.Context, path string) image.Image {
	d.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		d.t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", `xwd -root -silent | convert xwd:- png:"$0"`, path)
	cmd.Env = d.Env(os.Environ())
	if out, err := cmd.CombinedOutput(); err != nil {
		d.t.Fatalf("screenshot: %v\n%s", err, out)
	}
	f, err := os.Open(path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		d.t.Fatalf("screenshot %s: %v", path, err)
	}
	d.t.Logf("screenshot %s", path)
	return img
}

// Start runs Xvfb on a free display until the test ends. It fails the
// test when Xvfb, xdotool, xwd or convert is missing: CI installs them
// all, and a window test that skipped would prove nothing.
func Start(t testing.TB) *Display {
	t.Helper()
	return StartSize(t, 480, 800)
}

// StartSize is Start with a screen of width×height pixels.
func StartSize(t testing.TB, width, height int) *Display {
	t.Helper()
	xvfb := tool(t, "Xvfb", "xvfb")
	d := &Display{t: t, xdotool: tool(t, "xdotool", "xdotool")}
	tool(t, "xwd", "x11-apps")
	tool(t, "convert", "imagemagick")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// -displayfd picks a free display and writes its number to fd 3.
	cmd := exec.Command(xvfb, "-displayfd", "3", "-screen", "0", fmt.Sprintf("%dx%dx24", width, height), "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	num := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		num <- strings.TrimSpace(line)
	}()
	select {
	case n := <-num:
		if n == "" {
			t.Fatalf("Xvfb did not start: %s", stderr.String())
		}
		d.Name = ":" + n
		return d
	case <-time.After(20 * time.Second):
		t.Fatalf("Xvfb did not report a display: %s", stderr.String())
	}
	return nil
}
