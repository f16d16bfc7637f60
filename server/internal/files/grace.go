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
// unreferenced, and starts over when it may have been referenced since:
// a message carrying it was sent after that Collect (the message may
// have been deleted again before the next one), or it was stored again
// (a new Version). It is per process: each cluster node keeps its own,
// so a node removes content only after it has itself seen it
// unreferenced for the period.
type Grace struct {
	period time.Duration // ≤ 0: none

	mu    sync.Mutex // Collect may run twice at once
	first map[string]graceEntry
}

type graceEntry struct {
	since   time.Time
	version uint64
}

// Unreferenced is content a Collect found that no message and no hold
// refers to.
type Unreferenced struct {
	ID string
	// Sent is the last time a message carrying it was sent, as far as
	// the store knows (zero: not known). Stores know it for as long as
	// a hold lasts, which is longer than any grace period.
	Sent time.Time
	// Version tells this storing of the content from an earlier one
	// (the cluster's registration revision; 0 where the store does not
	// tell them apart).
	Version uint64
}

// NewGrace returns a grace of period; 0 or less means none.
func NewGrace(period time.Duration) *Grace {
	return &Grace{period: period, first: map[string]graceEntry{}}
}

// Ripe returns the ids of the candidates (the content a Collect found
// unreferenced at now) whose period has passed. It remembers since when
// the others are unreferenced and forgets the content not among the
// candidates (referenced again, or gone): it holds at most one entry per
// candidate of the last Collect.
func (g *Grace) Ripe(candidates []Unreferenced, now time.Time) []string {
	var ripe []string
	if g.period <= 0 {
		for _, c := range candidates {
			ripe = append(ripe, c.ID)
		}
		return ripe
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := make(map[string]graceEntry, len(candidates))
	for _, c := range candidates {
		e, ok := g.first[c.ID]
		// Sent is in milliseconds: a send within the millisecond of
		// since may have come after it.
		if !ok || e.version != c.Version || !c.Sent.Before(e.since.Truncate(time.Millisecond)) {
			e = graceEntry{since: now, version: c.Version}
		}
		if now.Sub(e.since) >= g.period {
			ripe = append(ripe, c.ID)
			continue
		}
		seen[c.ID] = e
	}
	g.first = seen
	return ripe
}
