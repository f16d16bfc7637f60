// Package limit holds the server's abuse limits: a token bucket for the
// message rate of a connection and a per-address limiter for connections.
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
)

// Addresses limits connections per client address: how many at once and
// how many new ones per minute. IPv6 addresses count per /64, the block a
// single subscriber usually gets.
type Addresses struct {
	maxConns       int
	perMinute      int
	exemptLoopback bool

	mu    sync.Mutex
	hosts map[netip.Prefix]*host
	now   func() time.Time
}

type host struct {
	conns  int
	bucket *Bucket
}

// NewAddresses returns a limiter; zero maxConns or perMinute disables
// that limit. Loopback clients are exempt when exemptLoopback is set (a
// reverse proxy on the same machine connects from loopback for everyone).
func NewAddresses(maxConns, perMinute int, exemptLoopback bool) *Addresses {
	return &Addresses{maxConns: maxConns, perMinute: perMinute, exemptLoopback: exemptLoopback,
		hosts: map[netip.Prefix]*host{}, now: time.Now}
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
	h := a.hosts[key]
	if h == nil {
		h = &host{}
		if a.perMinute > 0 {
			h.bucket = NewBucket(float64(a.perMinute)/60, a.perMinute, now)
		}
		a.hosts[key] = h
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
			a.forgetIdle(key, h)
		})
	}, ""
}

// forgetIdle drops a host with no connections whose bucket is full, so
// the map does not grow with every address ever seen.
func (a *Addresses) forgetIdle(key netip.Prefix, h *host) {
	if h.conns > 0 {
		return
	}
	if h.bucket != nil {
		h.bucket.Take(a.now()) // refill
		h.bucket.tokens++
		if h.bucket.tokens < h.bucket.burst {
			return // still recovering: keep counting
		}
	}
	delete(a.hosts, key)
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
