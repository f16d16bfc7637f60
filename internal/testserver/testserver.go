// Package testserver runs the real chat server binary for tests: built
// once per test process (with the race detector when the tests have it),
// listening on 127.0.0.1, with a data directory of the test's own. It can
// kill the server and start it again on the same port and data, which is
// what reconnect and durability tests need.
package testserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var build struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of the server binary, building it the first time.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "chat-testserver-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "chat-server")
		args := []string{"build", "-o", build.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "chat/server")
		cmd := exec.Command(goTool(), args...)
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("building the server: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go" // not on PATH: the build below says so
}

// moduleRoot is the directory of go.mod, found from this source file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Options configure a server.
type Options struct {
	Data string   // data directory; a new temporary one when empty
	Args []string // extra flags, e.g. "-history", "5"
	Env  []string // extra environment, e.g. "SSL_CERT_FILE=…"
	// Binary runs this server program instead of one built from the
	// source tree (a release artifact, say).
	Binary string
}

// Server is a running server process.
type Server struct {
	t        testing.TB
	Addr     string // host:port of the TCP listener
	HTTPAddr string // host:port of the HTTP listener (web client, /ws, /healthz)
	Data     string
	args     []string
	env      []string
	bin      string

	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *bytes.Buffer
	logged chan struct{} // closed (and replaced) when a log line arrives
	exit   chan error
}

// Start runs a server and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Data == "" {
		opts.Data = t.TempDir()
	}
	s := &Server{t: t, Data: opts.Data, args: opts.Args, env: opts.Env, bin: opts.Binary, logged: make(chan struct{})}
	if s.bin == "" {
		s.bin = Binary(t)
	}
	if err := s.start("127.0.0.1:0", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("server log:\n%s", s.Log())
		}
	})
	return s
}

// start launches the process and waits until both listeners are up.
func (s *Server) start(tcp, http string) error {
	// Tests push messages far faster than people; the rate limit is off
	// unless a test's own Args turn it on (the last flag wins).
	args := append([]string{"-tcp", tcp, "-http", http, "-data", s.Data, "-log-format", "json", "-log-level", "debug",
		"-msg-rate", "0"}, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), s.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	log := &bytes.Buffer{}
	addrs := make(chan [2]string, 4) // transport, address
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			log.WriteString(line + "\n")
			close(s.logged) // wake WaitLog
			s.logged = make(chan struct{})
			s.mu.Unlock()
			var rec struct{ Msg, Transport, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				select {
				case addrs <- [2]string{rec.Transport, rec.Addr}:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	exit := make(chan error, 1)
	go func() {
		<-copied // Wait must not run before the pipe is read to the end
		exit <- cmd.Wait()
	}()
	s.mu.Lock()
	s.cmd, s.log, s.exit = cmd, log, exit
	s.mu.Unlock()
	timeout := time.After(30 * time.Second)
	var tcpAddr, httpAddr string // as announced by this process
	for tcpAddr == "" || httpAddr == "" {
		select {
		case a := <-addrs:
			switch a[0] {
			case "tcp", "tls":
				tcpAddr = a[1]
			case "http", "https":
				httpAddr = a[1]
			}
		case err := <-exit:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("server exited before listening: %v\n%s", err, s.Log())
		case <-timeout:
			s.Kill()
			return fmt.Errorf("server did not listen within 30s\n%s", s.Log())
		}
	}
	s.Addr, s.HTTPAddr = tcpAddr, httpAddr
	return nil
}

// Log returns what the server has logged so far (JSON lines).
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// LogRecords returns the log lines whose "msg" is msg, decoded.
func (s *Server) LogRecords(msg string) []map[string]any {
	var out []map[string]any
	for line := range strings.Lines(s.Log()) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// Running reports whether the server process is running (not killed or
// stopped by the test).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Kill ends the server with SIGKILL, as a crash or power cut would, and
// waits for it. It is a no-op if the server is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exit := s.cmd, s.exit
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exit
}

// Stop sends SIGTERM and returns how long the server took to exit and the
// exit error (nil for exit 0). It fails the test after 30 seconds.
func (s *Server) Stop() (time.Duration, error) {
	s.t.Helper()
	s.mu.Lock()
	cmd, exit := s.cmd, s.exit
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatal("Stop: server is not running")
	}
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exit:
		return time.Since(start), err
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exit
		s.t.Fatal("server did not exit within 30s of SIGTERM")
		return 0, nil
	}
}

// Restart starts the server again on the same address and data directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The port may still be held for a moment by the old process.
		err := s.start(s.Addr, s.HTTPAddr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Reset kills the server, deletes everything in its data directory (a
// history reset, as an operator starting afresh would) and starts it
// again on the same addresses.
func (s *Server) Reset() {
	s.t.Helper()
	s.Kill()
	entries, err := os.ReadDir(s.Data)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.Data, e.Name())); err != nil {
			s.t.Fatal(err)
		}
	}
	s.Restart()
}

// WaitLog waits up to 10 seconds for a log record with this msg for which
// match (if not nil) is true, and returns it.
func (s *Server) WaitLog(msg string, match func(rec map[string]any) bool) map[string]any {
	s.t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		// Taken before looking, so a line logged meanwhile is not missed.
		s.mu.Lock()
		logged := s.logged
		s.mu.Unlock()
		for _, rec := range s.LogRecords(msg) {
			if match == nil || match(rec) {
				return rec
			}
		}
		select {
		case <-logged:
		case <-timeout.C:
			s.t.Fatalf("no log record %q matching within 10s; log:\n%s", msg, s.Log())
		}
	}
}

// Signal sends sig to the running server.
func (s *Server) Signal(sig os.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatal("Signal: server is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// PID returns the running server's process id (0 if it is not running):
// for tools that read its CPU and memory from /proc.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}
