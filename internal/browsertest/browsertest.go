// Package browsertest drives Debian's headless Chromium for tests, through
// Playwright (e2e/browser/driver.mjs), and reads what is on the screen
// with Tesseract OCR: the chat's web client draws everything on a canvas,
// so the screen is the only place its text can be read, as a person would.
//
// Without chromium, node, the npm packages or tesseract the tests skip,
// saying what is missing, unless CHAT_REQUIRE_BROWSER=1 (./build.sh test
// sets it), in which case they fail.
package browsertest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"chat/internal/testserver"
)

// Browser is one headless Chromium with one page.
type Browser struct {
	t      testing.TB
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr testserver.LockedBuffer // the page's console, from the driver
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// require skips or fails the test, as CHAT_REQUIRE_BROWSER says, when
// something the browser tests need is missing.
func require(t testing.TB, what, fix string) {
	t.Helper()
	msg := fmt.Sprintf("%s is missing: %s", what, fix)
	if os.Getenv("CHAT_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (set CHAT_REQUIRE_BROWSER=1 to make this a failure; ./build.sh test installs everything)")
}

// Start launches the browser; it is closed when the test ends.
func Start(t testing.TB) *Browser {
	t.Helper()
	dir := filepath.Join(moduleRoot(), "e2e", "browser")
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		require(t, "Chromium (/usr/bin/chromium)", "apt-get install chromium")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		require(t, "Node.js", "install nodejs")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		require(t, "playwright-core", "run npm ci in "+dir)
	}
	if _, err := exec.LookPath("tesseract"); err != nil {
		require(t, "Tesseract OCR", "apt-get install tesseract-ocr")
	}
	b := &Browser{t: t}
	b.cmd = exec.Command(node, filepath.Join(dir, "driver.mjs"))
	b.cmd.Dir = dir
	b.cmd.Stderr = &b.stderr
	b.in, _ = b.cmd.StdinPipe()
	stdout, _ := b.cmd.StdoutPipe()
	b.out = bufio.NewScanner(stdout)
	b.out.Buffer(make([]byte, 64<<10), 1<<20)
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fmt.Fprintln(b.in, "quit")
		done := make(chan struct{})
		go func() { b.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			b.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("browser console:\n%s", b.Console())
		}
	})
	return b
}

// Console returns what the page logged so far.
func (b *Browser) Console() string { return b.stderr.String() }

// WaitConsole waits up to timeout for the page's console to show a line
// matching re, failing the test (with the console) if it does not.
func (b *Browser) WaitConsole(re *regexp.Regexp, timeout time.Duration) {
	b.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		logged, more := b.stderr.Next()
		if re.MatchString(logged) {
			return
		}
		select {
		case <-more:
		case <-deadline.C:
			b.t.Fatalf("the page's console shows no line matching %s within %v:\n%s", re, timeout, logged)
		}
	}
}

// Do runs one driver command and returns its result.
func (b *Browser) Do(command string) string {
	b.t.Helper()
	result, failure := b.run(command)
	if failure != "" {
		b.t.Fatalf("browser: %s: %s", command, failure)
	}
	return result
}

// run runs one driver command: its result, or why it failed.
func (b *Browser) run(command string) (result, failure string) {
	b.t.Helper()
	if _, err := fmt.Fprintln(b.in, command); err != nil {
		b.t.Fatalf("browser: %v\n%s", err, b.Console())
	}
	answered := make(chan bool, 1)
	go func() { answered <- b.out.Scan() }()
	select {
	case ok := <-answered:
		if !ok {
			b.t.Fatalf("browser exited during %q\n%s", command, b.Console())
		}
	case <-time.After(60 * time.Second):
		b.t.Fatalf("browser: no answer to %q in 60s", command)
	}
	line := b.out.Text()
	if msg, failed := strings.CutPrefix(line, "error "); failed {
		return "", msg
	}
	return strings.TrimPrefix(strings.TrimPrefix(line, "ok"), " "), ""
}

// WaitFor waits until the JavaScript expression expr is true in the page
// (Playwright's waitForFunction, up to 30 s); the page signals nothing
// the test could wait on otherwise.
func (b *Browser) WaitFor(what, expr string) {
	b.t.Helper()
	if _, failure := b.run("waitfor " + expr); failure != "" {
		b.t.Fatalf("waiting for %s (%s): %s\n%s", what, expr, failure, b.Console())
	}
}

// WaitTitle polls the document title until match accepts it.
func (b *Browser) WaitTitle(what string, match func(string) bool) string {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		title := b.Do("title")
		if match(title) {
			return title
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: the title is still %q after 30s\n%s", what, title, b.Console())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitApp waits until the Gio app in the page has made its canvas and
// drawn its first frames.
func (b *Browser) WaitApp() {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for b.Do(`eval document.querySelector("#giowindow canvas") !== null`) != "true" {
		if time.Now().After(deadline) {
			b.t.Fatalf("the app did not start in 60s\n%s", b.Console())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the first frames
}

// Screenshot saves the page as a PNG at path.
func (b *Browser) Screenshot(path string) {
	b.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	b.Do("shot " + path)
}

// ReadScreen returns the text Tesseract reads in a screenshot.
func ReadScreen(t testing.TB, png string) string {
	t.Helper()
	out, err := exec.Command("tesseract", png, "-", "--psm", "11").Output()
	if err != nil {
		t.Fatalf("tesseract %s: %v", png, err)
	}
	return string(out)
}

// WaitText takes screenshots until the screen shows text (compared
// ignoring case and spacing), and returns the path of the last one.
func (b *Browser) WaitText(text, path string) {
	b.t.Helper()
	norm := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.Screenshot(path)
		screen := ReadScreen(b.t, path)
		if strings.Contains(norm(screen), norm(text)) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%q not on screen after 30s; the screen reads:\n%s\n(screenshot %s)", text, screen, path)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// ScreenshotDir is where tests keep their screenshots for people to look
// at: dist/screenshots in the source tree.
func ScreenshotDir() string { return filepath.Join(moduleRoot(), "dist", "screenshots") }
