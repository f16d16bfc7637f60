package buildtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"github.com/nats-io/nats-server/v2/conf"
)

// natsBinary builds the NATS server pinned in go.mod (a tool of the
// module), as ./build.sh cluster does.
func natsBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "nats-server")
	cmd := exec.Command(goTool(), "build", "-o", out, "github.com/nats-io/nats-server/v2")
	cmd.Dir = repoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building nats-server: %v\n%s", err, b)
	}
	return out
}

// clusterPortOffset finds an offset for ./build.sh cluster's twelve
// ports at which all are free now.
func clusterPortOffset(t *testing.T) int {
	t.Helper()
	base := []int{4222, 4223, 4224, 6222, 6223, 6224, 7878, 7879, 7880, 8080, 8081, 8082}
	for range 50 {
		o := 20000 + rand.IntN(20000)
		free := true
		for _, p := range base {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+o))
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if free {
			return o
		}
	}
	t.Fatal("no free set of ports for ./build.sh cluster")
	return 0
}

// TestBuildScriptCluster runs ./build.sh cluster for real (with the
// builds stood in by copies of the real binaries): three NATS servers and
// three chat servers come up, a member on the first chat server and one
// on the third talk, /healthz reports NATS, and Ctrl-C stops everything.
func TestBuildScriptCluster(t *testing.T) {
	sb := newRunScriptSandbox(t)
	o := clusterPortOffset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(sb.dir, "build.sh"), "cluster")
	cmd.Dir = sb.dir
	cmd.Env = withEnv(os.Environ(), append(append([]string{}, sb.env...),
		"FAKE_NATS="+natsBinary(t), fmt.Sprintf("CHAT_CLUSTER_PORT_OFFSET=%d", o),
		"CHAT_CLUSTER_DIR="+filepath.Join(sb.dir, "cluster"))...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 10 * time.Second
	var buf testserver.LockedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for !strings.Contains(buf.String(), "cluster up.") {
		_, more := buf.Next()
		select {
		case <-more:
		case err := <-exited:
			t.Fatalf("./build.sh cluster exited (%v) before the cluster was up:\n%s", err, buf.String())
		case <-ctx.Done():
			t.Fatalf("the cluster was not up within 2 minutes:\n%s", buf.String())
		}
	}
	want := fmt.Sprintf("-server 127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", 7878+o, 7879+o, 7880+o)
	if !strings.Contains(buf.String(), want) {
		t.Errorf("the output does not say how to connect (%q):\n%s", want, buf.String())
	}
	ann := clienttest.New(t, client.Config{Addr: fmt.Sprintf("127.0.0.1:%d", 7878+o), Name: "ann"})
	bob := clienttest.New(t, client.Config{Addr: fmt.Sprintf("127.0.0.1:%d", 7880+o), Name: "bob"})
	for _, r := range []*clienttest.Recorder{ann, bob} {
		r.C.Join("general")
		r.WaitJoined(t, "general")
	}
	if _, err := ann.C.Send("general", "hello across the cluster"); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(t, "hello across the cluster")
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", 8081+o))
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Status, NATS string }
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || h.Status != "ok" || h.NATS != "ok" {
		t.Errorf("/healthz of the second chat server: %d %+v %v", resp.StatusCode, h, err)
	}
	// Ctrl-C: the script stops every server it started.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-ctx.Done():
		t.Fatalf("./build.sh cluster did not stop on SIGINT:\n%s", buf.String())
	}
	for _, p := range []int{4222, 4223, 4224, 7878, 7879, 7880, 8080, 8081, 8082} {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p+o), time.Second); err == nil {
			c.Close()
			t.Errorf("something still listens on %d after Ctrl-C: a server was left running", p+o)
		}
	}
}

// TestNATSConfigExample parses deploy/nats.conf.example with the NATS
// server's own configuration parser and checks what the README promises:
// JetStream on disk, a 3-server cluster with TLS between the servers, and
// a password for the chat servers.
func TestNATSConfigExample(t *testing.T) {
	m, err := conf.ParseFile(filepath.Join(repoRoot(), "deploy", "nats.conf.example"))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := m["jetstream"].(map[string]any)
	cl, _ := m["cluster"].(map[string]any)
	auth, _ := m["authorization"].(map[string]any)
	if js == nil || js["store_dir"] == nil {
		t.Errorf("no JetStream store_dir: %v", m["jetstream"])
	}
	if cl == nil {
		t.Fatal("no cluster block")
	}
	if routes, _ := cl["routes"].([]any); len(routes) != 3 {
		t.Errorf("cluster routes %v, want 3", cl["routes"])
	}
	if rt, _ := cl["tls"].(map[string]any); rt == nil || rt["verify"] != true {
		t.Errorf("routes without verified TLS: %v", cl["tls"])
	}
	if auth == nil || auth["user"] == nil || auth["password"] == nil {
		t.Errorf("no user and password for the chat servers: %v", m["authorization"])
	}
	unit := readUnit(t, filepath.Join(repoRoot(), "deploy", "nats.service"))
	found := false
	for _, s := range unit {
		if s.Key == "ExecStart" && strings.Contains(s.Value, "/etc/nats/nats.conf") {
			found = true
		}
	}
	if !found {
		t.Error("nats.service does not start nats-server with /etc/nats/nats.conf")
	}
}
