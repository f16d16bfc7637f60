package browser_test

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"chat/internal/browsertest"
	"chat/internal/disttest"
	"chat/internal/testserver"
)

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// buildWeb builds the web client from the current source into a
// directory laid out as ./build.sh wasm lays out assets/web.
func buildWeb(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	raw := filepath.Join(t.TempDir(), "main.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", raw, "./app")
	cmd.Dir = moduleRoot()
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the web client: %v\n%s", err, out)
	}
	in, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(dir, "main.wasm.gz"))
	if err != nil {
		t.Fatal(err)
	}
	// Fast rather than small: the release's is ./build.sh's gzip -9 (and
	// brotli); here the page loads it over loopback, and the best
	// compression took seconds of each test.
	zw, _ := gzip.NewWriterLevel(out, gzip.BestSpeed)
	if _, err := io.Copy(zw, in); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"), filepath.Join(dir, "wasm_exec.js"))
	copyFile(t, filepath.Join(moduleRoot(), "assets", "web", "index.html"), filepath.Join(dir, "index.html"))
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// terminal is the cmd/chat program, run as a person in a terminal would.
type terminal struct {
	t     *testing.T
	stdin io.WriteCloser
	mu    sync.Mutex
	lines []string
}

// startTerminal runs cmd/chat as name on the server at addr; args are more
// of its flags (-room ROOM, say).
func startTerminal(t *testing.T, addr, name string, args ...string) *terminal {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chat")
	build := exec.Command("go", "build", "-o", bin, "./cmd/chat")
	build.Dir = moduleRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building cmd/chat: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"-server", addr, "-name", name}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir()) // not the user's own settings
	term := &terminal{t: t}
	term.stdin, _ = cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			term.mu.Lock()
			term.lines = append(term.lines, sc.Text())
			term.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		term.stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("terminal output:\n%s", term.output())
		}
	})
	return term
}

func (term *terminal) output() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return strings.Join(term.lines, "\n")
}

// waitLine waits for an output line containing s.
func (term *terminal) waitLine(s string) string {
	term.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		term.mu.Lock()
		for _, l := range term.lines {
			if strings.Contains(l, s) {
				term.mu.Unlock()
				return l
			}
		}
		term.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	term.t.Fatalf("the terminal never printed %q; it printed:\n%s", s, term.output())
	return ""
}

func (term *terminal) say(line string) {
	if _, err := fmt.Fprintln(term.stdin, line); err != nil {
		term.t.Fatal(err)
	}
}

// countBlurs counts in window.blurs the times the page's hidden text
// input loses the keyboard focus. (One line: the driver reads one command
// per line.)
const countBlurs = `(window.blurs = 0, document.querySelector("textarea").addEventListener("blur", () => window.blurs++), true)`

// TestBrowserUserChatsWithTerminalUser: a person opens the page a real
// server serves, types a name and joins, and talks with someone on the
// terminal client; then the server dies and comes back, and what the
// browser user typed meanwhile arrives.
func TestBrowserUserChatsWithTerminalUser(t *testing.T) {
	b := browsertest.Start(t)
	web := buildWeb(t)
	srv := testserver.Start(t, testserver.Options{Args: []string{"-web", web}})
	term := startTerminal(t, srv.Addr, "terminal")
	term.waitLine("-- joined general")
	shots := browsertest.ScreenshotDir()

	b.Do("goto http://" + srv.HTTPAddr + "/")
	b.WaitApp()
	b.Screenshot(filepath.Join(shots, "browser-1-join.png"))
	// The page's hidden text input keeps the focus from the name field to
	// the composer. If it lost it for a frame, keys typed then were lost.
	b.Do("eval " + countBlurs)
	b.Do("type webuser")
	b.Do("press Enter")
	term.waitLine("* webuser joined")
	b.WaitText("No messages yet", filepath.Join(shots, "browser-1b-joined.png"))
	if got := b.Do(`eval window.blurs + " " + document.activeElement.tagName`); got != `"0 TEXTAREA"` {
		t.Errorf("from the form to the chat screen the text input lost the focus (blurs, then what has it now): %s", got)
	}

	b.Do("type hello from the browser ~ ok")
	b.Do("press Enter")
	term.waitLine("] webuser: hello from the browser ~ ok")
	term.say("reply from the terminal")
	b.WaitText("reply from the terminal", filepath.Join(shots, "browser-2-chat.png"))

	// The server goes away; the page says so, keeps what is typed, and
	// sends it when the server is back.
	srv.Kill()
	b.WaitTitle("noticed the outage", func(s string) bool { return strings.Contains(s, "(") })
	b.Do("type written while the server was down")
	b.Do("press Enter")
	// Once the retries are seconds apart, the banner says why in words:
	// the browser tells a page nothing about a failed WebSocket, and the
	// library's "use of closed network connection" is no reason for a
	// person.
	offline := filepath.Join(shots, "browser-3-offline.png")
	b.WaitText("Cannot reach the server at", offline)
	if screen := strings.ToLower(browsertest.ReadScreen(t, offline)); strings.Contains(screen, "closed network") || strings.Contains(screen, "failed to") {
		t.Errorf("the offline banner shows a Go error; the screen reads:\n%s", screen)
	}
	srv.Restart()
	b.WaitTitle("reconnected", func(s string) bool { return s == "#general — Chat" })
	term.waitLine("] webuser: written while the server was down")
	term.say("welcome back")
	b.WaitText("welcome back", filepath.Join(shots, "browser-4-back.png"))

	// Nothing was doubled on either side.
	if n := strings.Count(term.output(), "] webuser: hello from the browser ~ ok"); n != 1 {
		t.Errorf("the terminal printed the first message %d times", n)
	}
	t.Logf("screenshots in %s", shots)
}

// TestBuiltServerServesTheWebClient loads the web client embedded in the
// release server binary that ./build.sh server put in dist/, and joins
// a room with it: what a VPS operator deploys is what works.
func TestBuiltServerServesTheWebClient(t *testing.T) {
	bin := disttest.Artifact(t, "chat-server-VERSION-linux-"+runtime.GOARCH)
	b := browsertest.Start(t)
	srv := testserver.Start(t, testserver.Options{Binary: bin})
	b.Do("goto http://" + srv.HTTPAddr + "/")
	b.WaitApp()
	b.Do("type operator")
	b.Do("press Enter")
	b.WaitText("No messages yet", filepath.Join(browsertest.ScreenshotDir(), "browser-built-server.png"))
	t.Logf("%s served the web client; joined #general", filepath.Base(bin))
}
