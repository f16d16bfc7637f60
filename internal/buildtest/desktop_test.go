package buildtest

import (
	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"chat/internal/disttest"
	"chat/internal/testserver"
	"chat/internal/xvfbtest"
	"chat/protocol"
)

// TestDesktopWindow starts the built server and the built desktop app in a
// virtual X display: the app must open its window and draw it (screenshot
// in dist/screenshots/build-desktop-*.png), and joining from it must reach
// the server, as a user of the downloaded binaries would do.
func TestDesktopWindow(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the desktop artifact tested here is the linux one")
	}
	app := disttest.Artifact(t, "chat-VERSION-linux-"+runtime.GOARCH)
	server := disttest.Artifact(t, "chat-server-VERSION-linux-"+runtime.GOARCH)

	srv := startDistServer(t, []string{server}, []string{
		"CHAT_TCP=127.0.0.1:0", "CHAT_HTTP=127.0.0.1:0", "CHAT_DATA=" + t.TempDir(), "CHAT_LOG_FORMAT=json",
	})
	watcher, _ := testserver.JoinRoom(t, srv.TCP, "general", "watcher")
	display := xvfbtest.Start(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, app, "-debug", "-server", srv.TCP)
	cmd.Env = display.Env(withEnv(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir()))
	var out testserver.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	display.Output = out.String
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("app output:\n%s", out.String())
		}
	})
	x := func(args ...string) string {
		t.Helper()
		return display.X(ctx, args...)
	}

	win := display.WaitWindow(ctx, "^Chat", 30*time.Second)
	geometry := map[string]int{}
	for _, kv := range strings.Fields(x("getwindowgeometry", "--shell", win)) {
		k, v, _ := strings.Cut(kv, "=")
		geometry[k], _ = strconv.Atoi(v)
	}
	rect := image.Rect(geometry["X"], geometry["Y"], geometry["X"]+geometry["WIDTH"], geometry["Y"]+geometry["HEIGHT"])
	if rect.Dx() != 960 || rect.Dy() != 680 {
		t.Errorf("window %v, want the app's 960×680", rect)
	}
	x("windowfocus", "--sync", win)
	// The window maps before its first frame is drawn: wait for the app
	// to say it drew one.
	for !strings.Contains(out.String(), "first frame drawn") {
		_, more := out.Next()
		select {
		case <-more:
		case <-ctx.Done():
			t.Fatalf("the app drew no frame:\n%s", out.String())
		}
	}
	img := display.Screenshot(ctx, filepath.Join(disttest.Dir(), "screenshots", "build-desktop-1-join.png"))
	if err := drawn(img, rect); err != nil {
		t.Fatal(err)
	}

	// The name field has the focus: join as alice; the watcher must see it.
	x("type", "--delay", "40", "alice")
	x("key", "Return")
	waitPresence(t, watcher, "alice")
	time.Sleep(500 * time.Millisecond)
	display.Screenshot(ctx, filepath.Join(disttest.Dir(), "screenshots", "build-desktop-2-joined.png"))
}

// drawn reports an error unless the app's window area shows a drawn UI: mostly
// not the black of the empty X screen, and with the many shades that
// anti-aliased text and widgets give.
func drawn(img image.Image, rect image.Rectangle) error {
	win := rect.Intersect(img.Bounds())
	if win.Empty() {
		return fmt.Errorf("window %v is off the screen %v", rect, img.Bounds())
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
		return fmt.Errorf("the window area is %d%% black: nothing drawn", 100*black/total)
	}
	if len(colors) < 16 {
		return fmt.Errorf("the window area has %d colors: no text or widgets drawn", len(colors))
	}
	return nil
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
