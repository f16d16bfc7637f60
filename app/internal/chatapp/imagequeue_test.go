package chatapp

import (
	"slices"
	"testing"
	"time"
)

// TestImageQueueNewestFirst: with its one worker busy, the loads asked
// for meanwhile run newest first, and never more than max at once.
func TestImageQueueNewestFirst(t *testing.T) {
	q := &imageQueue{max: 1}
	release := make(chan struct{})
	ran := make(chan string, 8)
	busy := make(chan struct{})
	q.push(func() { close(busy); <-release; ran <- "first" })
	<-busy
	for _, name := range []string{"a", "b", "c"} {
		q.push(func() { ran <- name })
	}
	close(release)
	var order []string
	for range 4 {
		select {
		case name := <-ran:
			order = append(order, name)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %v ran", order)
		}
	}
	if want := []string{"first", "c", "b", "a"}; !slices.Equal(order, want) {
		t.Fatalf("ran %v, want %v", order, want)
	}
}

// TestImageQueueBoundsWorkers: max jobs run at once, not more.
func TestImageQueueBoundsWorkers(t *testing.T) {
	q := &imageQueue{max: 2}
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	for range 5 {
		q.push(func() { started <- struct{}{}; <-release })
	}
	for range 2 {
		<-started
	}
	q.mu.Lock()
	running, pending := q.running, len(q.pending)
	q.mu.Unlock()
	if running != 2 || pending != 3 {
		t.Fatalf("%d running and %d pending, want 2 and 3", running, pending)
	}
	close(release)
	for range 3 {
		<-started
	}
}
