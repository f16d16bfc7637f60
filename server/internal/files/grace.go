package files

import (
	"sync"
	"time"
)

// Grace keeps content that no message refers to any more for a period
// before a store's Collect removes it: a backup of the running server
// copies the database (or the cluster's messages) first and the content
// after, and must still find the content of the messages its snapshot
// holds. A content's period counts from the first Collect that found it
// unreferenced; one referenced again starts over. It is per process:
// each cluster node keeps its own, so a node removes content only after
// it has itself seen it unreferenced for the period.
type Grace struct {
	period time.Duration // ≤ 0: none

	mu    sync.Mutex // Collect may run twice at once
	first map[string]time.Time
}

// NewGrace returns a grace of period; 0 or less means none.
func NewGrace(period time.Duration) *Grace {
	return &Grace{period: period, first: map[string]time.Time{}}
}

// Ripe returns the candidates (the content ids a Collect found
// unreferenced, at now) that were unreferenced already at an earlier
// Collect at least the period ago. It remembers when the others were
// first found so and forgets the content not among the candidates (it
// is referenced again, or gone). It holds at most one entry per
// candidate of the last Collect.
func (g *Grace) Ripe(candidates []string, now time.Time) []string {
	if g.period <= 0 {
		return candidates
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := make(map[string]time.Time, len(candidates))
	var ripe []string
	for _, id := range candidates {
		first, ok := g.first[id]
		if !ok {
			first = now
		}
		if now.Sub(first) >= g.period {
			ripe = append(ripe, id)
			continue
		}
		seen[id] = first
	}
	g.first = seen
	return ripe
}
