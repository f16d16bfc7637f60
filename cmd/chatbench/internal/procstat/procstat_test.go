package procstat

import (
	"os"
	"testing"
	"time"
)

func TestParseStatWithSpacesInName(t *testing.T) {
	stat := "1234 (chat server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 1000 200 18446744073709551615"
	u, s, err := parseStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if u != 2.5 || s != 0.75 {
		t.Errorf("user %v system %v, want 2.5 and 0.75", u, s)
	}
	if _, _, err := parseStat([]byte("garbage")); err == nil {
		t.Error("no error for garbage")
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tchat-server\nThreads:\t9\nVmHWM:\t   40000 kB\nVmRSS:\t   32000 kB\n"
	rss, hwm, threads := parseStatus([]byte(status))
	if rss != 32000 || hwm != 40000 || threads != 9 {
		t.Errorf("rss %d hwm %d threads %d", rss, hwm, threads)
	}
}

func TestReadSelf(t *testing.T) {
	s, err := Read(0)
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if s.RSSKiB <= 0 || s.Threads <= 0 || s.FDs <= 0 {
		t.Errorf("implausible sample of this process: %+v", s)
	}
	if c := Cmdline(os.Getpid()); c == "" {
		t.Error("no command line for this process")
	}
	if Affinity(0) == "" {
		t.Error("no CPU affinity for this process")
	}
	if _, err := Read(1 << 30); err == nil {
		t.Error("reading a pid that cannot exist succeeded")
	}
}

func TestParseCPULine(t *testing.T) {
	c, err := parseCPULine("cpu  1000 10 500 8000 20 5 85 0 0 0")
	if err != nil {
		t.Fatal(err)
	}
	if c.User != 10 || c.System != 5 || c.SoftIRQ != 0.85 || c.Busy() != 16 {
		t.Errorf("%+v busy %v", c, c.Busy())
	}
	if _, err := parseCPULine("intr 1 2 3"); err == nil {
		t.Error("no error for a line that is not cpu")
	}
	if total, per, err := ReadCPUTimes(); err == nil && (total.Busy() <= 0 || len(per) == 0) {
		t.Errorf("machine: %+v, %d CPUs", total, len(per))
	}
}

// TestReadSelfCountsBelowATick: this process's CPU time is counted finer
// than /proc's 10 ms ticks, so a short, light benchmark run still
// reports the CPU its generator used.
func TestReadSelfCountsBelowATick(t *testing.T) {
	before, err := Read(0)
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for after := before; after.CPUSeconds == before.CPUSeconds; {
		spin(time.Millisecond)
		if after, err = Read(0); err != nil {
			t.Fatal(err)
		}
		if d := after.CPUSeconds - before.CPUSeconds; d > 0 && d < 0.005 {
			return // less than one tick: counted
		} else if d >= 0.005 {
			t.Fatalf("first change seen was %.4f s: not finer than a tick", d)
		}
	}
}

// spin keeps a CPU busy for d.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}
