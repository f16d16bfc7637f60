// Package limit holds the server's abuse limits: a token bucket for the
// message rate of a connection, a per-address limiter for connections and
// one for events such as room creations. Per-address limiters remember a
// bounded number of addresses.
package limit

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Bucket is a token bucket: Burst tokens at most, refilled at Rate per
// second. It is not safe for concurrent use.
type Bucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

// NewBucket returns a full bucket.
func NewBucket(rate float64, burst int, now time.Time) *Bucket {
	return &Bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// Take spends a token and returns how long the caller should wait before
// acting, zero if a token was there.
func (b *Bucket) Take(now time.Time) time.Duration {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// Refused says why a connection was not allowed.
type Refused string

// Reasons a connection is refused.
const (
	TooManyConnections Refused = "too many connections from this address"
	TooManyNew         Refused = "too many new connections from this address; wait a minute"
	// TooManyAddresses: the table of addresses is full of addresses
	// that all have connections open; a new address waits for one to
	// close.
	TooManyAddresses Refused = "the server is serving too many addresses; try again later"
)

// DefaultMaxTracked is how many addresses (IPv4 addresses and IPv6 /64s)
// a limiter remembers unless told otherwise: about 15 MB of memory.
const DefaultMaxTracked = 100_000

// Addresses limits connections per client address: how many at once and
// how many new ones per minute. IPv6 addresses count per /64, the block a
// single subscriber usually gets.
//
// It remembers at most maxTracked addresses (see table for what it
// forgets first when full).
type Addresses struct {
	maxConns       int
	perMinute      int
	exemptLoopback bool

	mu    sync.Mutex
	hosts table
	now   func() time.Time
}

// NewAddresses returns a limiter; zero maxConns or perMinute disables
// that limit. Loopback clients are exempt when exemptLoopback is set (a
// reverse proxy on the same machine connects from loopback for everyone).
// It tracks at most DefaultMaxTracked addresses; WithMaxTracked changes that.
func NewAddresses(maxConns, perMinute int, exemptLoopback bool) *Addresses {
	a := &Addresses{maxConns: maxConns, perMinute: perMinute, exemptLoopback: exemptLoopback, now: time.Now}
	a.hosts = newTable(DefaultMaxTracked)
	return a
}

// WithMaxTracked bounds the addresses remembered at once (0: the
// default) and returns a. Call it before the limiter is used.
func (a *Addresses) WithMaxTracked(n int) *Addresses {
	if n <= 0 {
		n = DefaultMaxTracked
	}
	a.hosts.max = n
	return a
}

// Acquire admits a connection from remote (an "ip:port" or "ip"). On
// success it returns a release func to call when the connection ends.
func (a *Addresses) Acquire(remote string) (release func(), refused Refused) {
	ip, key, ok := prefix(remote)
	if !ok || (a.exemptLoopback && ip.IsLoopback()) || (a.maxConns == 0 && a.perMinute == 0) {
		return func() {}, ""
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.hosts.get(key, now)
	if h == nil {
		if h = a.hosts.add(key, now); h == nil {
			return nil, TooManyAddresses
		}
		if a.perMinute > 0 {
			h.bucket = NewBucket(float64(a.perMinute)/60, a.perMinute, now)
		}
	}
	if a.maxConns > 0 && h.conns >= a.maxConns {
		return nil, TooManyConnections
	}
	if h.bucket != nil && h.bucket.Take(now) > 0 {
		h.bucket.tokens++ // a refused attempt does not cost a future one
		return nil, TooManyNew
	}
	h.conns++
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			h.conns--
			a.hosts.forgetIdle(key, h, a.now())
		})
	}, ""
}

// Tracked returns how many addresses the limiter remembers now.
func (a *Addresses) Tracked() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.hosts.m)
}

// Events limits how often one address may do something (create a room,
// say): a burst, then a steady rate. Like Addresses it counts IPv6 per
// /64 and remembers at most a bounded number of addresses.
type Events struct {
	rate           float64
	burst          int
	exemptLoopback bool

	mu    sync.Mutex
	hosts table
	now   func() time.Time
}

// NewEvents returns a limiter allowing burst events at once and rate a
// second after that, per address; maxTracked bounds the addresses
// remembered (0: DefaultMaxTracked). A zero burst disables it.
func NewEvents(rate float64, burst, maxTracked int, exemptLoopback bool) *Events {
	if maxTracked <= 0 {
		maxTracked = DefaultMaxTracked
	}
	return &Events{rate: rate, burst: burst, exemptLoopback: exemptLoopback, hosts: newTable(maxTracked), now: time.Now}
}

// Allow spends one of remote's events and reports whether it had one.
// A refused event costs nothing. An address that cannot be parsed is
// allowed (there is nothing to count it by).
func (e *Events) Allow(remote string) bool {
	if e == nil || e.burst <= 0 {
		return true
	}
	ip, key, ok := prefix(remote)
	if !ok || (e.exemptLoopback && ip.IsLoopback()) {
		return true
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.hosts.get(key, now)
	if h == nil {
		// The table never refuses here: nothing holds an entry of
		// Events open, so there is always one to forget.
		h = e.hosts.add(key, now)
		h.bucket = NewBucket(e.rate, e.burst, now)
	}
	if h.bucket.Take(now) > 0 {
		h.bucket.tokens++
		return false
	}
	return true
}

// Refund gives back an event Allow spent for something that did not
// happen after all.
func (e *Events) Refund(remote string) {
	if e == nil || e.burst <= 0 {
		return
	}
	_, key, ok := prefix(remote)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if h := e.hosts.m[key]; h != nil && h.bucket.tokens < h.bucket.burst {
		h.bucket.tokens++
	}
}

// Tracked returns how many addresses the limiter remembers now.
func (e *Events) Tracked() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.hosts.m)
}

type host struct {
	conns  int
	bucket *Bucket
}

// full reports whether h would be forgotten as idle at now: no
// connections, and its bucket (if any) refilled.
func (h *host) full(now time.Time) bool {
	return h.conns == 0 && h.tokens(now) >= h.burst()
}

// tokens returns what h's bucket holds at now (without spending).
func (h *host) tokens(now time.Time) float64 {
	if h.bucket == nil {
		return 0
	}
	b := h.bucket
	return min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
}

func (h *host) burst() float64 {
	if h.bucket == nil {
		return 0
	}
	return h.bucket.burst
}

// table is a bounded map of hosts. When it is full, a new address takes
// the place of an idle host (no connection open) found among a sample of
// evictSample hosts: the one whose bucket holds the most tokens, so the
// host forgotten is the one that has used least of its allowance lately.
// An address that has spent its allowance is forgotten last: to reset it
// by forgetting, an attacker must make the table forget every host of
// the sample that holds more, which takes a full table of fresh
// addresses each time (and a new address starts with no more than the
// allowance it would have had anyway). Hosts with connections are never
// forgotten: they hold a count that must come back to zero.
type table struct {
	max int
	m   map[netip.Prefix]*host
}

// evictSample bounds the hosts looked at to find one to forget, so that a
// full table costs a new address a bounded time under the lock.
const evictSample = 64

func newTable(max int) table { return table{max: max, m: map[netip.Prefix]*host{}} }

func (t *table) get(key netip.Prefix, _ time.Time) *host { return t.m[key] }

// add makes a host for key, forgetting another if the table is full. It
// returns nil if it is full of hosts with connections.
func (t *table) add(key netip.Prefix, now time.Time) *host {
	if len(t.m) >= t.max {
		var victim netip.Prefix
		var best *host
		seen := 0
		for k, h := range t.m { // Go starts map iteration at a random place
			if seen++; seen > evictSample {
				break
			}
			if h.conns > 0 {
				continue
			}
			if best == nil || h.tokens(now)/max(h.burst(), 1) > best.tokens(now)/max(best.burst(), 1) {
				victim, best = k, h
			}
		}
		if best == nil {
			return nil
		}
		delete(t.m, victim)
	}
	h := &host{}
	t.m[key] = h
	return h
}

// forgetIdle drops a host with no connections whose bucket is full, so
// the map does not grow with every address ever seen.
func (t *table) forgetIdle(key netip.Prefix, h *host, now time.Time) {
	if h.full(now) && t.m[key] == h {
		delete(t.m, key)
	}
}

// prefix returns the address of remote and the unit it is counted in:
// the IPv4 address, or the IPv6 /64.
func prefix(remote string) (netip.Addr, netip.Prefix, bool) {
	hostPart := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		hostPart = h
	}
	ip, err := netip.ParseAddr(hostPart)
	if err != nil {
		return netip.Addr{}, netip.Prefix{}, false
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return ip, p, true
}
