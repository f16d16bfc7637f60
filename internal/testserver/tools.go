package testserver

import (
	"os"
	"os/exec"
	"testing"
)

// RequireTools reports whether a test must fail, not skip, when a program
// it needs is missing: in CI (CI set to anything but "false", as GitHub
// Actions and most CI systems set CI=true) and under ./build.sh test
// (CHAT_REQUIRE_TOOLS=1), where a skip would pass a test that never ran.
func RequireTools() bool {
	if os.Getenv("CHAT_REQUIRE_TOOLS") == "1" {
		return true
	}
	ci := os.Getenv("CI")
	return ci != "" && ci != "false" && ci != "0"
}

// NeedTool returns the path of the program name, which the test needs for
// why. When it is missing the test skips saying so, or fails where
// RequireTools says skips are not allowed.
func NeedTool(t testing.TB, name, why string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " is not installed: " + why + " (apt-get install " + name + "; ./build.sh deps installs it)"
	if RequireTools() {
		t.Fatal(msg + "; CI or CHAT_REQUIRE_TOOLS=1 makes this a failure, not a skip")
	}
	t.Skip(msg + " (CI=true or CHAT_REQUIRE_TOOLS=1 make this a failure)")
	return ""
}
