package buildtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"chat/internal/disttest"
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
