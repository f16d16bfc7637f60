package buildtest

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"chat/internal/disttest"
	"chat/internal/testserver"
)

// TestReleaseWorkflow lints .github/workflows with actionlint (pinned in
// go.mod as a tool; it runs shellcheck on the run: steps) and checks the
// workflow does what the issue asks: on v* tags, full history for git
// describe, the Android SDK packages build.sh recommends, ./build.sh all,
// dist/ uploaded and attached to the release.
func TestReleaseWorkflow(t *testing.T) {
	tool(t, "shellcheck", "shellcheck") // actionlint checks run: scripts with it when present
	cmd := exec.Command(goTool(), "tool", "actionlint", "-color=false")
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("actionlint: %v\n%s", err, out)
	}

	b, err := os.ReadFile(filepath.Join(repoRoot(), ".github", "workflows", "release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	wf := string(b)
	script := string(mustRead(t, filepath.Join(repoRoot(), "build.sh")))
	setting := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `=(\S+)`).FindStringSubmatch(script)
		if m == nil {
			t.Fatalf("build.sh does not set %s", name)
		}
		return m[1]
	}
	for _, want := range []string{
		`tags: ["v*"]`, "workflow_dispatch:", "fetch-depth: 0", "go-version-file: go.mod",
		"java-version: \"17\"", "android-actions/setup-android@v3",
		`"platforms;android-` + setting("ANDROID_PLATFORM") + `"`,
		`"build-tools;` + setting("ANDROID_BUILD_TOOLS") + `"`,
		`"ndk;` + setting("ANDROID_NDK") + `"`,
		"run: ./build.sh deps all", "actions/upload-artifact@v4", "softprops/action-gh-release@v2",
		"dist/SHA256SUMS", "contents: write",
	} {
		if !strings.Contains(wf, want) {
			t.Errorf("release.yml lacks %s", want)
		}
	}
}

// TestBuildScriptLint runs shellcheck on build.sh and the CI entry point.
func TestBuildScriptLint(t *testing.T) {
	sc := tool(t, "shellcheck", "shellcheck")
	mustRead(t, filepath.Join(repoRoot(), "build.sh"))
	mustRead(t, filepath.Join(repoRoot(), ".ci", "run"))
	cmd := exec.Command(sc, "build.sh", ".ci/run")
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// TestBuildScriptTargets checks the front door itself: help lists every
// target, unknown targets and a bare call fail, version is git describe,
// and macOS explains that it needs a Mac.
func TestBuildScriptTargets(t *testing.T) {
	out, status := buildScript(t, nil, "help")
	if status != 0 {
		t.Fatalf("./build.sh help: exit %d\n%s", status, out)
	}
	for _, target := range []string{"deps", "run", "test", "desktop", "windows", "macos", "wasm", "server", "android", "android-check", "all", "version", "clean", "help"} {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(target) + `\s`).MatchString(out) {
			t.Errorf("help does not list %s:\n%s", target, out)
		}
	}
	if out, status := buildScript(t, nil); status != 2 || !strings.Contains(out, "Usage:") {
		t.Errorf("./build.sh without a target: exit %d, want 2 and the usage\n%s", status, out)
	}
	if out, status := buildScript(t, nil, "no-such-target"); status == 0 || !strings.Contains(out, "unknown target: no-such-target") {
		t.Errorf("unknown target: exit %d\n%s", status, out)
	}
	if out, status := buildScript(t, nil, "version"); status != 0 || strings.TrimSpace(out) != disttest.Version(t) {
		t.Errorf("./build.sh version: %q (exit %d), want %q", out, status, disttest.Version(t))
	}
	if out, err := exec.Command("uname", "-s").Output(); err == nil && strings.TrimSpace(string(out)) != "Darwin" {
		out, status := buildScript(t, nil, "macos")
		if status == 0 || !strings.Contains(out, "built on a Mac") || !strings.Contains(out, "gogio -target macos") {
			t.Errorf("./build.sh macos off a Mac: exit %d\n%s", status, out)
		}
	}
}

// TestDepsWithoutApt runs ./build.sh deps where there is no apt-get: it
// must stop and print the packages for Fedora, Arch and Debian, including
// those the build and deploy tests added.
func TestDepsWithoutApt(t *testing.T) {
	// A PATH with every program of this machine except apt-get.
	bin := t.TempDir()
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() == "apt-get" {
				continue
			}
			_ = os.Symlink(filepath.Join(dir, e.Name()), filepath.Join(bin, e.Name()))
		}
	}
	out, status := buildScript(t, []string{"PATH=" + bin}, "deps")
	if status == 0 {
		t.Fatalf("deps without apt-get succeeded:\n%s", out)
	}
	for _, want := range []string{
		"Fedora:  sudo dnf install ", "Arch:    sudo pacman -S --needed ", "Debian/Ubuntu: sudo apt-get install ",
		"ShellCheck", "brotli", "strace", "systemd", "xorg-x11-server-Xvfb", "xorg-server-xvfb", "openjdk",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the message lacks %q:\n%s", want, out)
		}
	}
}

// TestAllWithoutAndroidSDK runs ./build.sh all into a fresh directory on a
// machine without the Android SDK: it builds everything else, writes the
// checksums, then fails naming android. (With the Go build cache of
// ./build.sh test this takes some seconds; -short skips it.)
func TestAllWithoutAndroidSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: ./build.sh all builds every artifact again")
	}
	disttest.Artifact(t, "chat-server-VERSION-linux-amd64") // skip like the others when nothing was built
	trackSources(t)
	dist := t.TempDir()
	out, status := buildScript(t, androidEnv("CHAT_DIST="+dist), "all")
	if status == 0 {
		t.Fatalf("./build.sh all succeeded without an Android SDK:\n%s", out)
	}
	for _, want := range []string{"cannot build the APK; missing:", "all: failed: android (see above); the other artifacts are in " + dist} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	v := disttest.Version(t)
	sums := string(mustRead(t, filepath.Join(dist, "SHA256SUMS")))
	for _, name := range []string{
		"chat-web-" + v + ".tar", "chat-server-" + v + "-linux-amd64", "chat-server-" + v + "-linux-arm64",
		"chat-" + v + "-linux-amd64", "chat-" + v + "-windows-amd64.exe", "chat.service", "chat.env.example",
	} {
		if _, err := os.Stat(filepath.Join(dist, name)); err != nil {
			t.Errorf("all did not build %s: %v", name, err)
		}
		if !strings.Contains(sums, "  "+name+"\n") {
			t.Errorf("SHA256SUMS lacks %s", name)
		}
	}
}

// runScriptSandbox is a copy of build.sh in a directory of its own, with
// a stand-in go command on PATH that "builds" the real server binary (and
// a stand-in app, and a dummy web client) by copying: ./build.sh run's own
// logic runs for real, nothing is compiled and the repository's
// assets/web is not touched.
type runScriptSandbox struct {
	dir, appRan string
	env         []string
}

func newRunScriptSandbox(t *testing.T) *runScriptSandbox {
	t.Helper()
	dir := t.TempDir()
	sb := &runScriptSandbox{dir: dir, appRan: filepath.Join(dir, "app-ran")}
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("build.sh", string(mustRead(t, filepath.Join(repoRoot(), "build.sh"))), 0o755)
	write("assets/web/index.html", "<!doctype html>\n", 0o644)
	write("goroot/lib/wasm/wasm_exec.js", "// stand-in\n", 0o644)
	write("bin/go", `#!/bin/sh
# A stand-in for go: the builds of ./build.sh run, by copying.
if [ "$1" = env ]; then echo "$FAKE_GOROOT"; exit 0; fi
out= pkg=
while [ $# -gt 0 ]; do
  [ "$1" = -o ] && { out=$2; shift; }
  pkg=$1; shift
done
case "$pkg:$GOOS" in
  ./server:*) cp "$FAKE_SERVER" "$out" ;;
  github.com/nats-io/nats-server/v2:*) cp "$FAKE_NATS" "$out" ;;
  ./app:js) echo wasm >"$out" ;;
  ./app:*) cp "$FAKE_APP" "$out" ;;
  *) echo "stand-in go: cannot build $pkg" >&2; exit 1 ;;
esac
`, 0o755)
	// The app: it says how it was started and exits, as when a person
	// closes its window.
	app := write("fake-app", "#!/bin/sh\necho \"app started: $*\"\ntouch \"$APP_RAN\"\n", 0o755)
	sb.env = []string{
		"PATH=" + filepath.Join(dir, "bin") + string(os.PathListSeparator) + os.Getenv("PATH"),
		"FAKE_GOROOT=" + filepath.Join(dir, "goroot"), "FAKE_SERVER=" + testserver.Binary(t), "FAKE_APP=" + app,
		"APP_RAN=" + sb.appRan, "DISPLAY=:stand-in", "WAYLAND_DISPLAY=",
		"CHAT_DIST=" + filepath.Join(dir, "dist"), "CHAT_DATA=" + filepath.Join(dir, "data"),
	}
	return sb
}

// run runs ./build.sh run in the sandbox with the extra environment.
func (sb *runScriptSandbox) run(t *testing.T, env ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(sb.dir, "build.sh"), "run")
	cmd.Dir = sb.dir
	cmd.Env = withEnv(os.Environ(), append(append([]string{}, sb.env...), env...)...)
	// A process group of its own: a server the script leaves behind (the
	// bug this test guards against) is killed with it when the test ends,
	// and WaitDelay stops waiting for the output pipe it holds open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	var buf testserver.LockedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Start()
	if err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	err = cmd.Wait()
	out := buf.String()
	if ctx.Err() != nil {
		t.Fatalf("./build.sh run did not end within 60s:\n%s", out)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		t.Errorf("./build.sh run left a process holding its output open (the server?)")
		err = nil
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return out, ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out, 0
}

// freeLoopbackAddr returns a 127.0.0.1 address nothing listens on now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestBuildScriptRun: ./build.sh run starts the server on loopback (both
// listeners), prints the web client's URL, starts the app against it, and
// stops the server when the app ends. A port already taken (an earlier
// run's server, say) fails loudly before the app starts, instead of the
// app quietly connecting to the old server.
func TestBuildScriptRun(t *testing.T) {
	sb := newRunScriptSandbox(t)
	tcp, web := freeLoopbackAddr(t), freeLoopbackAddr(t)
	out, status := sb.run(t, "CHAT_TCP="+tcp, "CHAT_HTTP="+web)
	if status != 0 {
		t.Fatalf("./build.sh run: exit %d\n%s", status, out)
	}
	for _, want := range []string{
		"web client: http://" + web + "/", // the URL to open
		"transport=http addr=" + web,      // the server's own word: loopback
		"transport=tcp addr=" + tcp,       //
		"app started: -server " + tcp,     // the app, against this server
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "unbound variable") {
		t.Errorf("the script hit an unset variable:\n%s", out)
	}
	// The app has ended: so has the server (the script waited for it).
	for _, a := range []string{tcp, web} {
		if c, err := net.DialTimeout("tcp", a, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("something still listens on %s after the app ended: the server was left running", a)
		}
	}

	// A port in use: refused before the app starts.
	if err := os.Remove(sb.appRan); err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	out, status = sb.run(t, "CHAT_TCP="+taken.Addr().String(), "CHAT_HTTP="+freeLoopbackAddr(t))
	if status == 0 || !strings.Contains(out, taken.Addr().String()+" is already in use") {
		t.Errorf("./build.sh run with its port taken: exit %d, want a failure naming the address\n%s", status, out)
	}
	if _, err := os.Stat(sb.appRan); err == nil {
		t.Errorf("the app was started although the server could not be:\n%s", out)
	}
}
