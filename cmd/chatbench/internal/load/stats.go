package load

import (
	"encoding/json"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Hist is an HDR histogram of durations in microseconds, from 1 µs to 10
// minutes with three significant digits. It is not safe for concurrent use;
// shards is the concurrent form. It travels between processes as JSON (the
// compressed HdrHistogram encoding, base64).
type Hist struct {
	h        *hdrhistogram.Histogram
	max      int64 // exact largest value, µs
	overflow int64 // values above the range, recorded as the maximum
}

const histMax = int64(10 * time.Minute / time.Microsecond)

// NewHist returns an empty histogram.
func NewHist() *Hist { return &Hist{h: hdrhistogram.New(1, histMax, 3)} }

// Record adds one duration.
func (h *Hist) Record(d time.Duration) {
	us := max(int64(d/time.Microsecond), 1)
	h.max = max(h.max, us)
	if us > histMax {
		h.overflow++
		us = histMax
	}
	_ = h.h.RecordValue(us)
}

// Merge adds o's values to h.
func (h *Hist) Merge(o *Hist) {
	if o == nil || o.h == nil {
		return
	}
	h.h.Merge(o.h)
	h.max = max(h.max, o.max)
	h.overflow += o.overflow
}

// Count is the number of values recorded.
func (h *Hist) Count() int64 { return h.h.TotalCount() }

// Quantile returns the value at q (0 to 1).
func (h *Hist) Quantile(q float64) time.Duration {
	return time.Duration(h.h.ValueAtQuantile(q*100)) * time.Microsecond
}

// Max returns the largest value recorded (exact, to the microsecond).
func (h *Hist) Max() time.Duration { return time.Duration(h.max) * time.Microsecond }

type histJSON struct {
	HDR      []byte `json:"hdr"` // HdrHistogram V2 compressed encoding
	Max      int64  `json:"max_us"`
	Overflow int64  `json:"overflow,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (h *Hist) MarshalJSON() ([]byte, error) {
	b, err := h.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, err
	}
	return json.Marshal(histJSON{HDR: b, Max: h.max, Overflow: h.overflow})
}

// UnmarshalJSON implements json.Unmarshaler.
func (h *Hist) UnmarshalJSON(b []byte) error {
	var v histJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	d, err := hdrhistogram.Decode(v.HDR)
	if err != nil {
		return err
	}
	h.h, h.max, h.overflow = d, v.Max, v.Overflow
	return nil
}

// Summary is a histogram's percentiles in milliseconds, for reports.
type Summary struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary returns the percentiles of h.
func (h *Hist) Summary() Summary {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	if h.Count() == 0 {
		return Summary{}
	}
	// Percentiles are the top of their HDR bucket (0.1% wide); the exact
	// maximum may be below that.
	q := func(f float64) float64 { return ms(min(h.Quantile(f), h.Max())) }
	return Summary{Count: h.Count(), P50: q(0.5), P90: q(0.9), P99: q(0.99), P999: q(0.999), Max: ms(h.Max())}
}

// shards is a histogram many goroutines record into: a few independently
// locked histograms, merged when read.
type shards struct {
	s [16]struct {
		mu sync.Mutex
		h  *Hist
		_  [40]byte // keep shards on separate cache lines
	}
}

func newShards() *shards {
	s := &shards{}
	for i := range s.s {
		s.s[i].h = NewHist()
	}
	return s
}

func (s *shards) record(key int, d time.Duration) {
	sh := &s.s[key%len(s.s)]
	sh.mu.Lock()
	sh.h.Record(d)
	sh.mu.Unlock()
}

func (s *shards) merged() *Hist {
	out := NewHist()
	for i := range s.s {
		sh := &s.s[i]
		sh.mu.Lock()
		out.Merge(sh.h)
		sh.mu.Unlock()
	}
	return out
}

// maxTracked bounds the sequence numbers a tracker keeps a bit for (2 MiB of
// bitmap): far more than any run sends; beyond it messages count as beyond.
const maxTracked = 1 << 24

// tracker checks one connection's deliveries in one room by sequence
// number: each live message (seq > base) must arrive exactly once. Only the
// connection's reader goroutine calls add; distinct may be read by others
// while it runs, the rest once it has stopped.
type tracker struct {
	base     uint64   // head in JOINED: seq <= base is history
	seen     []uint64 // bit i: seq base+1+i arrived
	distinct atomic.Uint64
	dups     uint64
	history  uint64
	over     uint64 // seq beyond maxTracked
}

// add records seq and reports whether it is a live message seen for the
// first time.
func (t *tracker) add(seq uint64) bool {
	if seq <= t.base {
		t.history++
		return false
	}
	i := seq - t.base - 1
	if i >= maxTracked {
		t.over++
		return false
	}
	w := int(i / 64)
	for w >= len(t.seen) {
		t.seen = append(t.seen, make([]uint64, max(len(t.seen), 8))...)
	}
	bit := uint64(1) << (i % 64)
	if t.seen[w]&bit != 0 {
		t.dups++
		return false
	}
	t.seen[w] |= bit
	t.distinct.Add(1)
	return true
}

// expected is the number of live messages the connection should have got
// when the room's last stored message is head.
func (t *tracker) expected(head uint64) uint64 {
	if head <= t.base {
		return 0
	}
	return head - t.base
}

// within counts the distinct live messages with seq <= head.
func (t *tracker) within(head uint64) uint64 {
	n := t.expected(head)
	var c uint64
	for w := 0; w < len(t.seen) && uint64(w)*64 < n; w++ {
		word := t.seen[w]
		if rem := n - uint64(w)*64; rem < 64 {
			word &= (1 << rem) - 1
		}
		c += uint64(bits.OnesCount64(word))
	}
	return c
}

// Delivery counts messages against what was expected.
type Delivery struct {
	Connections int    `json:"connections"` // that were checked
	Expected    uint64 `json:"expected"`    // live messages each should have got, summed
	Received    uint64 `json:"received"`    // of those, arrived (once)
	Missing     uint64 `json:"missing"`     // expected - received
	Duplicates  uint64 `json:"duplicates"`  // arrived more than once
	Beyond      uint64 `json:"beyond"`      // live messages after the last acknowledged one
	History     uint64 `json:"history"`     // replayed on join, not counted
}

func (d *Delivery) add(o Delivery) {
	d.Connections += o.Connections
	d.Expected += o.Expected
	d.Received += o.Received
	d.Missing += o.Missing
	d.Duplicates += o.Duplicates
	d.Beyond += o.Beyond
	d.History += o.History
}

// tally adds one stopped tracker against the room's last stored message.
func (d *Delivery) tally(t *tracker, head uint64) {
	exp, got := t.expected(head), t.within(head)
	d.Connections++
	d.Expected += exp
	d.Received += got
	d.Missing += exp - got
	d.Duplicates += t.dups
	d.Beyond += t.distinct.Load() - got + t.over
	d.History += t.history
}

// countMap counts reasons (error codes, failures), merged across workers.
type countMap map[string]int

func (m countMap) merge(o countMap) {
	for k, v := range o {
		m[k] += v
	}
}

// lockedCounts is a countMap for concurrent use.
type lockedCounts struct {
	mu sync.Mutex
	m  countMap
}

func (c *lockedCounts) add(reason string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = countMap{}
	}
	c.m[reason]++
	c.mu.Unlock()
}

func (c *lockedCounts) snapshot() countMap {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := countMap{}
	out.merge(c.m)
	return out
}
