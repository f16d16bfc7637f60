// Package load runs chat benchmarks: receivers spread over worker
// processes, open-loop senders, and the bookkeeping that turns what
// arrived into a report (join time, loss and duplicates by sequence number,
// HDR latency histograms, CPU and memory of the server and of the
// generator itself).
//
// A run has four phases. Join: senders connect and join first, then the
// workers open every receiver. Run: the senders post on a fixed schedule
// (open loop: a late server never slows them, each text carries the time it
// was due, and a generator that falls behind its own schedule is counted).
// Drain: the senders wait for their ACKs, which fixes the last sequence
// number of each room; the workers wait until each receiver has every
// message up to it. Collect: the connections close and the counts and
// histograms are merged into a Report.
package load

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"chat/cmd/chatbench/internal/wire"
)

// Config is one run.
type Config struct {
	Scenario string `json:"scenario,omitempty"`
	Label    string `json:"label,omitempty"` // what was measured, e.g. the server's commit; free text
	Addr     string `json:"addr"`            // host:port (TCP), tls://host:port or ws://host:port/ws; several comma-separated (see Addrs)
	// Addrs is Addr split at its commas: the nodes of a cluster (or
	// independent servers). Receiver i and sender i use Addrs[i % len];
	// filled in by Run.
	Addrs     []string      `json:"addrs,omitempty"`
	Receivers int           `json:"receivers"` // connections that only read
	Senders   int           `json:"senders"`   // connections that post (and read their room too)
	Rate      float64       `json:"rate"`      // messages per second, all senders together
	Duration  time.Duration `json:"duration"`  // measured sending time, or how long to hold idle connections
	Warmup    time.Duration `json:"warmup"`    // sending before measuring: counted for loss, not latency
	Size      int           `json:"size"`      // message text, bytes
	Room      string        `json:"room"`      // room name, or prefix "NAME-NN" with Rooms > 1; empty: a new room per run
	Rooms     int           `json:"rooms"`     // rooms receivers and senders are spread over; 0: receivers only say HELLO
	Procs     int           `json:"procs"`     // receivers in this many worker processes; 0: in this process
	Reader    string        `json:"reader"`    // how workers read TCP and WebSocket receivers: "epoll" (default on Linux) or "goroutine"

	JoinConcurrency int           `json:"join_concurrency"` // connects and joins in flight, per process
	JoinTimeout     time.Duration `json:"join_timeout"`     // per connection, connect to JOINED
	Drain           time.Duration `json:"drain"`            // how long to wait for ACKs and deliveries after the last send
	LateAfter       time.Duration `json:"late_after"`       // a send more than this behind its schedule is late
	ReadBuffer      int           `json:"read_buffer"`      // per receiver connection, bytes

	ServerPID int `json:"server_pid,omitempty"` // read its CPU and memory from /proc; with ServerPIDs, their first
	// ServerPIDs are the pids of several servers (a cluster's chat nodes):
	// each one's CPU and memory is reported, and their sum. With one
	// server, ServerPID alone may be set.
	ServerPIDs  []int  `json:"server_pids,omitempty"`
	Pprof       string `json:"pprof,omitempty"`        // the server's pprof base URL, loopback only (http://127.0.0.1:6060)
	CPUProfile  string `json:"cpu_profile,omitempty"`  // write the server's CPU profile of the measured phase here
	HeapProfile string `json:"heap_profile,omitempty"` // write the server's heap profile at the end of the measured phase here

	// WorkerCommand runs a worker process (argv); default: this executable
	// with WorkerEnv set.
	WorkerCommand []string `json:"-"`

	Target Target `json:"target"`
}

// Target is what a named scenario must achieve; zero fields are not checked.
type Target struct {
	LatencyP99    time.Duration `json:"latency_p99,omitempty"`      // delivery latency, 99th percentile
	AckP99        time.Duration `json:"ack_p99,omitempty"`          // send→ack, 99th percentile
	JoinTime      time.Duration `json:"join_time,omitempty"`        // first connect to last JOINED
	RSSPerConnKiB float64       `json:"rss_per_conn_kib,omitempty"` // server resident memory per connection
}

// Scenario returns the named scenario of issue 7 with addr filled in.
func Scenario(name string) (Config, bool) {
	c := Config{Scenario: name, Size: 64, Rooms: 1, Procs: 1, Reader: "epoll", Warmup: 5 * time.Second, Duration: 30 * time.Second}
	switch name {
	case "fanout-2000x50":
		c.Receivers, c.Senders, c.Rate = 2000, 10, 50
		c.Target.LatencyP99 = 10 * time.Millisecond
	case "fanout-5000x100":
		c.Receivers, c.Senders, c.Rate = 5000, 10, 100
		c.Target.LatencyP99 = 50 * time.Millisecond
	case "idle-19000":
		// 19 rooms of 1000: idle members of rooms, the way a server holds
		// most of its connections. Two worker processes of 9500 sockets
		// each, well inside the 20,000 open files a process may have.
		c.Receivers, c.Rooms, c.Procs = 19000, 19, 2
		c.Warmup, c.Duration = 0, 20*time.Second
		c.Target.RSSPerConnKiB = 8
	case "join-2000":
		c.Receivers = 2000
		c.Warmup, c.Duration = 0, 2*time.Second
		c.Target.JoinTime = 500 * time.Millisecond
	case "ingest-10k":
		// Four senders posting 2,500/s each into one durable room, plus two
		// receivers: the room's messages go to 6 members, so the load is
		// storage (group commit) more than fan-out.
		c.Receivers, c.Senders, c.Rate = 2, 4, 10000
		c.Target.AckP99 = 5 * time.Millisecond
	default:
		return Config{}, false
	}
	return c, true
}

// ScenarioNames lists the named scenarios.
func ScenarioNames() []string {
	return []string{"fanout-2000x50", "fanout-5000x100", "idle-19000", "join-2000", "ingest-10k"}
}

// MaxPerProcess is the most sockets one generator process holds: the
// machine allows 20,000 open files per process.
const MaxPerProcess = 19000

func (c *Config) setDefaults() {
	if c.Reader == "" {
		c.Reader = "epoll"
	}
	if c.Size <= 0 {
		c.Size = 64
	}
	if c.JoinConcurrency <= 0 {
		c.JoinConcurrency = 500
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = 30 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 15 * time.Second
	}
	if c.LateAfter <= 0 {
		c.LateAfter = 5 * time.Millisecond
	}
	if c.ReadBuffer <= 0 {
		c.ReadBuffer = 2048
	}
}

// check reports configuration errors.
func (c *Config) check() error {
	var errs []error
	if _, err := ParseAddrs(c.Addr); err != nil {
		errs = append(errs, err)
	}
	if c.Receivers < 0 || c.Senders < 0 {
		errs = append(errs, errors.New("receivers and senders cannot be negative"))
	}
	if c.Senders > 0 && c.Rate <= 0 {
		errs = append(errs, errors.New("senders need a positive -rate"))
	}
	if c.Senders > 0 && c.Rooms == 0 {
		errs = append(errs, errors.New("senders need a room: -rooms 0 is for HELLO-only receivers"))
	}
	if c.Rooms < 0 {
		errs = append(errs, errors.New("-rooms cannot be negative"))
	}
	if c.Duration < 0 || c.Warmup < 0 {
		errs = append(errs, errors.New("-duration and -warmup cannot be negative"))
	}
	if c.Receivers > 0 && c.Procs > c.Receivers {
		errs = append(errs, fmt.Errorf("-procs %d is more than the %d receivers", c.Procs, c.Receivers))
	}
	if c.Procs < 0 {
		errs = append(errs, errors.New("-procs cannot be negative"))
	}
	perProc := c.Receivers + c.Senders
	if c.Procs > 0 {
		perProc = max((c.Receivers+c.Procs-1)/c.Procs, c.Senders)
	}
	if perProc > MaxPerProcess {
		errs = append(errs, fmt.Errorf("%d connections in one process is above the %d a process can hold here: use -procs %d",
			perProc, MaxPerProcess, (c.Receivers+MaxPerProcess-1)/MaxPerProcess))
	}
	switch c.Reader {
	case "epoll", "goroutine":
	default:
		errs = append(errs, fmt.Errorf("-reader %q: epoll or goroutine", c.Reader))
	}
	if c.Pprof != "" {
		if err := loopbackURL(c.Pprof); err != nil {
			errs = append(errs, err)
		}
	} else if c.CPUProfile != "" || c.HeapProfile != "" {
		errs = append(errs, errors.New("profiles need -pprof, the server's pprof address"))
	}
	return errors.Join(errs...)
}

// ParseAddrs splits a comma-separated list of server addresses (the
// -addr flag) and checks each: loopback only, and one transport for all
// (a run mixing TCP and WebSocket, say, would compare unlike costs).
func ParseAddrs(list string) ([]string, error) {
	var addrs []string
	for a := range strings.SplitSeq(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			if strings.TrimSpace(list) == "" {
				return nil, errors.New("no server address")
			}
			return nil, fmt.Errorf("server addresses %q: an empty entry", list)
		}
		if err := loopbackAddr(a); err != nil {
			return nil, err
		}
		if len(addrs) > 0 && wire.Transport(a) != wire.Transport(addrs[0]) {
			return nil, fmt.Errorf("server addresses %q mix transports (%s and %s): use one for all",
				list, wire.Transport(addrs[0]), wire.Transport(a))
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// ParsePIDs parses a comma-separated list of process ids (the -server-pid
// flag); the empty string is no pid.
func ParsePIDs(list string) ([]int, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var pids []int
	for f := range strings.SplitSeq(list, ",") {
		pid, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("server pids %q: %q is not a pid", list, f)
		}
		if slices.Contains(pids, pid) {
			return nil, fmt.Errorf("server pids %q: %d twice", list, pid)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// pids returns the servers' pids: ServerPIDs, or ServerPID alone.
func (c *Config) pids() []int {
	if len(c.ServerPIDs) > 0 {
		return c.ServerPIDs
	}
	if c.ServerPID != 0 {
		return []int{c.ServerPID}
	}
	return nil
}

// spread returns which of n addresses connection i (receiver i, or sender
// i, counted over all worker processes) uses: round-robin, every n-th
// connection on the same server. Rooms are assigned the same way (i mod
// rooms), so with as many rooms as servers each room's members are all on
// one server; with one room, its members are on every server.
func spread(i, n int) int { return i % n }

// loopbackAddr accepts only servers on 127.0.0.0/8 or ::1: this is a
// load generator, and it stays on the machine it runs on.
func loopbackAddr(addr string) error {
	if strings.HasPrefix(addr, "ws://") {
		return loopbackURL(addr)
	}
	hostPort := strings.TrimPrefix(strings.TrimPrefix(addr, "tcp://"), "tls://")
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return fmt.Errorf("server address %q: %v (want host:port, tls://host:port or ws://host:port/ws)", addr, err)
	}
	return loopbackHost(host)
}

func loopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	return loopbackHost(u.Hostname())
}

func loopbackHost(host string) error {
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address: chatbench only loads servers on 127.0.0.0/8 or ::1", host)
}

// roomNames returns the rooms of a run.
func (c *Config) roomNames(runID string) []string {
	if c.Rooms == 0 {
		return nil
	}
	base := c.Room
	if base == "" {
		base = "bench-" + runID
	}
	if c.Rooms == 1 {
		return []string{base}
	}
	names := make([]string, c.Rooms)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%02d", base, i)
	}
	return names
}
