// Package disttest finds the artifacts ./build.sh put in dist/, for the
// tests that check what users download: the release binaries, the web
// client embedded in the server, the desktop app.
//
// ./build.sh test builds them first and sets CHAT_REQUIRE_ARTIFACTS=1, so
// there a missing artifact fails; a plain `go test ./...` skips those
// tests and says what to run.
package disttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Root is the repository's root (where build.sh is), found from this
// source file.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Dir is where the artifacts are: $CHAT_DIST or dist/.
func Dir() string {
	if d := os.Getenv("CHAT_DIST"); d != "" {
		return d
	}
	return filepath.Join(Root(), "dist")
}

var described struct {
	sync.Once
	v   string
	err error
}

// Version is the version the artifacts under test are named and stamped
// with: $CHAT_DIST_VERSION, which ./build.sh test sets to what it just
// built (dist/ may also hold older builds), else what build.sh would use
// now (git describe).
func Version(t testing.TB) string {
	t.Helper()
	if v := os.Getenv("CHAT_DIST_VERSION"); v != "" {
		return v
	}
	described.Do(func() {
		cmd := exec.Command("git", "describe", "--tags", "--always", "--dirty")
		cmd.Dir = Root()
		out, err := cmd.Output()
		described.v, described.err = strings.TrimSpace(string(out)), err
	})
	if described.err != nil {
		t.Fatalf("git describe: %v", described.err)
	}
	return described.v
}

// Artifact returns the path of NAME in Dir, where NAME may contain
// VERSION. A missing artifact fails the test under ./build.sh test and
// skips it otherwise.
func Artifact(t testing.TB, name string) string {
	t.Helper()
	name = strings.ReplaceAll(name, "VERSION", Version(t))
	p := filepath.Join(Dir(), name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CHAT_REQUIRE_ARTIFACTS") != "" {
			t.Fatalf("%s is missing although CHAT_REQUIRE_ARTIFACTS is set: ./build.sh test should have built it (%v)", p, err)
		}
		t.Skipf("%s is not built: run ./build.sh wasm server desktop windows first (./build.sh test does)", p)
	}
	return p
}
