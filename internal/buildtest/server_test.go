package buildtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// distServer is a server binary from dist/ running for a test.
type distServer struct {
	t         *testing.T
	cmd       *exec.Cmd
	TCP, HTTP string // listen addresses, as the server logged them

	mu   sync.Mutex
	log  bytes.Buffer
	exit chan error
}

// startDistServer runs the server command argv (the binary, possibly behind
// a wrapper such as strace) with env added to the environment; env must
// put the listeners on 127.0.0.1:0 and the log in JSON. It returns once the
// TCP listener is up and kills the process when the test ends.
func startDistServer(t *testing.T, argv []string, env []string) *distServer {
	t.Helper()
	s := &distServer{t: t, exit: make(chan error, 1)}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Env = withEnv(os.Environ(), env...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan [2]string, 4)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			var rec struct{ Msg, Transport, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				listening <- [2]string{rec.Transport, rec.Addr}
			}
		}
		s.exit <- s.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("server log:\n%s", s.Log())
		}
	})
	timeout := time.After(30 * time.Second)
	for s.TCP == "" {
		select {
		case l := <-listening:
			switch l[0] {
			case "tcp":
				s.TCP = l[1]
			case "http":
				s.HTTP = l[1]
			}
		case err := <-s.exit:
			t.Fatalf("the server exited before listening: %v\n%s", err, s.Log())
		case <-timeout:
			t.Fatalf("the server did not listen within 30s\n%s", s.Log())
		}
	}
	// The HTTP listener (if the server has one) is announced first.
	select {
	case l := <-listening:
		if l[0] == "http" {
			s.HTTP = l[1]
		}
	default:
	}
	return s
}

func (s *distServer) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Stop sends SIGTERM to pid (the server, or its process under a wrapper)
// and waits for the command to end.
func (s *distServer) Stop(pid int) error {
	s.t.Helper()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case err := <-s.exit:
		return err
	case <-time.After(30 * time.Second):
		s.t.Fatalf("the server did not stop within 30s of SIGTERM\n%s", s.Log())
		return nil
	}
}

// childOf returns the pid of the only child process of parent.
func childOf(t *testing.T, parent int) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var kids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces and parentheses.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		f := strings.Fields(rest)
		if len(f) > 1 && f[1] == strconv.Itoa(parent) {
			kids = append(kids, pid)
		}
	}
	if len(kids) != 1 {
		t.Fatalf("process %d has children %v, want one", parent, kids)
	}
	return kids[0]
}
