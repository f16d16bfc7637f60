//go:build (linux && !android) || freebsd || openbsd || netbsd || dragonfly

package platform

import (
	"os"
	"path/filepath"
	"testing"
)

// The URL goes to xdg-open as one argument, whatever it holds.
func TestOpenURLRunsXdgOpen(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "args")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > " + out + "\n"
	if err := os.WriteFile(filepath.Join(dir, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	u, err := CheckURL("https://example.org/a b;$(x)&c='d'")
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := startOpener(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != u+"\n" {
		t.Fatalf("xdg-open got %q, want the one argument %q", got, u)
	}

	t.Setenv("PATH", t.TempDir()) // no xdg-open
	if err := OpenURL("https://example.org"); err == nil {
		t.Fatal("no error without xdg-open")
	}
}
