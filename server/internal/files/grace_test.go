package files

import (
	"slices"
	"testing"
	"time"
)

// TestGraceRipensAfterThePeriod: content is ripe only once found
// unreferenced at Collects at least the period apart; content referenced
// again in between starts over; no period means everything is ripe.
func TestGraceRipensAfterThePeriod(t *testing.T) {
	g := NewGrace(10 * time.Minute)
	t0 := time.Unix(1_700_000_000, 0)
	if got := g.Ripe([]string{"a", "b"}, t0); len(got) != 0 {
		t.Fatalf("ripe at first sight: %v", got)
	}
	if got := g.Ripe([]string{"a"}, t0.Add(5*time.Minute)); len(got) != 0 { // b referenced again
		t.Fatalf("ripe within the period: %v", got)
	}
	if got := g.Ripe([]string{"a", "b"}, t0.Add(10*time.Minute)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("ripe after the period: %v, want [a] (b started over)", got)
	}
	if got := g.Ripe([]string{"b"}, t0.Add(20*time.Minute)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("ripe: %v, want [b]", got)
	}
	if len(g.first) != 0 {
		t.Fatalf("%d entries kept, want none", len(g.first))
	}
	if got := NewGrace(0).Ripe([]string{"x"}, t0); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("no grace: %v", got)
	}
}
