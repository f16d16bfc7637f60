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
	ids := func(ids ...string) []Unreferenced {
		var out []Unreferenced
		for _, id := range ids {
			out = append(out, Unreferenced{ID: id})
		}
		return out
	}
	if got := g.Ripe(ids("a", "b"), t0); len(got) != 0 {
		t.Fatalf("ripe at first sight: %v", got)
	}
	if got := g.Ripe(ids("a"), t0.Add(5*time.Minute)); len(got) != 0 { // b referenced again
		t.Fatalf("ripe within the period: %v", got)
	}
	if got := g.Ripe(ids("a", "b"), t0.Add(10*time.Minute)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("ripe after the period: %v, want [a] (b started over)", got)
	}
	if got := g.Ripe(ids("b"), t0.Add(20*time.Minute)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("ripe: %v, want [b]", got)
	}
	if len(g.first) != 0 {
		t.Fatalf("%d entries kept, want none", len(g.first))
	}
	if got := NewGrace(0).Ripe(ids("x"), t0); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("no grace: %v", got)
	}
}

// TestGraceStartsOverAfterASend: content sent in a message between two
// Collects (and deleted again before the second) was referenced
// meanwhile, until some time before the second: its period starts over
// there. So does content stored again (a new version).
func TestGraceStartsOverAfterASend(t *testing.T) {
	g := NewGrace(10 * time.Minute)
	t0 := time.Unix(1_700_000_000, 0)
	g.Ripe([]Unreferenced{{ID: "a"}, {ID: "b", Version: 1}}, t0)
	// a was sent at t0+5m and its message deleted before t0+11m.
	got := g.Ripe([]Unreferenced{{ID: "a", Sent: t0.Add(5 * time.Minute)}, {ID: "b", Version: 2}}, t0.Add(11*time.Minute))
	if len(got) != 0 {
		t.Fatalf("ripe at t0+11m: %v, want none (a was sent, b stored again)", got)
	}
	got = g.Ripe([]Unreferenced{{ID: "a", Sent: t0.Add(5 * time.Minute)}, {ID: "b", Version: 2}}, t0.Add(21*time.Minute))
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("ripe at t0+21m: %v, want [a b]", got)
	}
}
