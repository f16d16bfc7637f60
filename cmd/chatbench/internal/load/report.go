package load

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"chat/cmd/chatbench/internal/procstat"
)

// Report is the outcome of a run, printed as a table or JSON.
type Report struct {
	Config        Config            `json:"config"`
	RunID         string            `json:"run_id"`
	Date          string            `json:"date"`
	Transport     string            `json:"transport"`
	Rooms         []string          `json:"rooms,omitempty"`
	Heads         map[string]uint64 `json:"heads,omitempty"` // last acknowledged seq per room
	GoMaxProcs    int               `json:"gomaxprocs"`
	Reader        string            `json:"reader"`         // how the workers read`
	GeneratorCPUs string            `json:"generator_cpus"` // affinity, e.g. "1"

	Join         JoinSummary `json:"join"`
	Sends        SendSummary `json:"sends"`
	Delivery     Delivery    `json:"delivery"`      // to receivers
	SenderCopies Delivery    `json:"sender_copies"` // the room's messages as the senders got them
	Latency      Summary     `json:"latency"`       // send time (as scheduled) to receipt, after warm-up
	Ack          Summary     `json:"ack"`           // send time (as scheduled) to ACK, after warm-up
	Presence     uint64      `json:"presence_frames"`
	Open         int         `json:"open"`             // receivers still connected at the end
	Ended        countMap    `json:"ended,omitempty"`  // why other receivers' connections ended
	Errors       countMap    `json:"errors,omitempty"` // ERROR frames received, by code
	Drained      bool        `json:"drained"`          // every receiver got everything before the drain timeout
	DrainSeconds float64     `json:"drain_seconds"`    // how long that took after the last ACK
	Unparseable  uint64      `json:"unparseable,omitempty"`

	// Nodes is how the connections were spread over the server addresses
	// (with more than one address, e.g. a cluster's nodes), in -addr order.
	Nodes []NodeShare `json:"nodes,omitempty"`

	// Server is the server process (-server-pid). With several pids it is
	// their sum: CPU and memory added up (its samples too), PID, Cmdline
	// the first's; each one is then in Servers. The pids may include
	// processes the chat servers depend on (a cluster's NATS servers):
	// their cost is the cluster's, and it is not "other processes".
	Server    *ServerReport   `json:"server,omitempty"`
	Servers   []*ServerReport `json:"servers,omitempty"`
	Generator GeneratorReport `json:"generator"`
	// Machine is all CPUs' time in the measured window, and Others the part
	// neither the server nor the generator used (other processes, interrupt
	// time), in cores: a busy machine makes a run worthless.
	Machine *procstat.CPUTimes `json:"machine,omitempty"`
	Others  float64            `json:"others_cores"`
	// CPUBusy is each CPU's busy share of the window, softirq included:
	// with the server pinned, its CPU's entry says whether it was saturated
	// (the kernel's loopback work is softirq time, not the server's).
	CPUBusy []float64      `json:"cpu_busy,omitempty"`
	Targets []TargetResult `json:"targets,omitempty"`

	// Valid: the generator kept up, so the numbers are the server's. Clean:
	// nothing was lost, duplicated or refused.
	Valid bool     `json:"valid"`
	Clean bool     `json:"clean"`
	Notes []string `json:"notes,omitempty"`

	serverLost bool // the server's pid vanished during the run
}

// JoinSummary is the join phase.
type JoinSummary struct {
	Attempted int      `json:"attempted"`
	Joined    int      `json:"joined"`
	Seconds   float64  `json:"seconds"`    // first connect to last JOINED
	PerClient Summary  `json:"per_client"` // connect to JOINED
	Failures  countMap `json:"failures,omitempty"`
	// CPU spent while joining, by the generator (all its processes) and
	// the server (from its samples before and after).
	GeneratorCPU float64 `json:"generator_cpu_seconds"`
	ServerCPU    float64 `json:"server_cpu_seconds,omitempty"`
}

// SendSummary is the senders' side.
type SendSummary struct {
	Sent        uint64   `json:"sent"`
	Acked       uint64   `json:"acked"`
	Unacked     uint64   `json:"unacked"`
	Late        uint64   `json:"late"` // sends more than Config.LateAfter behind schedule
	Lag         Summary  `json:"lag"`  // how far behind schedule each send was written to the socket buffer
	BadAcks     uint64   `json:"bad_acks,omitempty"`
	Problems    []string `json:"problems,omitempty"`
	MeasuredMsg int64    `json:"measured"` // ACKs of messages sent after warm-up
}

// NodeShare is one server address's part of the load.
type NodeShare struct {
	Addr      string `json:"addr"`
	Receivers int    `json:"receivers"` // receivers assigned to it (every len(Addrs)-th)
	Joined    int    `json:"joined"`    // of which joined
	Senders   int    `json:"senders"`
	PID       int    `json:"pid,omitempty"` // with a -server-pid per address (or more): the one in the same place
}

// ServerReport is the server process as /proc saw it.
type ServerReport struct {
	PID int `json:"pid"`
	// Addr is the address this server serves, when -server-pid lists the
	// nodes' pids in -addr order (and then any other server processes,
	// NATS say, which have none).
	Addr        string           `json:"addr,omitempty"`
	Cmdline     string           `json:"cmdline"`
	CPUs        string           `json:"cpus"` // affinity
	Before      *procstat.Sample `json:"before"`
	Joined      *procstat.Sample `json:"joined,omitempty"`
	WindowStart *procstat.Sample `json:"window_start,omitempty"`
	WindowEnd   *procstat.Sample `json:"window_end,omitempty"`
	After       *procstat.Sample `json:"after,omitempty"` // after the drain, connections still open

	CPUSeconds  float64 `json:"cpu_seconds"`          // in the measured window
	SysSeconds  float64 `json:"sys_cpu_seconds"`      // of which in the kernel
	Cores       float64 `json:"cores"`                // CPUSeconds / window
	Connections int     `json:"connections"`          // the generator's, at the window's end
	Goroutines  int     `json:"goroutines,omitempty"` // at the end, from pprof (with -pprof)
	// MemStats are runtime.MemStats fields (bytes; NumGC a count) at the
	// end, from pprof: HeapInuse, HeapIdle, HeapReleased, Stack (in use)…
	MemStats      map[string]int64 `json:"memstats,omitempty"`
	RSSPerConnKiB float64          `json:"rss_per_conn_kib"` // (RSS at the window's end - RSS before) / Connections
	// CPUPerDeliveryMicros is CPUSeconds over the receivers' deliveries of
	// the messages sent in the window (Report.Latency.Count), in µs: the
	// servers' summed cost of a delivered message, wherever it was sent.
	// Only in the sum (or the one server's report).
	CPUPerDeliveryMicros float64 `json:"cpu_per_delivery_us,omitempty"`
}

// windowCost fills in the server's cost in the measured window, for conns
// connections (0: unknown, no RSS per connection).
func (s *ServerReport) windowCost(window time.Duration, conns int) {
	if s.WindowStart == nil || s.WindowEnd == nil {
		return
	}
	s.CPUSeconds = s.WindowEnd.CPUSeconds - s.WindowStart.CPUSeconds
	s.SysSeconds = s.WindowEnd.SysSec - s.WindowStart.SysSec
	if window > 0 {
		s.Cores = s.CPUSeconds / window.Seconds()
	}
	s.Connections = conns
	if conns > 0 {
		s.RSSPerConnKiB = float64(s.WindowEnd.RSSKiB-s.Before.RSSKiB) / float64(conns)
	}
}

// sumServers adds several servers up into one ServerReport: samples,
// CPU and memory summed, the first's PID and command line, every CPU set.
// A sample is in the sum only if every server has it.
func sumServers(ss []*ServerReport) *ServerReport {
	sum := &ServerReport{PID: ss[0].PID, Cmdline: ss[0].Cmdline}
	var cpus []string
	for _, s := range ss {
		if !slices.Contains(cpus, s.CPUs) {
			cpus = append(cpus, s.CPUs)
		}
	}
	sum.CPUs = strings.Join(cpus, " ")
	pick := func(f func(*ServerReport) *procstat.Sample) *procstat.Sample {
		var t *procstat.Sample
		for _, s := range ss {
			x := f(s)
			if x == nil {
				return nil
			}
			if t == nil {
				c := *x
				t = &c
				continue
			}
			t.CPUSeconds += x.CPUSeconds
			t.UserSec += x.UserSec
			t.SysSec += x.SysSec
			t.RSSKiB += x.RSSKiB
			t.HWMKiB += x.HWMKiB
			t.Threads += x.Threads
			t.FDs += x.FDs
		}
		return t
	}
	sum.Before = pick(func(s *ServerReport) *procstat.Sample { return s.Before })
	sum.Joined = pick(func(s *ServerReport) *procstat.Sample { return s.Joined })
	sum.WindowStart = pick(func(s *ServerReport) *procstat.Sample { return s.WindowStart })
	sum.WindowEnd = pick(func(s *ServerReport) *procstat.Sample { return s.WindowEnd })
	sum.After = pick(func(s *ServerReport) *procstat.Sample { return s.After })
	return sum
}

// GeneratorReport is the load generator's own cost.
type GeneratorReport struct {
	Procs      int     `json:"procs"`
	CPUSeconds float64 `json:"cpu_seconds"`     // all its processes, in the measured window
	SysSeconds float64 `json:"sys_cpu_seconds"` // of which in the kernel (worker processes only)
	// ReaderLag: per read, epoll reporting a socket ready to reading it — the
	// least delay the generator added to the latencies (epoll reader only).
	ReaderLag Summary `json:"reader_lag"`
	Cores     float64 `json:"cores"`     // CPUSeconds / window
	Available int     `json:"available"` // CPUs it may run on
	Saturated bool    `json:"saturated"`
	MaxRSSKiB int64   `json:"max_rss_kib"` // largest peak RSS of its processes
}

// TargetResult is one target checked.
type TargetResult struct {
	What     string `json:"what"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Pass     bool   `json:"pass"`
}

// saturatedAt is the share of its CPUs above which the generator is taken
// to be the bottleneck: its readers then timestamp late and its senders
// fall behind, and the latency measured is partly its own.
const saturatedAt = 0.9

// othersAt is how much CPU, in cores, other processes may take during the
// measured window before the run is declared invalid: they compete with
// the pinned server and generator for their CPUs.
const othersAt = 0.1

func mergeJoins(js []*JoinReport) JoinSummary {
	per := NewHist()
	var s JoinSummary
	var first, last int64
	for _, j := range js {
		s.Attempted += j.Attempted
		s.Joined += j.Joined
		if j.FirstDial != 0 && (first == 0 || j.FirstDial < first) {
			first = j.FirstDial
		}
		last = max(last, j.LastJoined)
		per.Merge(j.PerClient)
		s.GeneratorCPU += j.CPUSeconds
		if len(j.Failures) > 0 {
			if s.Failures == nil {
				s.Failures = countMap{}
			}
			s.Failures.merge(j.Failures)
		}
	}
	if last > first {
		s.Seconds = time.Duration(last - first).Seconds()
	}
	s.PerClient = per.Summary()
	return s
}

// finish fills in the report from the workers' results and the senders.
func (r *Report) finish(cfg Config, results []*WorkerResult, senders []*sender, genCPU float64, window time.Duration) {
	lat, readerLag := NewHist(), NewHist()
	r.Ended, r.Errors = countMap{}, countMap{}
	r.Generator.Procs = len(results)
	for _, w := range results {
		r.Reader = w.Reader
		r.Delivery.add(w.Delivery)
		lat.Merge(w.Latency)
		r.Presence += w.Presence
		r.Open += w.Open
		r.Unparseable += w.Unparseable
		r.Ended.merge(w.Ended)
		r.Errors.merge(w.Errors)
		r.Generator.MaxRSSKiB = max(r.Generator.MaxRSSKiB, w.MaxRSSKiB)
		r.Generator.SysSeconds += w.SysCPU
		readerLag.Merge(w.ReaderLag)
	}
	r.Latency = lat.Summary()
	r.Generator.ReaderLag = readerLag.Summary()

	ack, lag := NewHist(), NewHist()
	for _, s := range senders {
		r.Sends.Sent += s.sent.Load()
		r.Sends.Acked += s.acked.Load()
		r.Sends.Late += s.lateSends
		r.Sends.BadAcks += s.badAcks
		ack.Merge(s.ackLat)
		lag.Merge(s.lag)
		r.SenderCopies.tally(&s.trk, r.Heads[s.room])
		if s.writeErr != nil {
			r.Sends.Problems = append(r.Sends.Problems, s.name+": write: "+s.writeErr.Error())
		}
		if s.endReason != "" {
			r.Sends.Problems = append(r.Sends.Problems, s.name+": "+s.endReason)
		}
		r.Errors.merge(s.errs.snapshot())
	}
	r.Sends.Unacked = r.Sends.Sent - min(r.Sends.Acked, r.Sends.Sent)
	r.Ack, r.Sends.Lag = ack.Summary(), lag.Summary()
	r.Sends.MeasuredMsg = ack.Count()

	// The generator: all its processes, in the measured window.
	if s, err := procstat.Read(0); err == nil {
		r.Generator.MaxRSSKiB = max(r.Generator.MaxRSSKiB, s.HWMKiB)
	}
	r.Generator.Available = runtime.NumCPU()
	r.Generator.CPUSeconds = genCPU
	if window > 0 {
		r.Generator.Cores = genCPU / window.Seconds()
	}
	r.Generator.Saturated = r.Generator.Cores > saturatedAt*float64(r.Generator.Available)

	// The servers: each one's cost (its connections known when the pids
	// are paired with the addresses), then their sum.
	conns := r.Join.Joined + len(senders)
	if len(r.Servers) > 0 {
		for _, s := range r.Servers {
			c := 0 // not a node's (NATS), or not known which
			if s.Addr != "" && len(r.Nodes) == 0 {
				c = conns // the one address's
			}
			for _, nd := range r.Nodes {
				if nd.PID == s.PID {
					c = nd.Joined + nd.Senders
				}
			}
			s.windowCost(window, c)
		}
		r.Server = sumServers(r.Servers)
	}
	if srv := r.Server; srv != nil {
		srv.windowCost(window, conns)
		if srv.WindowEnd != nil && r.Latency.Count > 0 {
			srv.CPUPerDeliveryMicros = srv.CPUSeconds * 1e6 / float64(r.Latency.Count)
		}
	}

	if m := r.Machine; m != nil && window > 0 {
		other := m.Busy() - m.IRQ - m.SoftIRQ - genCPU
		if r.Server != nil {
			other -= r.Server.CPUSeconds
		}
		r.Others = max(other, 0) / window.Seconds()
	}

	r.Valid = true
	if r.Others > othersAt && r.Server != nil {
		t := cfg.Target
		if t.LatencyP99 == 0 && t.AckP99 == 0 && t.JoinTime == 0 && t.RSSPerConnKiB > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("busy machine: other processes used %.2f core(s) in the window; memory is unaffected, timings are not", r.Others))
		} else {
			r.Valid = false
			r.Notes = append(r.Notes, fmt.Sprintf("INVALID: other processes used %.2f core(s) of this machine during the measured window: rerun when it is quiet", r.Others))
		}
	}
	if r.Generator.Saturated {
		r.Valid = false
		r.Notes = append(r.Notes, fmt.Sprintf("INVALID: the generator used %.2f of its %d CPU(s) in the measured window: it, not the server, may be the limit",
			r.Generator.Cores, r.Generator.Available))
	}
	if r.Sends.Sent > 0 && r.Sends.Late*100 > r.Sends.Sent {
		r.Valid = false
		r.Notes = append(r.Notes, fmt.Sprintf("INVALID: %d of %d sends (%.1f%%) were more than %v behind schedule: the generator could not keep its rate",
			r.Sends.Late, r.Sends.Sent, 100*float64(r.Sends.Late)/float64(r.Sends.Sent), cfg.LateAfter))
	}
	if cfg.Senders > 0 && r.Sends.MeasuredMsg == 0 {
		r.Notes = append(r.Notes, "no message was acknowledged in the measured window")
	}

	r.Clean = r.Join.Joined == r.Join.Attempted && r.Delivery.Missing == 0 && r.Delivery.Duplicates == 0 &&
		r.SenderCopies.Missing == 0 && r.SenderCopies.Duplicates == 0 && r.Sends.Unacked == 0 &&
		r.Sends.BadAcks == 0 && len(r.Sends.Problems) == 0 && len(r.Ended) == 0 && len(r.Errors) == 0 &&
		r.Unparseable == 0 && !r.serverLost
	r.checkTargets(cfg)
}

func (r *Report) checkTargets(cfg Config) {
	t := cfg.Target
	add := func(what, target, measured string, pass bool) {
		r.Targets = append(r.Targets, TargetResult{What: what, Target: target, Measured: measured, Pass: pass})
	}
	if t.LatencyP99 > 0 {
		add("delivery latency p99", "≤ "+t.LatencyP99.String(), ms(r.Latency.P99),
			r.Latency.Count > 0 && r.Latency.P99 <= float64(t.LatencyP99)/float64(time.Millisecond))
	}
	if t.AckP99 > 0 {
		add("send→ack p99", "≤ "+t.AckP99.String(), ms(r.Ack.P99),
			r.Ack.Count > 0 && r.Ack.P99 <= float64(t.AckP99)/float64(time.Millisecond))
	}
	if t.JoinTime > 0 {
		add("join time", "≤ "+t.JoinTime.String(), fmt.Sprintf("%.3f s", r.Join.Seconds),
			r.Join.Joined == r.Join.Attempted && r.Join.Seconds <= t.JoinTime.Seconds())
	}
	if t.RSSPerConnKiB > 0 {
		if r.Server == nil || r.Server.WindowEnd == nil {
			add("server RSS per connection", fmt.Sprintf("≤ %g KiB", t.RSSPerConnKiB), "not measured (no -server-pid)", false)
		} else {
			add("server RSS per connection", fmt.Sprintf("≤ %g KiB", t.RSSPerConnKiB),
				fmt.Sprintf("%.2f KiB", r.Server.RSSPerConnKiB), r.Server.RSSPerConnKiB <= t.RSSPerConnKiB)
		}
	}
	if len(r.Targets) > 0 {
		add("zero loss, zero duplicates, no failures", "clean", map[bool]string{true: "clean", false: "NOT clean"}[r.Clean], r.Clean)
	}
}

func ms(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) + " ms" }

// n formats an integer with thousands separators.
func n[T ~int | ~int64 | ~uint64](v T) string {
	s := strconv.FormatInt(int64(v), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func pct(s Summary) string {
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s", ms(s.P50), ms(s.P90), ms(s.P99), ms(s.P999), ms(s.Max))
}

func counts(m countMap) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// Print writes the report as a table for humans.
func (r *Report) Print(w io.Writer) {
	c := r.Config
	p := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-11s"+format+"\n", append([]any{label}, args...)...)
	}
	name := c.Scenario
	if name == "" {
		name = "custom"
	}
	p("chatbench", "%s   run %s   %s", name, r.RunID, r.Date)
	if c.Label != "" {
		p("label", "%s", c.Label)
	}
	if len(r.Nodes) == 0 {
		p("server", "%s (%s)", c.Addr, r.Transport)
	} else {
		p("servers", "%d (%s), connections spread round-robin (receiver i and sender i on server i mod %d):", len(r.Nodes), r.Transport, len(r.Nodes))
		for _, nd := range r.Nodes {
			pid := ""
			if nd.PID != 0 {
				pid = fmt.Sprintf(" (pid %d)", nd.PID)
			}
			p("", "%s%s: %s/%s receivers joined, %d senders", nd.Addr, pid, n(nd.Joined), n(nd.Receivers), nd.Senders)
		}
	}
	if len(r.Servers) > 0 {
		for _, s := range r.Servers {
			p("", "pid %d on CPU(s) %s: %s", s.PID, s.CPUs, s.Cmdline)
		}
	} else if s := r.Server; s != nil {
		p("", "pid %d on CPU(s) %s: %s", s.PID, s.CPUs, s.Cmdline)
	}
	workers := fmt.Sprintf("receivers in %d worker process(es)", c.Procs)
	if c.Procs == 0 {
		workers = "receivers in this process"
	}
	p("generator", "on CPU(s) %s, GOMAXPROCS %d; %s, read by %s", r.GeneratorCPUs, r.GoMaxProcs, workers, r.Reader)
	rooms := "no room (HELLO only)"
	if len(r.Rooms) == 1 {
		rooms = "1 room"
	} else if len(r.Rooms) > 1 {
		rooms = fmt.Sprintf("%d rooms", len(r.Rooms))
	}
	if c.Senders > 0 {
		p("load", "%s receivers + %d senders in %s; %g msg/s for %v after %v warm-up; %d-byte texts; open loop",
			n(c.Receivers), c.Senders, rooms, c.Rate, c.Duration, c.Warmup, c.Size)
	} else {
		p("load", "%s receivers in %s, held for %v", n(c.Receivers), rooms, c.Duration)
	}
	fmt.Fprintln(w)
	j := r.Join
	p("join", "%s/%s joined in %.3f s (first connect to last JOINED); per client p50 %s, p99 %s, max %s",
		n(j.Joined), n(j.Attempted), j.Seconds, ms(j.PerClient.P50), ms(j.PerClient.P99), ms(j.PerClient.Max))
	if j.Seconds >= 0.05 { // shorter joins are below the 10 ms resolution of CPU times
		line := fmt.Sprintf("CPU while joining: generator %.2f s (%.2f of its CPUs' time)", j.GeneratorCPU, j.GeneratorCPU/j.Seconds/float64(r.Generator.Available))
		if r.Server != nil {
			what := "server"
			if len(r.Servers) > 0 {
				what = fmt.Sprintf("%d servers together", len(r.Servers))
			}
			line += fmt.Sprintf(", %s %.2f s (%.2f core)", what, j.ServerCPU, j.ServerCPU/j.Seconds)
		}
		p("", "%s", line)
	}
	if len(j.Failures) > 0 {
		p("", "FAILED: %s", counts(j.Failures))
	}
	if c.Senders > 0 {
		s := r.Sends
		p("sends", "%s sent, %s acked, %s unacked; %s late by > %v (schedule lag p99 %s, max %s)",
			n(s.Sent), n(s.Acked), n(s.Unacked), n(s.Late), c.LateAfter, ms(s.Lag.P99), ms(s.Lag.Max))
		for _, pr := range s.Problems {
			p("", "PROBLEM: %s", pr)
		}
	}
	if len(r.Rooms) > 0 {
		d := r.Delivery
		p("delivery", "%s expected, %s received, %s missing, %s duplicate, %s beyond the last ACK",
			n(d.Expected), n(d.Received), n(d.Missing), n(d.Duplicates), n(d.Beyond))
		if c.Senders > 0 {
			sc := r.SenderCopies
			p("", "senders' own copies: %s/%s, %s missing, %s duplicate", n(sc.Received), n(sc.Expected), n(sc.Missing), n(sc.Duplicates))
		}
		drained := "all in"
		if !r.Drained {
			drained = "NOT all in"
		}
		p("", "%s %.2f s after the last ACK; %s PRESENCE frames; %s receivers still connected at the end",
			drained, r.DrainSeconds, n(r.Presence), n(r.Open))
	}
	if c.Senders > 0 {
		p("latency", "%s   (%s deliveries after warm-up)", pct(r.Latency), n(r.Latency.Count))
		p("send→ack", "%s   (%s ACKs after warm-up)", pct(r.Ack), n(r.Ack.Count))
	}
	if len(r.Ended) > 0 {
		p("ended", "%s", counts(r.Ended))
	}
	if len(r.Errors) > 0 {
		p("errors", "%s", counts(r.Errors))
	}
	window := c.Duration.Seconds()
	for _, s := range r.Servers {
		if s.WindowEnd == nil {
			continue
		}
		line := fmt.Sprintf("pid %d", s.PID)
		if s.Addr != "" {
			line += " (" + s.Addr + ")"
		}
		line += fmt.Sprintf(": CPU %.2f s (%.2f s in the kernel) = %.2f core; RSS %s before, %s at the window's end (peak %s)",
			s.CPUSeconds, s.SysSeconds, s.Cores, mib(s.Before.RSSKiB), mib(s.WindowEnd.RSSKiB), mib(s.WindowEnd.HWMKiB))
		if s.Connections > 0 {
			line += fmt.Sprintf(": %.2f KiB per connection (%s connections)", s.RSSPerConnKiB, n(s.Connections))
		}
		line += fmt.Sprintf("; %s threads, %s fds", n(s.WindowEnd.Threads), n(s.WindowEnd.FDs))
		if s.Goroutines > 0 {
			line += fmt.Sprintf(", %s goroutines", n(s.Goroutines))
		}
		p("server", "%s", line)
	}
	if s := r.Server; s != nil && s.Before != nil {
		label := "server"
		if len(r.Servers) > 0 {
			label = "servers"
			p(label, "all %d together:", len(r.Servers))
			label = ""
		}
		if s.WindowEnd != nil {
			line := fmt.Sprintf("CPU %.2f s (%.2f s in the kernel) in the %.0f s window = %.2f core; %s threads, %s fds",
				s.CPUSeconds, s.SysSeconds, window, s.Cores, n(s.WindowEnd.Threads), n(s.WindowEnd.FDs))
			if s.Goroutines > 0 {
				line += fmt.Sprintf(", %s goroutines", n(s.Goroutines))
			}
			p(label, "%s at the end", line)
			if s.CPUPerDeliveryMicros > 0 {
				p("", "CPU per delivered message: %.2f µs (%s deliveries of the window's messages)", s.CPUPerDeliveryMicros, n(r.Latency.Count))
			}
			line = fmt.Sprintf("RSS %s before, ", mib(s.Before.RSSKiB))
			if s.Joined != nil {
				line += fmt.Sprintf("%s joined, ", mib(s.Joined.RSSKiB))
			}
			line += fmt.Sprintf("%s at the window's end (peak %s): %.2f KiB per connection (%s connections)",
				mib(s.WindowEnd.RSSKiB), mib(s.WindowEnd.HWMKiB), s.RSSPerConnKiB, n(s.Connections))
			p("", "%s", line)
			if m := s.MemStats; m != nil {
				p("", "Go memory: heap in use %s (live %s), heap idle not released %s, goroutine stacks %s, GC metadata %s; %d GCs",
					mib(m["HeapInuse"]>>10), mib(m["HeapAlloc"]>>10), mib((m["HeapIdle"]-m["HeapReleased"])>>10),
					mib(m["Stack"]>>10), mib(m["GCSys"]>>10), m["NumGC"])
			}
		}
	}
	if m := r.Machine; m != nil && window > 0 {
		var per []string
		for i, b := range r.CPUBusy {
			per = append(per, fmt.Sprintf("CPU %d %.0f%%", i, 100*b))
		}
		p("machine", "busy %.2f cores in the window (%s; softirq %.2f cores); other processes %.2f cores",
			m.Busy()/window, strings.Join(per, ", "), m.SoftIRQ/window, r.Others)
	}
	g := r.Generator
	p("generator", "CPU %.2f s (workers' kernel time %.2f s) in the window = %.2f of %d CPU(s); peak RSS %s",
		g.CPUSeconds, g.SysSeconds, g.Cores, g.Available, mib(g.MaxRSSKiB))
	if g.ReaderLag.Count > 0 {
		p("", "reader lag (epoll ready → read, a lower bound of the generator's share of latency): p50 %s, p99 %s, max %s",
			ms(g.ReaderLag.P50), ms(g.ReaderLag.P99), ms(g.ReaderLag.Max))
	}
	for _, t := range r.Targets {
		verdict := "PASS"
		if !t.Pass {
			verdict = "MISS"
		}
		p("target", "%s %s: %s  %s", t.What, t.Target, t.Measured, verdict)
	}
	for _, note := range r.Notes {
		p("note", "%s", note)
	}
	verdict := "valid"
	if !r.Valid {
		verdict = "INVALID (see the notes: the numbers may not be the server's)"
	}
	if r.Clean {
		verdict += ", clean"
	} else {
		verdict += ", NOT clean (loss, duplicates or failures above)"
	}
	p("verdict", "%s", verdict)
}
