// Package buildtest checks what ./build.sh produces and what deploy/ and
// .github/ hold: the artifacts in dist/ (right platform, static, versioned,
// checksummed, runnable), the desktop app in a real X window, the android
// target's message on a machine without the SDK, the app's packages
// type-checked for Android, the systemd unit and the release workflow.
//
// The artifact tests read dist/ (or $CHAT_DIST). ./build.sh test builds the
// artifacts first and sets CHAT_REQUIRE_ARTIFACTS=1, so there a missing
// artifact fails; a plain `go test ./...` skips them and says what to run.
package buildtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"chat/internal/disttest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if typeChecker.path != "" {
		os.RemoveAll(filepath.Dir(typeChecker.path))
	}
	os.Exit(code)
}

// repoRoot is the directory of build.sh.
func repoRoot() string { return disttest.Root() }

// tool returns the path of a program a test needs. ./build.sh deps
// installs them all, so a missing one is a failure, not a skip.
func tool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed (Debian package %s; ./build.sh deps installs it)", name, debianPackage)
	}
	return p
}

// goTool is the go command that runs the tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go" // not on PATH: exec reports it
}

// trackSources stats every Go file of the module (and so lists its
// directories), for tests whose subprocesses read the sources: go test
// caches a result only while the files a test consulted are unchanged.
func trackSources(t testing.TB) {
	t.Helper()
	root := repoRoot()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "dist" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum") {
			_, err = os.Stat(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// buildScript runs ./build.sh with args and extra environment (NAME=value;
// NAME= alone removes NAME), returning its combined output and exit code.
func buildScript(t testing.TB, env []string, args ...string) (string, int) {
	t.Helper()
	// Read it here so that go test's cache notices when it changes.
	if _, err := os.ReadFile(filepath.Join(repoRoot(), "build.sh")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(repoRoot(), "build.sh"), args...)
	cmd.Dir = repoRoot()
	cmd.Env = withEnv(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil {
		return out.String(), 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("build.sh %s: %v", strings.Join(args, " "), err)
	return "", -1
}

// withEnv returns base with the changes applied: NAME=value sets, NAME=
// removes.
func withEnv(base []string, changes ...string) []string {
	out := make([]string, 0, len(base)+len(changes))
	drop := map[string]bool{}
	for _, c := range changes {
		drop[strings.SplitN(c, "=", 2)[0]] = true
	}
	for _, kv := range base {
		if !drop[strings.SplitN(kv, "=", 2)[0]] {
			out = append(out, kv)
		}
	}
	for _, c := range changes {
		if !strings.HasSuffix(c, "=") {
			out = append(out, c)
		}
	}
	return out
}
