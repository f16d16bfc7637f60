package buildtest

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"chat/internal/disttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// unitSetting is one Key=value line of a systemd unit file.
type unitSetting struct{ Section, Key, Value string }

func readUnit(t *testing.T, path string) []unitSetting {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []unitSetting
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: bad line %q", path, line)
			}
			out = append(out, unitSetting{section, k, v})
		}
	}
	return out
}

// values returns the values of key in the [Service] section, in order.
func values(settings []unitSetting, key string) []string {
	var v []string
	for _, s := range settings {
		if s.Section == "Service" && s.Key == key {
			v = append(v, s.Value)
		}
	}
	return v
}

func one(t *testing.T, settings []unitSetting, key string) string {
	t.Helper()
	v := values(settings, key)
	if len(v) != 1 {
		t.Fatalf("chat.service: %s= is set %d times, want once", key, len(v))
	}
	return v[0]
}

func unitPath() string { return filepath.Join(repoRoot(), "deploy", "chat.service") }

// TestUnitVerify runs systemd-analyze verify on the unit (ExecStart
// pointed at an existing program, as verify requires) and fails on any
// complaint, and systemd-analyze security, which must rate the exposure
// 2.0 ("OK") or better.
func TestUnitVerify(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "systemd")
	settings := readUnit(t, unitPath())
	if got := one(t, settings, "ExecStart"); got != "/usr/local/bin/chat-server" {
		t.Errorf("ExecStart=%s: the README installs the server as /usr/local/bin/chat-server", got)
	}
	src, err := os.ReadFile(unitPath())
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "chat.service")
	patched := strings.Replace(string(src), "ExecStart=/usr/local/bin/chat-server", "ExecStart="+self, 1)
	if err := os.WriteFile(unit, []byte(patched), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	out, err = exec.Command(analyze, "security", "--offline=true", "--threshold=20", unit).CombinedOutput()
	score := regexp.MustCompile(`Overall exposure level for chat.service: ([0-9.]+ \S+)`).FindSubmatch(out)
	if err != nil || score == nil {
		t.Errorf("systemd-analyze security: exposure above 2.0 or no score (%v):\n%s", err, out)
	} else {
		t.Logf("systemd-analyze security: exposure %s", score[1])
	}
}

// TestUnitSettings checks what the issue and the README rely on: a user
// of its own, the data in the state directory, restart on failure, time
// for the server's graceful shutdown, and the hardening basics.
func TestUnitSettings(t *testing.T) {
	s := readUnit(t, unitPath())
	want := map[string]string{
		"User": "chat", "DynamicUser": "yes", "StateDirectory": "chat", "Restart": "on-failure",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"KillSignal": "SIGTERM", "MemoryDenyWriteExecute": "yes", "CapabilityBoundingSet": "",
		"EnvironmentFile": "-/etc/chat/chat.env", "LimitNOFILE": "65536",
	}
	for k, v := range want {
		if got := one(t, s, k); got != v {
			t.Errorf("%s=%s, want %s", k, got, v)
		}
	}
	readme := string(mustRead(t, filepath.Join(repoRoot(), "README.md")))
	for _, path := range []string{strings.TrimPrefix(one(t, s, "EnvironmentFile"), "-"), "/var/lib/" + one(t, s, "StateDirectory")} {
		if !strings.Contains(readme, path) {
			t.Errorf("README.md does not mention %s, which the unit uses", path)
		}
	}
	env := one(t, s, "Environment")
	if env != "CHAT_DATA=/var/lib/"+one(t, s, "StateDirectory") {
		t.Errorf("Environment=%s: CHAT_DATA must be the state directory, the only place the service may write", env)
	}
	stop, err := time.ParseDuration(one(t, s, "TimeoutStopSec"))
	if err != nil {
		t.Fatal(err)
	}
	// The server's default shutdown timeout, from its source of truth.
	help := serverHelp(t)
	m := regexp.MustCompile(`env CHAT_SHUTDOWN_TIMEOUT, default "([^"]+)"`).FindStringSubmatch(help)
	if m == nil {
		t.Fatalf("chat-server -h does not show CHAT_SHUTDOWN_TIMEOUT's default:\n%s", help)
	}
	if d, _ := time.ParseDuration(m[1]); stop < d+10*time.Second {
		t.Errorf("TimeoutStopSec=%v leaves too little over the server's shutdown timeout %v", stop, d)
	}
}

// serverHelp returns chat-server -h of the built server.
func serverHelp(t *testing.T) string {
	t.Helper()
	out, _ := exec.Command(disttest.Artifact(t, "chat-server-VERSION-linux-amd64"), "-h").CombinedOutput()
	return string(out)
}

// envExample returns the variables of deploy/chat.env.example: all, and
// those set (not commented out) with their values.
func envExample(t *testing.T) (all []string, set map[string]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "deploy", "chat.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	set = map[string]string{}
	re := regexp.MustCompile(`^(#?)(CHAT_[A-Z_]+)=(.*)$`)
	for line := range strings.SplitSeq(string(b), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			all = append(all, m[2])
			if m[1] == "" {
				set[m[2]] = m[3]
			}
		} else if line != "" && !strings.HasPrefix(line, "#") {
			t.Errorf("chat.env.example: %q is neither a comment nor CHAT_*=value", line)
		}
	}
	return all, set
}

// TestEnvExample keeps deploy/chat.env.example in step with the server:
// it mentions every variable the server reads as a setting, and sets none
// the server does not read. Flags that do one thing and exit (-version,
// -release-name) are not settings.
func TestEnvExample(t *testing.T) {
	help := serverHelp(t)
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(.*)\(env (CHAT_[A-Z_]+)`).FindAllStringSubmatch(help, -1) {
		if strings.Contains(m[1], "and exit") {
			t.Errorf("chat-server -h offers %s for a flag that does one thing and exits; such flags read no environment", m[2])
		}
		known[m[2]] = true
	}
	if len(known) < 10 || !strings.Contains(help, "(flag only)") {
		t.Fatalf("chat-server -h lists only %d settings, or no flag-only actions:\n%s", len(known), help)
	}
	actions := map[string]bool{"CHAT_VERSION": true, "CHAT_RELEASE_NAME": true}
	all, set := envExample(t)
	for v := range known {
		if !slices.Contains(all, v) {
			t.Errorf("chat.env.example does not mention %s (chat-server -h lists it)", v)
		}
	}
	for v := range set {
		if !known[v] {
			t.Errorf("chat.env.example sets %s, which the server does not read as a setting", v)
		}
	}
	for v := range actions {
		if slices.Contains(all, v) {
			t.Errorf("chat.env.example mentions %s, which makes the server do one thing and exit", v)
		}
	}
}

// syscallGroups parses systemd-analyze syscall-filter: @group → members,
// nested groups expanded.
func syscallGroups(t *testing.T, analyze string) map[string][]string {
	t.Helper()
	out, err := exec.Command(analyze, "syscall-filter").Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter: %v", err)
	}
	raw := map[string][]string{}
	group := ""
	for line := range strings.SplitSeq(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "@"):
			group = strings.TrimSpace(line)
		case strings.HasPrefix(line, "    ") && group != "":
			if name := strings.TrimSpace(line); !strings.HasPrefix(name, "#") {
				raw[group] = append(raw[group], name)
			}
		default:
			group = ""
		}
	}
	var expand func(name string, seen map[string]bool) []string
	expand = func(name string, seen map[string]bool) []string {
		if !strings.HasPrefix(name, "@") {
			return []string{name}
		}
		if seen[name] {
			return nil
		}
		seen[name] = true
		var all []string
		for _, m := range raw[name] {
			all = append(all, expand(m, seen)...)
		}
		return all
	}
	groups := map[string][]string{}
	for g := range raw {
		groups[g] = expand(g, map[string]bool{})
	}
	if len(groups["@system-service"]) < 100 {
		t.Fatalf("could not read @system-service from systemd-analyze syscall-filter")
	}
	return groups
}

// allowedSyscalls applies the unit's SystemCallFilter= lines in order, as
// systemd does: the first is the allow list, later ~lines remove from it
// and later plain lines add to it.
func allowedSyscalls(t *testing.T, filters []string, groups map[string][]string) map[string]bool {
	t.Helper()
	allowed := map[string]bool{}
	for i, f := range filters {
		deny := strings.HasPrefix(f, "~")
		if i == 0 && deny {
			t.Fatalf("SystemCallFilter starts with a deny list: the test expects an allow list")
		}
		for _, item := range strings.Fields(strings.TrimPrefix(f, "~")) {
			names := []string{item}
			if strings.HasPrefix(item, "@") {
				if names = groups[item]; names == nil {
					t.Fatalf("unknown syscall group %s", item)
				}
			}
			for _, n := range names {
				allowed[n] = !deny
			}
		}
	}
	return allowed
}

// TestUnitSyscalls runs the built server the way the unit does (its
// environment and the example file's settings, as an unprivileged user)
// under strace while apps and a browser use it and it shuts down on
// SIGTERM, then checks every system call it made against the unit's
// SystemCallFilter (a denied call would fail with EPERM on the VPS), its
// sockets against RestrictAddressFamilies and its memory mappings against
// MemoryDenyWriteExecute.
func TestUnitSyscalls(t *testing.T) {
	server := disttest.Artifact(t, "chat-server-VERSION-linux-amd64")
	strace := tool(t, "strace", "strace")
	analyze := tool(t, "systemd-analyze", "systemd")
	unit := readUnit(t, unitPath())
	allowed := allowedSyscalls(t, values(unit, "SystemCallFilter"), syscallGroups(t, analyze))
	families := strings.Fields(one(t, unit, "RestrictAddressFamilies"))

	// Everything in places an unprivileged user can reach.
	dir, err := os.MkdirTemp("", "chat-syscalls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	bin := filepath.Join(dir, "chat-server")
	if err := os.Mkdir(data, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, data} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	b := mustRead(t, server)
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	trace := filepath.Join(t.TempDir(), "strace.out")
	argv := []string{strace, "-f", "-qq", "-o", trace}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("no user nobody to run the server as: %v", err)
		}
		argv = append(argv, "-u", u.Username)
	}
	argv = append(argv, bin)

	env := []string{}
	for _, e := range values(unit, "Environment") {
		env = append(env, strings.Fields(e)...)
	}
	_, set := envExample(t)
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	env = append(env, "CHAT_TCP=127.0.0.1:0", "CHAT_HTTP=127.0.0.1:0", "CHAT_DATA="+data, "CHAT_LOG_FORMAT=json", "CHAT_LOG_LEVEL=debug")
	srv := startDistServer(t, argv, env)

	// Apps: two members, a message, history for a late joiner.
	alice, _ := testserver.JoinRoom(t, srv.TCP, "general", "alice")
	alice.Send(&protocol.Send{Room: "general", ID: "m1", Text: "hello from strace"})
	testserver.Expect[*protocol.Ack](alice)
	bob, _ := testserver.JoinRoom(t, srv.TCP, "general", "bob")
	if msgs := bob.Messages(1); msgs[0].Text != "hello from strace" {
		t.Errorf("bob got %+v", msgs)
	}
	// A browser: the page, the web client, the health check.
	if srv.HTTP != "" {
		for _, path := range []string{"/", "/wasm_exec.js", "/main.wasm", "/healthz"} {
			req, _ := http.NewRequest("GET", "http://"+srv.HTTP+path, nil)
			req.Header.Set("Accept-Encoding", "br, gzip")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %s", path, resp.Status)
			}
		}
	}
	// systemctl reload (ExecReload=): SIGHUP re-reads certificates and
	// must not stop the server.
	pid := childOf(t, srv.cmd.Process.Pid)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(srv.Log(), "SIGHUP"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no SIGHUP in the server log within 10s")
		}
	}
	testserver.JoinRoom(t, srv.TCP, "general", "carol") // still serving
	if err := srv.Stop(pid); err != nil {
		t.Errorf("the server did not exit cleanly on SIGTERM: %v", err)
	}

	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	call := regexp.MustCompile(`^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)(?:\(| resumed>)`)
	used := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		m := call.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		used[m[1]]++
		if strings.Contains(m[0], "resumed>") {
			continue // the arguments are on the <unfinished ...> line
		}
		switch m[1] {
		case "mmap", "mprotect", "pkey_mprotect":
			if strings.Contains(line, "PROT_WRITE") && strings.Contains(line, "PROT_EXEC") {
				t.Errorf("writable and executable memory, which MemoryDenyWriteExecute forbids: %s", line)
			}
		case "socket", "socketpair":
			if fam := regexp.MustCompile(`\((AF_[A-Z0-9]+)`).FindStringSubmatch(line); fam == nil || !slices.Contains(families, fam[1]) {
				t.Errorf("a socket outside RestrictAddressFamilies=%v: %s", families, line)
			}
		}
	}
	if len(used) < 20 {
		t.Fatalf("strace recorded only %v", used)
	}
	var names []string
	for name := range used {
		names = append(names, name)
		if !allowed[name] {
			t.Errorf("the server called %s (%d times), which the unit's SystemCallFilter denies", name, used[name])
		}
	}
	slices.Sort(names)
	t.Logf("%d distinct system calls: %s", len(names), strings.Join(names, " "))
}
