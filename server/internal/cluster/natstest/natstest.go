// Package natstest runs real NATS servers with JetStream inside the test
// process, on loopback ports, each with its own store under the test's
// temporary directory: one server, or a cluster of several whose members
// can be stopped and started again (on the same ports, with their data)
// to test what the chat cluster does when NATS loses a server or quorum.
package natstest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options change how Start runs the servers.
type Options struct {
	// TLSCert and TLSKey (PEM files), if set, make the servers require
	// TLS from clients; URLs then start with tls://.
	TLSCert, TLSKey string
}

// Cluster is a set of NATS servers started by Start.
type Cluster struct {
	t    testing.TB
	name string
	dir  string
	opts Options

	log *warnings // the servers' warnings and errors, shown if the test fails

	mu      sync.Mutex
	servers []*server.Server // nil: stopped
	ports   []int            // client ports, kept across restarts
	routes  []int            // cluster ports, kept across restarts
}

// Start runs n NATS servers with JetStream (n = 1: a single server, no
// clustering) and waits until they are ready and, for a cluster, until
// JetStream has a meta leader. They stop when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartWith(t, n, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, name: "chat-test", dir: t.TempDir(), opts: opts, log: &warnings{},
		servers: make([]*server.Server, n), ports: make([]int, n), routes: make([]int, n)}
	t.Cleanup(func() {
		if t.Failed() {
			c.log.dump(t)
		}
	})
	for i := range n {
		c.ports[i] = freePort(t)
		if n > 1 {
			c.routes[i] = freePort(t)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.start(i) }()
	}
	wg.Wait()
	t.Cleanup(c.stopAll)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.WaitReady()
	return c
}

// freePort returns a loopback port that was free a moment ago. Between
// closing it and the server binding it another process could take it;
// the server then fails to start, loudly.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (c *Cluster) options(i int) *server.Options {
	o := &server.Options{
		ServerName: fmt.Sprintf("nats-%d", i),
		Host:       "127.0.0.1",
		Port:       c.ports[i],
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   filepath.Join(c.dir, strconv.Itoa(i)),
		// Small limits keep a test's servers light; the chat's streams
		// ask for far less.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  4 << 30,
	}
	if c.opts.TLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: c.opts.TLSCert, KeyFile: c.opts.TLSKey})
		if err != nil {
			c.t.Fatalf("natstest: TLS: %v", err)
		}
		o.TLSConfig, o.TLS, o.TLSTimeout = tc, true, 5
	}
	if len(c.ports) > 1 {
		o.Cluster = server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: c.routes[i]}
		for j, p := range c.routes {
			if j != i {
				o.Routes = append(o.Routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
			}
		}
	}
	return o
}

func (c *Cluster) start(i int) error {
	s, err := server.NewServer(c.options(i))
	if err != nil {
		return fmt.Errorf("natstest: server %d: %w", i, err)
	}
	s.SetLoggerV2(c.log.server(i), false, false, false)
	s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("natstest: server %d not ready within 20s", i)
	}
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
	return nil
}

// WaitReady waits until every running server accepts connections and
// JetStream is current on them (a meta leader is elected in a cluster).
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	running := c.running()
	for _, s := range running {
		for !s.JetStreamIsCurrent() || (len(running) > 1 && !c.peersCurrent(s, len(running))) {
			if time.Now().After(deadline) {
				c.t.Fatalf("natstest: %s: JetStream not current within 30s", s.Name())
			}
			// The server offers no event for this; the poll is bounded
			// by the deadline above.
			time.Sleep(20 * time.Millisecond)
		}
	}
	c.placeable(deadline)
}

// placeable waits until a stream replicated on every running server can
// be created (and deletes it): only then does the meta leader know every
// server's state, and a stream of the tests can be placed. Before that,
// a young cluster answers "no suitable peers for placement" for a
// moment after its servers report current.
func (c *Cluster) placeable(deadline time.Time) {
	c.t.Helper()
	running := c.running()
	if len(running) < 2 {
		return
	}
	var urls []string
	for i := range c.ports {
		if c.Server(i) != nil {
			urls = append(urls, c.URL(i))
		}
	}
	var opts []nats.Option
	if c.opts.TLSCert != "" {
		opts = append(opts, nats.RootCAs(c.opts.TLSCert))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		c.t.Fatalf("natstest: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatalf("natstest: %v", err)
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NATSTEST_PROBE", Subjects: []string{"natstest.probe"},
			Storage: jetstream.FileStorage, Replicas: len(running)})
		if err == nil {
			err = js.DeleteStream(ctx, "NATSTEST_PROBE")
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: a stream on all %d servers cannot be placed within 30s: %v", len(running), err)
		}
		// Nothing signals placeability; bounded by the deadline.
		time.Sleep(50 * time.Millisecond)
	}
}

// peersCurrent reports whether the JetStream meta group has a leader
// that sees every other running server as a current, online peer: until
// then, placing a replicated stream may fail with "no suitable peers".
func (c *Cluster) peersCurrent(s *server.Server, running int) bool {
	info, err := s.Jsz(nil)
	if err != nil || info.Meta == nil || info.Meta.Leader == "" {
		return false
	}
	if info.Meta.Leader != s.Name() {
		return true // the leader's own check decides
	}
	current := 0
	for _, p := range info.Meta.Replicas {
		if p.Current && !p.Offline {
			current++
		}
	}
	return current >= running-1
}

func (c *Cluster) running() []*server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*server.Server
	for _, s := range c.servers {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// URL is the client URL of server i (it stays the same across restarts).
func (c *Cluster) URL(i int) string {
	scheme := "nats"
	if c.opts.TLSCert != "" {
		scheme = "tls"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, c.ports[i])
}

// URLs is every server's client URL, comma-separated: the -nats flag.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.ports))
	for i := range c.ports {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// Size is the number of servers, running or not.
func (c *Cluster) Size() int { return len(c.ports) }

// Stop shuts server i down (its data stays for Restart).
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts a stopped server i again, on its ports and with its data.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if err := c.start(i); err != nil {
		c.t.Fatal(err)
	}
}

// Server returns server i, or nil if it is stopped.
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

func (c *Cluster) stopAll() {
	for i := range c.servers {
		c.Stop(i)
	}
}
