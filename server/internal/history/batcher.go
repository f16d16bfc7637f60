package history

import (
	"context"
	"sync"
)

// Batcher runs group commit for a Log: requests queue up while the
// previous batch is being committed and are then committed together, so a
// busy server makes one durable write for many messages and an idle one
// commits a lone message at once, without waiting for a timer.
type Batcher struct {
	queue   chan item
	commit  func([]*Request) []Result
	sink    Sink
	maxSize int

	closeOnce sync.Once
	mu        sync.RWMutex // held for reading while enqueuing, for writing to close
	closed    bool
	done      chan struct{}
}

// item is a request or, with flushed set, a barrier for Flush.
type item struct {
	req     *Request
	flushed chan struct{}
}

// NewBatcher starts the commit loop. commit stores a batch and returns one
// result per request, in order; it runs on a single goroutine.
func NewBatcher(queueLen, maxBatch int, commit func([]*Request) []Result, sink Sink) *Batcher {
	b := &Batcher{
		queue:   make(chan item, queueLen),
		commit:  commit,
		sink:    sink,
		maxSize: maxBatch,
		done:    make(chan struct{}),
	}
	go b.loop()
	return b
}

// Append queues r, blocking while the queue is full.
func (b *Batcher) Append(r *Request) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	b.queue <- item{req: r}
	return nil
}

// Flush waits until everything queued before it has reached the sink.
func (b *Batcher) Flush(ctx context.Context) error {
	flushed := make(chan struct{})
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		<-b.done
		return nil
	}
	b.queue <- item{flushed: flushed}
	b.mu.RUnlock()
	select {
	case <-flushed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close commits what is queued and stops the loop.
func (b *Batcher) Close() {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		close(b.queue)
		b.mu.Unlock()
	})
	<-b.done
}

func (b *Batcher) loop() {
	defer close(b.done)
	batch := make([]*Request, 0, b.maxSize)
	var barriers []chan struct{}
	for first := range b.queue {
		batch, barriers = batch[:0], barriers[:0]
		add := func(it item) {
			if it.flushed != nil {
				barriers = append(barriers, it.flushed)
			} else {
				batch = append(batch, it.req)
			}
		}
		add(first)
	drain:
		for len(batch) < b.maxSize {
			select {
			case it, ok := <-b.queue:
				if !ok {
					break drain
				}
				add(it)
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			b.sink(b.commit(batch))
		}
		for _, c := range barriers {
			close(c)
		}
	}
}
