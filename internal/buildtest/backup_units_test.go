package buildtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"chat/internal/testserver"
)

// TestBackupUnits checks deploy/chat-backup.service and .timer: both pass
// systemd-analyze verify, the service runs as the server's user with the
// server's state directory and environment file, the timer fires daily
// and catches up after downtime, and the service's command line, expanded
// as systemd expands it, backs up a real server's data directory and
// keeps CHAT_BACKUP_KEEP copies.
func TestBackupUnits(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "systemd")
	dir := filepath.Join(repoRoot(), "deploy")
	service := readUnit(t, filepath.Join(dir, "chat-backup.service"))
	server := readUnit(t, unitPath())
	for _, key := range []string{"User", "Group", "DynamicUser", "EnvironmentFile"} {
		if got, want := one(t, service, key), one(t, server, key); got != want {
			t.Errorf("chat-backup.service %s=%s, chat.service has %s", key, got, want)
		}
	}
	states := strings.Fields(one(t, service, "StateDirectory"))
	if !slices.Contains(states, one(t, server, "StateDirectory")) {
		t.Errorf("chat-backup.service StateDirectory=%v lacks the server's %s", states, one(t, server, "StateDirectory"))
	}
	exec0 := one(t, service, "ExecStart")
	m := regexp.MustCompile(`^/usr/local/bin/chat-server backup -dir /var/lib/(\S+) -keep \$\{CHAT_BACKUP_KEEP\}$`).FindStringSubmatch(exec0)
	if m == nil || !slices.Contains(states, m[1]) {
		t.Fatalf("ExecStart=%s: want chat-server backup -dir into one of its StateDirectory=%v, -keep ${CHAT_BACKUP_KEEP}", exec0, states)
	}
	var keep string
	for _, e := range values(service, "Environment") {
		if v, ok := strings.CutPrefix(e, "CHAT_BACKUP_KEEP="); ok {
			keep = v
		}
	}
	if keep == "" {
		t.Fatal("chat-backup.service sets no CHAT_BACKUP_KEEP")
	}
	timer := readUnitSection(t, filepath.Join(dir, "chat-backup.timer"), "Timer")
	if timer["OnCalendar"] != "daily" || timer["Persistent"] != "true" {
		t.Errorf("chat-backup.timer: OnCalendar=%s Persistent=%s, want daily and true", timer["OnCalendar"], timer["Persistent"])
	}

	// systemd-analyze verify, with ExecStart pointed at the real server.
	bin := testserver.Binary(t)
	tmp := t.TempDir()
	src, _ := os.ReadFile(filepath.Join(dir, "chat-backup.service"))
	patched := strings.Replace(string(src), "ExecStart=/usr/local/bin/chat-server", "ExecStart="+bin, 1)
	if err := os.WriteFile(filepath.Join(tmp, "chat-backup.service"), []byte(patched), 0o644); err != nil {
		t.Fatal(err)
	}
	timerSrc, _ := os.ReadFile(filepath.Join(dir, "chat-backup.timer"))
	if err := os.WriteFile(filepath.Join(tmp, "chat-backup.timer"), timerSrc, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", filepath.Join(tmp, "chat-backup.service"), filepath.Join(tmp, "chat-backup.timer")).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The command line, as systemd runs it: CHAT_DATA from the unit's
	// environment (here the test server's), ${CHAT_BACKUP_KEEP} expanded.
	srv := testserver.Start(t, testserver.Options{})
	backups := filepath.Join(tmp, "backups")
	args := strings.Fields(strings.ReplaceAll(exec0, "${CHAT_BACKUP_KEEP}", keep))
	args[slices.Index(args, "-dir")+1] = backups
	kept, err := strconv.Atoi(keep)
	if err != nil || kept < 1 {
		t.Fatalf("CHAT_BACKUP_KEEP=%s: not a positive number", keep)
	}
	n := 0
	for range kept + 2 { // more runs than it keeps
		cmd := exec.Command(bin, args[1:]...)
		cmd.Env = append(os.Environ(), "CHAT_DATA="+srv.Data)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", exec0, err, out)
		}
		n++
	}
	entries, _ := os.ReadDir(backups)
	if len(entries) != kept {
		t.Errorf("%d runs left %d backups, want %d", n, len(entries), kept)
	}
}

// readUnitSection returns the settings of one section of a unit file.
func readUnitSection(t *testing.T, path, section string) map[string]string {
	t.Helper()
	b := mustRead(t, path)
	out := map[string]string{}
	cur := ""
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "["):
			cur = strings.Trim(line, "[]")
		case cur == section && line != "" && !strings.HasPrefix(line, "#"):
			if k, v, ok := strings.Cut(line, "="); ok {
				out[k] = v
			}
		}
	}
	return out
}
