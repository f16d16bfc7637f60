package load

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"chat/cmd/chatbench/internal/procstat"
)

func TestTracker(t *testing.T) {
	tr := tracker{base: 10}
	for _, seq := range []uint64{5, 11, 12, 12, 14, 200, 11} {
		tr.add(seq)
	}
	if got := tr.distinct.Load(); got != 4 { // 11 12 14 200
		t.Errorf("distinct = %d, want 4", got)
	}
	if tr.dups != 2 || tr.history != 1 {
		t.Errorf("dups %d history %d, want 2 and 1", tr.dups, tr.history)
	}
	var d Delivery
	d.tally(&tr, 14) // expected 11..14: 13 is missing, 200 is beyond
	want := Delivery{Connections: 1, Expected: 4, Received: 3, Missing: 1, Duplicates: 2, Beyond: 1, History: 1}
	if d != want {
		t.Errorf("tally = %+v, want %+v", d, want)
	}
	var none Delivery
	none.tally(&tracker{base: 50}, 40) // the room's head is below the join: nothing expected
	if none.Expected != 0 || none.Missing != 0 {
		t.Errorf("head below base: %+v", none)
	}
}

func TestTrackerWithinWordBoundaries(t *testing.T) {
	tr := tracker{}
	for seq := uint64(1); seq <= 130; seq++ {
		tr.add(seq)
	}
	for _, head := range []uint64{0, 1, 63, 64, 65, 128, 130, 500} {
		if got, want := tr.within(head), min(head, 130); got != want {
			t.Errorf("within(%d) = %d, want %d", head, got, want)
		}
	}
}

func TestHistJSONRoundTrip(t *testing.T) {
	h := NewHist()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	h.Record(time.Hour) // above the range: counted as overflow, at the maximum
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back Hist
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Count() != 1001 || back.overflow != 1 || back.Max() != time.Hour {
		t.Errorf("after JSON: count %d overflow %d max %v", back.Count(), back.overflow, back.Max())
	}
	if p := back.Quantile(0.5); p < 499*time.Millisecond || p > 502*time.Millisecond { // 3 significant digits
		t.Errorf("p50 = %v, want about 500ms", p)
	}
	merged := NewHist()
	merged.Merge(h)
	merged.Merge(&back)
	if merged.Count() != 2002 {
		t.Errorf("merged count %d", merged.Count())
	}
}

func TestConfigCheck(t *testing.T) {
	ok := Config{Addr: "127.0.0.1:7878", Receivers: 10, Senders: 1, Rate: 10, Rooms: 1}
	ok.setDefaults()
	if err := ok.check(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"remote host":           func(c *Config) { c.Addr = "192.0.2.1:7878" },
		"remote websocket":      func(c *Config) { c.Addr = "ws://example.com/ws" },
		"remote pprof":          func(c *Config) { c.Pprof = "http://10.0.0.1:6060" },
		"senders without rate":  func(c *Config) { c.Rate = 0 },
		"too many per process":  func(c *Config) { c.Receivers = 30000 },
		"profile without pprof": func(c *Config) { c.CPUProfile = "x.pprof" },
	} {
		c := ok
		mutate(&c)
		if err := c.check(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	for _, addr := range []string{"localhost:1", "[::1]:7878", "127.0.0.9:7878", "ws://127.0.0.1:8080/ws"} {
		c := ok
		c.Addr = addr
		if err := c.check(); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

func TestScenarios(t *testing.T) {
	for _, name := range ScenarioNames() {
		c, ok := Scenario(name)
		if !ok {
			t.Fatalf("%s: missing", name)
		}
		c.Addr = "127.0.0.1:7878"
		c.setDefaults()
		if err := c.check(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if c.Target == (Target{}) {
			t.Errorf("%s: no target", name)
		}
	}
	if _, ok := Scenario("nope"); ok {
		t.Error("unknown scenario found")
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1500: "-1,500"} {
		if got := n(v); got != want {
			t.Errorf("n(%d) = %q, want %q", v, got, want)
		}
	}
	if !strings.Contains(counts(countMap{"b": 2, "a": 1}), "a ×1, b ×2") {
		t.Error("counts not sorted")
	}
}

func TestParseAddrs(t *testing.T) {
	for list, want := range map[string][]string{
		"127.0.0.1:7878":                          {"127.0.0.1:7878"},
		"127.0.0.1:7878,127.0.0.1:7879":           {"127.0.0.1:7878", "127.0.0.1:7879"},
		" 127.0.0.1:1 , [::1]:2,localhost:3":      {"127.0.0.1:1", "[::1]:2", "localhost:3"},
		"ws://127.0.0.1:1/ws,ws://127.0.0.1:2/ws": {"ws://127.0.0.1:1/ws", "ws://127.0.0.1:2/ws"},
		"tls://127.0.0.1:1,tls://127.0.0.1:2":     {"tls://127.0.0.1:1", "tls://127.0.0.1:2"},
	} {
		got, err := ParseAddrs(list)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseAddrs(%q) = %q, %v; want %q", list, got, err, want)
		}
	}
	for list, why := range map[string]string{
		"":                                   "no server address",
		"127.0.0.1:1,":                       "empty entry",
		"127.0.0.1:1,,127.0.0.1:2":           "empty entry",
		"127.0.0.1:1,192.0.2.1:2":            "not a loopback",
		"127.0.0.1:1,ws://127.0.0.1:2/ws":    "mix transports",
		"tls://127.0.0.1:1,127.0.0.1:2":      "mix transports",
		"127.0.0.1":                          "missing port",
		"ws://127.0.0.1:1/ws,127.0.0.1:7878": "mix transports",
	} {
		if _, err := ParseAddrs(list); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseAddrs(%q): error %v, want one saying %q", list, err, why)
		}
	}
}

func TestParsePIDs(t *testing.T) {
	for list, want := range map[string][]int{"": nil, " ": nil, "42": {42}, "42,7, 9": {42, 7, 9}} {
		if got, err := ParsePIDs(list); err != nil || !slices.Equal(got, want) {
			t.Errorf("ParsePIDs(%q) = %v, %v; want %v", list, got, err, want)
		}
	}
	for _, list := range []string{"x", "1,", "0", "-3", "4,4", "1;2"} {
		if _, err := ParsePIDs(list); err == nil {
			t.Errorf("ParsePIDs(%q): no error", list)
		}
	}
	c := Config{ServerPID: 5}
	if !slices.Equal(c.pids(), []int{5}) {
		t.Errorf("pids() of ServerPID alone: %v", c.pids())
	}
	c.ServerPIDs = []int{5, 6}
	if !slices.Equal(c.pids(), []int{5, 6}) {
		t.Errorf("pids(): %v", c.pids())
	}
}

// TestSpreadRoundRobin: receiver i goes to address i mod n, counted over
// every worker process, and so does sender i (Run uses spread for both).
func TestSpreadRoundRobin(t *testing.T) {
	addrs := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	for _, procs := range []int{0, 1, 2, 4} {
		cfg := Config{Receivers: 11, Procs: procs}
		specs := workerSpecs(cfg, addrs, []string{"a", "b"})
		perAddr := map[string]int{}
		next := 0
		for _, spec := range specs {
			if !slices.Equal(spec.Addrs, addrs) {
				t.Fatalf("procs %d: spec addresses %q", procs, spec.Addrs)
			}
			if spec.First != next {
				t.Fatalf("procs %d: spec starts at %d, want %d", procs, spec.First, next)
			}
			next += spec.Count
			w := NewWorker(spec)
			for _, r := range w.rs {
				if r.node != r.idx%3 {
					t.Errorf("procs %d: receiver %d on address %d, want %d", procs, r.idx, r.node, r.idx%3)
				}
				if want := []string{"a", "b"}[r.idx%2]; r.room != want {
					t.Errorf("procs %d: receiver %d in room %q, want %q", procs, r.idx, r.room, want)
				}
				perAddr[spec.Addrs[r.node]]++
			}
		}
		if next != 11 {
			t.Errorf("procs %d: %d receivers in the specs, want 11", procs, next)
		}
		if perAddr[addrs[0]] != 4 || perAddr[addrs[1]] != 4 || perAddr[addrs[2]] != 3 {
			t.Errorf("procs %d: receivers per address %v, want 4, 4, 3", procs, perAddr)
		}
	}
	for i, want := range []int{0, 1, 2, 0, 1} {
		if got := spread(i, 3); got != want {
			t.Errorf("spread(%d, 3) = %d, want %d", i, got, want)
		}
	}
	if spread(7, 1) != 0 {
		t.Error("one address: not always it")
	}
}

func TestSumServers(t *testing.T) {
	a := &ServerReport{PID: 1, Cmdline: "a", CPUs: "0", Before: &procstat.Sample{CPUSeconds: 1, RSSKiB: 100},
		WindowStart: &procstat.Sample{CPUSeconds: 2, RSSKiB: 200}, WindowEnd: &procstat.Sample{CPUSeconds: 5, RSSKiB: 300, FDs: 10}}
	b := &ServerReport{PID: 2, Cmdline: "b", CPUs: "1", Before: &procstat.Sample{CPUSeconds: 1, RSSKiB: 50},
		WindowStart: &procstat.Sample{CPUSeconds: 1, RSSKiB: 60}, WindowEnd: &procstat.Sample{CPUSeconds: 2, RSSKiB: 250, FDs: 5}}
	r := &Report{Servers: []*ServerReport{a, b}, Nodes: []NodeShare{{PID: 1, Joined: 3, Senders: 1}, {PID: 2, Joined: 6}},
		Join: JoinSummary{Joined: 9}}
	lat := NewHist()
	for range 1000 { // deliveries of the window's messages
		lat.Record(time.Millisecond)
	}
	r.finish(Config{}, []*WorkerResult{{Latency: lat, ReaderLag: NewHist()}}, []*sender{newSender(0, "", [8]byte{}, 64, 0, 0)}, 0, 2*time.Second)
	s := r.Server
	if s == nil || s.PID != 1 || s.Cmdline != "a" || s.CPUs != "0 1" {
		t.Fatalf("sum: %+v", s)
	}
	if s.CPUSeconds != 4 || s.Cores != 2 || s.WindowEnd.RSSKiB != 550 || s.WindowEnd.FDs != 15 || s.Connections != 10 {
		t.Errorf("sum: CPU %g, cores %g, RSS %d, fds %d, connections %d", s.CPUSeconds, s.Cores, s.WindowEnd.RSSKiB, s.WindowEnd.FDs, s.Connections)
	}
	if s.RSSPerConnKiB != 40 || s.CPUPerDeliveryMicros != 4000 {
		t.Errorf("sum: %g KiB/conn, %g µs/delivery", s.RSSPerConnKiB, s.CPUPerDeliveryMicros)
	}
	if a.CPUSeconds != 3 || a.Connections != 4 || a.RSSPerConnKiB != 50 || b.CPUSeconds != 1 || b.Connections != 6 {
		t.Errorf("each: %+v / %+v", a, b)
	}
	if a.Before.RSSKiB != 100 {
		t.Error("summing changed a server's own sample")
	}
}
