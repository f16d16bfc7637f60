package main

// A smoke run of the generator against the real server, so it cannot rot:
// small, a few seconds, asserting the bookkeeping (nothing lost, nothing
// duplicated, every count consistent), never timing targets.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"chat/cmd/chatbench/internal/load"
	"chat/internal/testserver"
)

// TestMain lets the test binary serve as chatbench's worker process: the
// -procs runs below start it again with load.WorkerEnv set.
func TestMain(m *testing.M) {
	if os.Getenv(load.WorkerEnv) != "" {
		os.Exit(worker(context.Background(), os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// serverArgs turn off the per-connection message rate limit: the senders
// here post 10 messages a second each.
func serverArgs() []string { return []string{"-msg-rate", "0"} }

func runJSON(t *testing.T, args ...string) (*load.Report, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, append(args, "-json"), &stdout, &stderr)
	if code == 2 {
		t.Fatalf("chatbench %s: exit 2\n%s", strings.Join(args, " "), stderr.String())
	}
	var rep load.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	return &rep, code, stderr.String()
}

// checkClean asserts what every run must show, however fast the machine.
// Receivers and senders are spread evenly over the run's new rooms.
func checkClean(t *testing.T, rep *load.Report, code int, log string, receivers, senders int) {
	t.Helper()
	if code != 0 && code != 3 { // 3: generator-limited, possible on a loaded CI machine under -race
		t.Errorf("exit %d", code)
	}
	if !rep.Clean {
		var b bytes.Buffer
		rep.Print(&b)
		t.Errorf("run not clean:\n%s\n%s", b.String(), log)
	}
	if rep.Join.Joined != receivers || rep.Join.Attempted != receivers || rep.Join.Seconds <= 0 {
		t.Errorf("join: %+v", rep.Join)
	}
	if rep.Sends.Sent == 0 || rep.Sends.Acked != rep.Sends.Sent {
		t.Errorf("sends: %+v", rep.Sends)
	}
	var heads uint64
	for _, h := range rep.Heads {
		heads += h
	}
	if heads != rep.Sends.Sent { // new rooms: one sequence number per message
		t.Errorf("room heads %v, sent %d", rep.Heads, rep.Sends.Sent)
	}
	rooms := uint64(max(len(rep.Rooms), 1))
	d := rep.Delivery
	if d.Expected != uint64(receivers)/rooms*rep.Sends.Sent || d.Received != d.Expected || d.Missing != 0 || d.Duplicates != 0 {
		t.Errorf("delivery: %+v for %d sent", d, rep.Sends.Sent)
	}
	if sc := rep.SenderCopies; sc.Expected != uint64(senders)/rooms*rep.Sends.Sent || sc.Missing != 0 {
		t.Errorf("senders' copies: %+v", sc)
	}
	if rep.Latency.Count == 0 || rep.Latency.Count > int64(d.Received) || rep.Latency.P50 <= 0 ||
		rep.Latency.P50 > rep.Latency.P99 || rep.Latency.P99 > rep.Latency.Max {
		t.Errorf("latency: %+v", rep.Latency)
	}
	if rep.Ack.Count == 0 || rep.Ack.Count > int64(rep.Sends.Acked) || rep.Ack.P99 > rep.Ack.Max {
		t.Errorf("ack latency: %+v", rep.Ack)
	}
	if rep.Open != receivers {
		t.Errorf("%d receivers connected at the end, want %d", rep.Open, receivers)
	}
	if rep.Generator.CPUSeconds <= 0 {
		t.Errorf("generator CPU not measured: %+v", rep.Generator)
	}
}

func TestSmokeTCPWorkerProcesses(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: serverArgs()})
	start := time.Now()
	rep, code, log := runJSON(t, "-addr", srv.Addr, "-receivers", "50", "-senders", "2", "-rate", "20",
		"-duration", "3s", "-warmup", "500ms", "-procs", "2", "-drain", "5s")
	checkClean(t, rep, code, log, 50, 2)
	if rep.Generator.Procs != 2 {
		t.Errorf("%d worker processes, want 2", rep.Generator.Procs)
	}
	t.Logf("TCP, 2 worker processes: %v; p99 %.2f ms", time.Since(start).Round(time.Millisecond), rep.Latency.P99)
}

func TestSmokeWebSocket(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: serverArgs()})
	rep, code, log := runJSON(t, "-addr", "ws://"+srv.HTTPAddr+"/ws", "-receivers", "20", "-senders", "1",
		"-rate", "10", "-duration", "1s", "-warmup", "200ms", "-drain", "5s", "-procs", "0")
	checkClean(t, rep, code, log, 20, 1)
	if rep.Transport != "websocket" {
		t.Errorf("transport %q", rep.Transport)
	}
	if rep.Reader != "epoll" { // WebSocket receivers cost the generator what TCP ones do
		t.Errorf("WebSocket receivers read by %q, want epoll", rep.Reader)
	}
}

// TestSmokeTLS: TLS receivers in a worker process, where the epoll reader
// cannot read them (it would see ciphertext): they get a goroutine each.
func TestSmokeTLS(t *testing.T) {
	certFile, keyFile, _ := testserver.SelfSigned(t, t.TempDir())
	srv := testserver.Start(t, testserver.Options{Args: append(serverArgs(), "-tls-cert", certFile, "-tls-key", keyFile)})
	rep, code, log := runJSON(t, "-addr", "tls://"+srv.Addr, "-receivers", "20", "-senders", "1",
		"-rate", "10", "-duration", "1s", "-warmup", "200ms", "-drain", "5s", "-procs", "1")
	checkClean(t, rep, code, log, 20, 1)
	if rep.Transport != "tls" {
		t.Errorf("transport %q", rep.Transport)
	}
	if rep.Reader != "goroutine per connection" {
		t.Errorf("TLS receivers read by %q", rep.Reader)
	}
}

// TestSmokeTwoServers spreads receivers (in two worker processes) and
// senders over two independent servers, as over a cluster's nodes. Two
// rooms: receiver i and sender i join room i mod 2 on server i mod 2, so
// each room lives on one server, and a clean run (nothing missing) shows
// every connection went where round-robin sends it: a receiver on the
// wrong server would get nothing of its room. Each server's own count of
// open files shows its connections, and the report has each one's CPU and
// memory and their sum.
func TestSmokeTwoServers(t *testing.T) {
	a := testserver.Start(t, testserver.Options{Args: serverArgs()})
	b := testserver.Start(t, testserver.Options{Args: serverArgs()})
	start := time.Now()
	rep, code, log := runJSON(t, "-addr", a.Addr+","+b.Addr, "-server-pid", fmt.Sprintf("%d,%d", a.PID(), b.PID()),
		"-receivers", "20", "-senders", "2", "-rooms", "2", "-rate", "20", "-duration", "2s", "-warmup", "300ms",
		"-procs", "2", "-drain", "5s")
	checkClean(t, rep, code, log, 20, 2)
	if !slices.Equal(rep.Config.Addrs, []string{a.Addr, b.Addr}) || !slices.Equal(rep.Config.ServerPIDs, []int{a.PID(), b.PID()}) ||
		rep.Config.ServerPID != a.PID() {
		t.Errorf("config: addrs %q, pids %v, pid %d", rep.Config.Addrs, rep.Config.ServerPIDs, rep.Config.ServerPID)
	}
	want := []load.NodeShare{{Addr: a.Addr, Receivers: 10, Joined: 10, Senders: 1, PID: a.PID()},
		{Addr: b.Addr, Receivers: 10, Joined: 10, Senders: 1, PID: b.PID()}}
	if !slices.Equal(rep.Nodes, want) {
		t.Errorf("nodes %+v, want %+v", rep.Nodes, want)
	}
	if len(rep.Servers) != 2 || rep.Server == nil {
		t.Fatalf("servers %+v, sum %+v", rep.Servers, rep.Server)
	}
	var cpu float64
	var rss int64
	for i, s := range rep.Servers {
		if s.PID != want[i].PID || s.Addr != want[i].Addr || s.WindowEnd == nil || s.Connections != 11 {
			t.Fatalf("server %d: %+v", i, s)
		}
		// The server's own view: its open files grew by its connections.
		if opened := s.WindowEnd.FDs - s.Before.FDs; opened < s.Connections {
			t.Errorf("server %d (%s): %d more open files in the window than before, want at least %d connections", i, s.Addr, opened, s.Connections)
		}
		cpu += s.CPUSeconds
		rss += s.WindowEnd.RSSKiB
	}
	sum := rep.Server
	if sum.PID != a.PID() || sum.Connections != 22 || sum.WindowEnd.RSSKiB != rss || math.Abs(sum.CPUSeconds-cpu) > 1e-9 {
		t.Errorf("sum: pid %d, %d connections, RSS %d KiB (each %d), CPU %g s (each %g)", sum.PID, sum.Connections, sum.WindowEnd.RSSKiB, rss, sum.CPUSeconds, cpu)
	}
	if sum.CPUSeconds > 0 && sum.CPUPerDeliveryMicros <= 0 {
		t.Errorf("no CPU per delivery: %+v", sum)
	}
	var text, table bytes.Buffer
	rep.Print(&text)
	for _, s := range []string{"2 (tcp), connections spread round-robin", a.Addr, b.Addr, "all 2 together", "CPU per delivered message"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("printed report lacks %q:\n%s", s, text.String())
		}
	}
	file := filepath.Join(t.TempDir(), "two.json")
	js, _ := json.Marshal(rep)
	if err := os.WriteFile(file, js, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run(context.Background(), []string{"-summarize", file}, &table, io.Discard); code != 0 {
		t.Fatalf("-summarize: exit %d", code)
	}
	if !strings.Contains(table.String(), "over 2 servers (recv+send: 10+1, 10+1)") || !strings.Contains(table.String(), "(2 servers)") {
		t.Errorf("summary lacks the servers:\n%s", table.String())
	}
	t.Logf("two servers, 2 worker processes: %v; p99 %.2f ms", time.Since(start).Round(time.Millisecond), rep.Latency.P99)
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-addr", "127.0.0.1:7878,ws://127.0.0.1:8080/ws"}, // mixed transports
		{"-addr", "127.0.0.1:7878,192.0.2.1:7878"},         // one not loopback
		{"-addr", "127.0.0.1:7878,"},
		{"-server-pid", "12,x"},
		{"-scenario", "no-such-scenario"},
		{"-addr", "192.0.2.1:7878"}, // not loopback: refused before connecting
		{"-receivers", "30000"},     // more sockets than one process may hold
		{"stray-argument"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
