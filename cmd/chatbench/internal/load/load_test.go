package load

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
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
