package buildtest

import (
	"bufio"
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"chat/internal/testserver"
	"chat/protocol"
)

// startXvfb runs a virtual X server on a free display and returns its name.
func startXvfb(t *testing.T) string {
	t.Helper()
	xvfb := tool(t, "Xvfb", "xvfb")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// -displayfd picks a free display and writes its number to fd 3.
	cmd := exec.Command(xvfb, "-displayfd", "3", "-screen", "0", "480x800x24", "-nolisten", "tcp")
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
		return ":" + n
	case <-time.After(20 * time.Second):
		t.Fatalf("Xvfb did not report a display: %s", stderr.String())
	}
	return ""
}

// TestDesktopWindow starts the built server and the built desktop app in a
// virtual X display: the app must open its window and draw it (screenshot
// in dist/screenshots/build-desktop-*.png), and joining from it must reach
// the server, as a user of the downloaded binaries would do.
func TestDesktopWindow(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the desktop artifact tested here is the linux one")
	}
	app := artifact(t, "chat-VERSION-linux-"+runtime.GOARCH)
	server := artifact(t, "chat-server-VERSION-linux-"+runtime.GOARCH)
	xdotool := tool(t, "xdotool", "xdotool")
	tool(t, "xwd", "x11-apps")
	tool(t, "convert", "imagemagick")

	srv := startDistServer(t, []string{server}, []string{
		"CHAT_TCP=127.0.0.1:0", "CHAT_HTTP=127.0.0.1:0", "CHAT_DATA=" + t.TempDir(), "CHAT_LOG_FORMAT=json",
	})
	watcher, _ := testserver.JoinRoom(t, srv.TCP, "general", "watcher")
	display := startXvfb(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, app, "-server", srv.TCP)
	cmd.Env = withEnv(os.Environ(), "DISPLAY="+display, "WAYLAND_DISPLAY=", "XDG_CONFIG_HOME="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("app output:\n%s", out.String())
		}
	})
	x := func(args ...string) string {
		t.Helper()
		c := exec.CommandContext(ctx, xdotool, args...)
		c.Env = withEnv(os.Environ(), "DISPLAY="+display)
		b, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("xdotool %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return strings.TrimSpace(string(b))
	}

	var win string
	for deadline := time.Now().Add(30 * time.Second); win == ""; time.Sleep(200 * time.Millisecond) {
		c := exec.CommandContext(ctx, xdotool, "search", "--onlyvisible", "--name", "^Chat")
		c.Env = withEnv(os.Environ(), "DISPLAY="+display)
		b, _ := c.Output()
		if f := strings.Fields(string(b)); len(f) > 0 {
			win = f[0]
		}
		if win == "" && time.Now().After(deadline) {
			t.Fatalf("no visible window titled Chat… within 30s")
		}
	}
	geometry := map[string]int{}
	for _, kv := range strings.Fields(x("getwindowgeometry", "--shell", win)) {
		k, v, _ := strings.Cut(kv, "=")
		geometry[k], _ = strconv.Atoi(v)
	}
	rect := image.Rect(geometry["X"], geometry["Y"], geometry["X"]+geometry["WIDTH"], geometry["Y"]+geometry["HEIGHT"])
	if rect.Dx() != 420 || rect.Dy() != 720 {
		t.Errorf("window %v, want the app's 420×720", rect)
	}
	x("windowfocus", "--sync", win)
	time.Sleep(time.Second)
	img := screenshot(t, ctx, display, "build-desktop-1-join.png")
	checkDrawn(t, img, rect)

	// The name field has the focus: join as alice; the watcher must see it.
	x("type", "--delay", "40", "alice")
	x("key", "Return")
	waitPresence(t, watcher, "alice")
	time.Sleep(500 * time.Millisecond)
	screenshot(t, ctx, display, "build-desktop-2-joined.png")
}

// screenshot saves the whole X screen to dist/screenshots/NAME and
// returns it.
func screenshot(t *testing.T, ctx context.Context, display, name string) image.Image {
	t.Helper()
	dir := filepath.Join(distDir(), "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	c := exec.CommandContext(ctx, "sh", "-c", `xwd -root -silent | convert xwd:- png:"$0"`, path)
	c.Env = withEnv(os.Environ(), "DISPLAY="+display)
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("screenshot: %v\n%s", err, b)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	t.Logf("screenshot %s", path)
	return img
}

// checkDrawn fails unless the app's window area shows a drawn UI: mostly
// not the black of the empty X screen, and with the many shades that
// anti-aliased text and widgets give.
func checkDrawn(t *testing.T, img image.Image, rect image.Rectangle) {
	t.Helper()
	win := rect.Intersect(img.Bounds())
	if win.Empty() {
		t.Fatalf("window %v is off the screen %v", rect, img.Bounds())
	}
	colors := map[[3]uint32]bool{}
	black := 0
	for y := win.Min.Y; y < win.Max.Y; y++ {
		for x := win.Min.X; x < win.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			colors[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
			if r|g|b == 0 {
				black++
			}
		}
	}
	if total := win.Dx() * win.Dy(); black > total/2 {
		t.Errorf("the window area is %d%% black: nothing drawn", 100*black/total)
	}
	if len(colors) < 16 {
		t.Errorf("the window area has %d colors: no text or widgets drawn", len(colors))
	}
}

// waitPresence reads the watcher's connection until name joins its room.
func waitPresence(t *testing.T, watcher *testserver.Raw, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		m, err := watcher.Read()
		if err != nil {
			t.Fatalf("waiting for %s to join: %v", name, err)
		}
		if p, ok := m.(*protocol.Presence); ok {
			for _, c := range p.Changes {
				if c.Kind == protocol.PresenceJoined && c.Name == name {
					return
				}
			}
		}
	}
	t.Fatalf("%s did not join within 30s", name)
}
