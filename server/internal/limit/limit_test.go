package limit

import (
	"fmt"
	"testing"
	"time"
)

func TestBucketAllowsBurstThenRate(t *testing.T) {
	start := time.Unix(1000, 0)
	b := NewBucket(5, 3, start)
	for i := range 3 {
		if w := b.Take(start); w != 0 {
			t.Fatalf("burst message %d waits %v", i, w)
		}
	}
	if w := b.Take(start); w != 200*time.Millisecond {
		t.Fatalf("first over the burst waits %v, want 200ms", w)
	}
	if w := b.Take(start.Add(200 * time.Millisecond)); w != 200*time.Millisecond {
		t.Fatalf("next waits %v", w)
	}
	if w := b.Take(start.Add(10 * time.Second)); w != 0 {
		t.Fatalf("after a pause: waits %v", w)
	}
}

func TestAddressesLimitConcurrentAndNew(t *testing.T) {
	clock := time.Unix(1000, 0)
	a := NewAddresses(2, 3, true)
	a.now = func() time.Time { return clock }

	r1, why := a.Acquire("203.0.113.5:4000")
	r2, _ := a.Acquire("203.0.113.5:4001")
	if r1 == nil || r2 == nil || why != "" {
		t.Fatal("first two refused")
	}
	if _, why := a.Acquire("203.0.113.5:4002"); why != TooManyConnections {
		t.Fatalf("third concurrent: %q", why)
	}
	if r, _ := a.Acquire("198.51.100.7:1"); r == nil {
		t.Fatal("another address was limited too")
	}
	r1()
	r1()                                   // releasing twice is harmless
	r3, _ := a.Acquire("203.0.113.5:4003") // the third new one this minute
	if r3 == nil {
		t.Fatal("refused after a release")
	}
	r3()
	if _, why := a.Acquire("203.0.113.5:4004"); why != TooManyNew {
		t.Fatalf("fourth new in a minute: %q", why)
	}
	clock = clock.Add(time.Minute)
	if r, _ := a.Acquire("203.0.113.5:4005"); r == nil {
		t.Fatal("still refused a minute later")
	}
}

func TestAddressesCountIPv6PerSlash64AndExemptLoopback(t *testing.T) {
	a := NewAddresses(1, 0, true)
	if r, _ := a.Acquire("[2001:db8:1:2::1]:5"); r == nil {
		t.Fatal("first refused")
	}
	if _, why := a.Acquire("[2001:db8:1:2:ffff::9]:5"); why != TooManyConnections {
		t.Fatal("the same /64 was not counted together")
	}
	if r, _ := a.Acquire("[2001:db8:1:3::1]:5"); r == nil {
		t.Fatal("another /64 was limited")
	}
	for range 5 {
		if r, _ := a.Acquire("127.0.0.1:9"); r == nil {
			t.Fatal("loopback limited although exempt")
		}
		if r, _ := a.Acquire("[::1]:9"); r == nil {
			t.Fatal("::1 limited although exempt")
		}
	}
	strict := NewAddresses(1, 0, false)
	strict.Acquire("127.0.0.1:9")
	if _, why := strict.Acquire("127.0.0.1:10"); why != TooManyConnections {
		t.Fatal("loopback not limited without the exemption")
	}
}

func TestIdleHostsAreForgotten(t *testing.T) {
	clock := time.Unix(1000, 0)
	a := NewAddresses(5, 10, false)
	a.now = func() time.Time { return clock }
	for i := range 100 {
		r, _ := a.Acquire("192.0.2." + string(rune('0'+i%10)) + ":1")
		if r != nil {
			clock = clock.Add(time.Minute) // buckets refill
			r()
		}
	}
	if n := len(a.hosts.m); n > 1 {
		t.Fatalf("%d hosts remembered with no connections", n)
	}
}

// TestTableIsBoundedAndKeepsSpentAddresses: short connections from more
// addresses than the table holds (rotating IPv6 /64s, say) never make it
// grow past its bound, and an address that spent its new-connection
// allowance is not forgotten for them: it stays limited.
func TestTableIsBoundedAndKeepsSpentAddresses(t *testing.T) {
	clock := time.Unix(1000, 0)
	a := NewAddresses(0, 3, false).WithMaxTracked(50)
	a.now = func() time.Time { return clock }
	attacker := "198.51.100.9:1"
	for range 3 {
		r, _ := a.Acquire(attacker)
		r()
	}
	if _, why := a.Acquire(attacker); why != TooManyNew {
		t.Fatalf("attacker after its burst: %q", why)
	}
	// Thousands of other addresses, each one short connection, a second
	// apart: far more than the table holds.
	for i := range 5000 {
		clock = clock.Add(time.Millisecond)
		addr := fmt.Sprintf("[2001:db8:%x:%x::1]:5", i/65536, i%65536)
		r, why := a.Acquire(addr)
		if r == nil {
			t.Fatalf("address %d refused: %q", i, why)
		}
		r()
		if n := a.Tracked(); n > 50 {
			t.Fatalf("%d addresses tracked, bound 50", n)
		}
	}
	if _, why := a.Acquire(attacker); why != TooManyNew {
		t.Fatalf("attacker reset its limit by flooding the table: %q", why)
	}
}

// TestRotatingInsideA64CountsAsOne: every address of one /64 shares one
// entry and one allowance.
func TestRotatingInsideA64CountsAsOne(t *testing.T) {
	clock := time.Unix(1000, 0)
	a := NewAddresses(0, 5, false).WithMaxTracked(10)
	a.now = func() time.Time { return clock }
	for i := range 5 {
		r, why := a.Acquire(fmt.Sprintf("[2001:db8:7:7:%x::%x]:1", i, i*7+1))
		if r == nil {
			t.Fatalf("connection %d refused: %q", i, why)
		}
		r()
	}
	if _, why := a.Acquire("[2001:db8:7:7:ffff:1:2:3]:1"); why != TooManyNew {
		t.Fatalf("sixth address of the /64: %q", why)
	}
	if n := a.Tracked(); n != 1 {
		t.Fatalf("%d entries for one /64", n)
	}
}

// TestFullTableOfOpenConnections: hosts with open connections are never
// forgotten (their counts must come back to zero); a new address is
// turned away until one closes.
func TestFullTableOfOpenConnections(t *testing.T) {
	a := NewAddresses(5, 0, false).WithMaxTracked(3)
	var releases []func()
	for i := range 3 {
		r, why := a.Acquire(fmt.Sprintf("192.0.2.%d:1", i+1))
		if r == nil {
			t.Fatalf("address %d refused: %q", i, why)
		}
		releases = append(releases, r)
	}
	if _, why := a.Acquire("192.0.2.99:1"); why != TooManyAddresses {
		t.Fatalf("fourth address with a full table: %q", why)
	}
	releases[1]()
	if r, why := a.Acquire("192.0.2.99:1"); r == nil {
		t.Fatalf("refused after a host closed: %q", why)
	}
}

func TestEventsPerAddress(t *testing.T) {
	clock := time.Unix(1000, 0)
	e := NewEvents(1.0/60, 3, 20, true)
	e.now = func() time.Time { return clock }
	for i := range 3 {
		if !e.Allow("203.0.113.1:9") {
			t.Fatalf("event %d refused", i)
		}
	}
	if e.Allow("203.0.113.1:10") {
		t.Fatal("fourth event allowed")
	}
	if !e.Allow("203.0.113.2:9") {
		t.Fatal("another address refused")
	}
	e.Refund("203.0.113.1:9")
	if !e.Allow("203.0.113.1:9") || e.Allow("203.0.113.1:9") {
		t.Fatal("a refund is worth exactly one event")
	}
	clock = clock.Add(time.Minute)
	if !e.Allow("203.0.113.1:9") {
		t.Fatal("refused a minute later")
	}
	// Rotating addresses inside one IPv6 /64 share its allowance.
	for i := range 3 {
		if !e.Allow(fmt.Sprintf("[2001:db8:5:5::%x]:1", i+1)) {
			t.Fatalf("IPv6 event %d refused", i)
		}
	}
	if e.Allow("[2001:db8:5:5:abcd::99]:1") {
		t.Fatal("a fourth address of the same /64 was allowed")
	}
	if !e.Allow("[2001:db8:5:6::1]:1") {
		t.Fatal("the next /64 was refused")
	}
	for i := range 4 { // over the allowance of 3: loopback is exempt
		if !e.Allow("127.0.0.1:1") {
			t.Fatalf("loopback event %d refused although exempt", i)
		}
	}
	// Bounded, and the spent address survives a flood of others.
	for i := range 1000 {
		clock = clock.Add(time.Millisecond)
		e.Allow(fmt.Sprintf("10.%d.%d.1:1", i/256, i%256))
		if n := e.Tracked(); n > 20 {
			t.Fatalf("%d addresses tracked, bound 20", n)
		}
	}
	if e.Allow("203.0.113.1:9") {
		t.Fatal("a spent address was forgotten under a flood of others")
	}
}
