package limit

import (
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
	if n := len(a.hosts); n > 1 {
		t.Fatalf("%d hosts remembered with no connections", n)
	}
}
