package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chat/internal/testserver"
)

func noEnv(string) string { return "" }

func TestHelpListsEveryFlagWithItsVariable(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, noEnv, &out, &out); code != 0 {
		t.Fatalf("-h exit %d", code)
	}
	for _, want := range []string{"-tcp", "CHAT_TCP", "-http", "CHAT_HTTP", "-allowed-origins", "-web", "-data", "CHAT_DATA", "-version", "-history", "CHAT_HISTORY",
		"-log-format", "CHAT_LOG_FORMAT", "-sync", "-ping", "-send-queue", "-shutdown-timeout"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h does not mention %s", want)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"-version"}, noEnv, &out, &out); code != 0 || out.String() != "chat-server dev\n" {
		t.Fatalf("-version: exit %d, %q", code, out.String())
	}
	// The built binary answers too, with the version given at link time.
	bin := testserver.Binary(t)
	got, err := exec.Command(bin, "-version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(got), "chat-server ") {
		t.Fatalf("%s -version: %v %q", bin, err, got)
	}
}

// TestActionFlagsReadNoEnvironment: -version and -release-name are
// commands, given on the command line only; -h says so instead of naming
// a variable for them.
func TestActionFlagsReadNoEnvironment(t *testing.T) {
	for _, v := range []string{"1.2.3", "true"} {
		env := map[string]string{"CHAT_VERSION": v, "CHAT_RELEASE_NAME": "alice"}
		c, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
		if err != nil || c.version || c.releaseName != "" {
			t.Fatalf("CHAT_VERSION=%s: %+v, %v", v, c, err)
		}
	}
	var out bytes.Buffer
	run(context.Background(), []string{"-h"}, noEnv, &out, &out)
	for _, name := range []string{"CHAT_VERSION", "CHAT_RELEASE_NAME"} {
		if strings.Contains(out.String(), name) {
			t.Errorf("-h offers %s, which the server does not read", name)
		}
	}
	if n := strings.Count(out.String(), "(flag only)"); n != 2 {
		t.Errorf("-h marks %d flags as flag only, want -version and -release-name:\n%s", n, out.String())
	}
}

func TestBadConfigurationExitsWithASentence(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-history", "0"}, nil, "-history must be positive"},
		{[]string{"-sync", "sometimes"}, nil, "-sync must be full or normal"},
		{[]string{"-log-format", "xml"}, nil, "-log-format must be text or json"},
		{[]string{"-max-frame", "100"}, nil, "cannot carry a message"},
		{[]string{"-send-queue", "3"}, nil, "-send-queue must be at least"},
		{[]string{"-ping", "1ms"}, nil, "-ping must be at least"},
		{[]string{"-tcp", "", "-http", ""}, nil, "nothing to listen on"},
		{[]string{"-web", "/no/such/dir"}, nil, "-web /no/such/dir: not a directory"},
		{[]string{"-pprof", ":6060"}, nil, "only served on a loopback address"},
		{[]string{"-pprof", "0.0.0.0:6060"}, nil, "only served on a loopback address"},
		{[]string{"stray"}, nil, `unexpected argument "stray"`},
		{[]string{"-healthz-allow", "10.0.0.0/8,somewhere"}, nil, `-healthz-allow: "somewhere" is neither a CIDR prefix`},
		{nil, map[string]string{"CHAT_HEALTHZ_ALLOW": "10.0.0.0/33"}, `-healthz-allow: "10.0.0.0/33"`},
		{[]string{"-metrics", "9100"}, nil, "-metrics 9100: not a listen address"},
		{[]string{"-metrics", "127.0.0.1:8080", "-http", "127.0.0.1:8080"}, nil, "metrics need their own address"},
		{nil, map[string]string{"CHAT_HISTORY": "lots"}, `CHAT_HISTORY="lots"`},
		{[]string{"-log-level", "loud"}, nil, "-log-level"},
		{[]string{"-retain-messages", "-1"}, nil, "-retain-messages must be 0 (keep all) or positive"},
		{[]string{"-retain-age", "10ms"}, nil, "-retain-age must be 0 (keep forever) or at least 1s"},
		{nil, map[string]string{"CHAT_RETAIN_AGE": "a month"}, `CHAT_RETAIN_AGE="a month"`},
		{[]string{"-no-such-flag"}, nil, "flag provided but not defined"},
		{[]string{"-trusted-proxies", "10.0.0.0/33"}, nil, `-trusted-proxies: "10.0.0.0/33" is not an address or CIDR prefix`},
		{nil, map[string]string{"CHAT_TRUSTED_PROXIES": "127.0.0.1,proxy.example.com"}, `"proxy.example.com" is not an address`},
		{[]string{"-operator-token", "a", "-operator-token-file", "f"}, nil, "give -operator-token or -operator-token-file, not both"},
		{[]string{"-audit-max", "0"}, nil, "-audit-max must be positive"},
		{[]string{"-room-create", "everyone"}, nil, "-room-create must be anyone, key or operators"},
		{[]string{"-room-create", "key"}, nil, "-room-create key needs -room-create-key"},
		{[]string{"-max-server-rooms", "-1"}, nil, "must not be negative"},
		{nil, map[string]string{"CHAT_NAME_EXPIRY": "30s"}, "-name-expiry must be 0 or at least 1m"},
		{[]string{"-max-tracked-addresses", "0"}, nil, "-max-tracked-addresses must be positive"},
		{[]string{"-history-cache", "0"}, nil, "-history-cache must be positive"},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		getenv := func(k string) string { return tc.env[k] }
		code := run(context.Background(), tc.args, getenv, &out, &out)
		if code != 2 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v %v: exit %d, output %q; want exit 2 and %q", tc.args, tc.env, code, out.String(), tc.want)
		}
	}
}

// TestEnvironmentConfiguresAndFlagsWin runs the server in-process with
// its listener and data directory from the environment, and a flag that
// overrides a variable.
func TestEnvironmentConfiguresAndFlagsWin(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"CHAT_TCP": "127.0.0.1:0", "CHAT_HTTP": "127.0.0.1:0", "CHAT_DATA": dir + "/from-env",
		"CHAT_LOG_FORMAT": "json", "CHAT_HISTORY": "7",
		// Action flags read no environment: a stray CHAT_VERSION (not even
		// a bool) or CHAT_RELEASE_NAME must neither stop nor divert the start.
		"CHAT_VERSION": "1.2.3", "CHAT_RELEASE_NAME": "alice"}
	ctx, cancel := context.WithCancel(context.Background())
	var log testserver.LockedBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"-history", "9"}, func(k string) string { return env[k] }, &log, &log)
	}()

	var addr string
	timeout := time.After(10 * time.Second)
	for addr == "" {
		out, written := log.Next()
		for line := range strings.Lines(out) {
			var rec struct{ Msg, Transport, Addr, Data string }
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			if rec.Msg == "listening" && rec.Transport == "tcp" {
				addr = rec.Addr
			}
			if rec.Msg == "history open" && rec.Data != filepath.Join(dir, "from-env", "chat.db") {
				t.Errorf("CHAT_DATA ignored: data is %s", rec.Data)
			}
		}
		if addr != "" {
			break
		}
		select {
		case <-written:
		case code := <-done:
			t.Fatalf("exit %d before listening: %s", code, log.String())
		case <-timeout:
			t.Fatalf("not listening: %s", log.String())
		}
	}
	_, welcome := testserver.Handshake(t, addr)
	if welcome.History != 9 {
		t.Errorf("history %d: the -history flag should win over CHAT_HISTORY", welcome.History)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, log.String())
	}
	if !strings.Contains(log.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop: %s", log.String())
	}
}

// TestFileSizes: -max-upload and its siblings take sizes with units,
// from flags and the environment; nonsense is refused with a sentence.
func TestFileSizes(t *testing.T) {
	for in, want := range map[string]int64{"25MiB": 25 << 20, "1GiB": 1 << 30, "500MB": 500_000_000, "1048576": 1 << 20, "64 KiB": 64 << 10, "2gb": 2_000_000_000, "0": 0} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5GiB", "-1", "12 parsecs", "99999999999999999999", "9999999999GiB"} {
		if n, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, n)
		}
	}
	c, err := parseConfig([]string{"-max-upload", "10MiB"}, func(k string) string {
		return map[string]string{"CHAT_UPLOAD_QUOTA": "500MB", "CHAT_FILE_RATE": "1MiB"}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if l := c.fileLimits(); l.MaxFile != 10<<20 || l.PerName != 500_000_000 || l.Total != 20<<30 || c.fileRate != 1<<20 {
		t.Fatalf("limits %+v, file rate %d", l, c.fileRate)
	}
	for _, args := range [][]string{{"-max-upload", "lots"}, {"-max-upload", "2GiB"}, {"-upload-quota", "30GiB"}, {"-file-rate", "0"}} {
		if _, err := parseConfig(args, noEnv, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
