package chatapp

import "sync"

// imageQueue runs picture loads on at most max goroutines, the newest
// request first. The list asks for the pictures that come into view;
// when someone scrolls through a room of pictures the ones on the screen
// now matter, not those asked for on the way and scrolled past, so the
// queue is a stack. It holds a small closure per picture asked for and
// not yet loaded; the list asks once per picture it draws, so a long
// scroll through pictures queues them all, and each is fetched in turn
// (as before, when each waited in a goroutine of its own).
type imageQueue struct {
	mu      sync.Mutex
	pending []func()
	running int
	max     int
}

// push queues job, starting a worker if fewer than max run.
func (q *imageQueue) push(job func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, job)
	if q.running < q.max {
		q.running++
		go q.work()
	}
}

// work runs the newest pending job until none is left.
func (q *imageQueue) work() {
	for {
		q.mu.Lock()
		n := len(q.pending)
		if n == 0 {
			q.running--
			q.mu.Unlock()
			return
		}
		job := q.pending[n-1]
		q.pending[n-1] = nil
		q.pending = q.pending[:n-1]
		q.mu.Unlock()
		job()
	}
}
