package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
)

// indexEntry is the value of a chat-rooms key (and of a chat-dms key, so
// that listing a name's direct-message rooms needs no second read per
// room): the room's last sequence number and the time of that message.
type indexEntry struct {
	Room string `json:"room"`
	Head uint64 `json:"head"`
	Time uint64 `json:"time"` // Unix milliseconds
}

// maxIndexPending bounds the rooms waiting for their index write. Past
// it stored waits for the worker, which takes them all at once: a wait
// of one round of writes, and only when that many rooms got messages
// faster than the indexes keep up.
const maxIndexPending = 1 << 16

// maxCASTries bounds a compare-and-set loop. Each conflict means another
// writer succeeded, so the loop only runs out under pathological
// contention on one key (or a leader election of several seconds: the
// pauses between tries add up to about five); it then fails rather
// than spin.
const maxCASTries = 100

// indexer records room activity in chat-rooms and chat-dms after a node
// stores messages, coalesced per room, off the publishing path.
type indexer struct {
	c *Conn

	mu      sync.Mutex
	pending map[string]indexEntry // latest head of each room not yet written
	queued  uint64                // stored calls so far
	written uint64                // stored calls whose entries are written
	changed chan struct{}         // closed (and replaced) when written moves or space frees
	wake    chan struct{}         // tells the worker there is work (capacity 1)
	closed  bool
	stop    context.CancelFunc // cancels the worker's writes at close
	done    chan struct{}      // closed when the worker returns

	list roomList // local replica of chat-rooms for Active
}

func newIndexer(c *Conn) *indexer {
	ctx, cancel := context.WithCancel(context.Background())
	x := &indexer{c: c, pending: map[string]indexEntry{}, changed: make(chan struct{}),
		wake: make(chan struct{}, 1), stop: cancel, done: make(chan struct{})}
	x.list.init(c, ctx)
	go x.run(ctx)
	return x
}

// broadcast wakes every waiter on x.changed. x.mu is held.
func (x *indexer) broadcast() {
	close(x.changed)
	x.changed = make(chan struct{})
}

// stored is told of each message this node stored (not duplicates). It
// never blocks for long: only while maxIndexPending rooms wait, until
// the worker takes them (at most its pause after failed writes, the
// publish timeout).
func (x *indexer) stored(m *protocol.Msg) {
	x.mu.Lock()
	for !x.closed {
		if e, ok := x.pending[m.Room]; ok || len(x.pending) < maxIndexPending {
			if m.Seq > e.Head {
				x.pending[m.Room] = indexEntry{Room: m.Room, Head: m.Seq, Time: m.Time}
			}
			break
		}
		ch := x.changed
		x.mu.Unlock()
		<-ch
		x.mu.Lock()
	}
	if x.closed {
		x.mu.Unlock()
		return
	}
	x.queued++
	x.mu.Unlock()
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// flush returns once every message given to stored before it is in the
// indexes.
func (x *indexer) flush(ctx context.Context) error {
	x.mu.Lock()
	target := x.queued
	for x.written < target {
		if x.closed {
			x.mu.Unlock()
			return errors.New("cluster: index writer closed")
		}
		ch := x.changed
		x.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		x.mu.Lock()
	}
	x.mu.Unlock()
	return nil
}

// close stops the indexer after flushing what it holds, waiting for that
// at most the publish timeout (NATS may be gone).
func (x *indexer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), x.c.opts.PublishTimeout)
	_ = x.flush(ctx)
	cancel()
	x.mu.Lock()
	if !x.closed {
		x.closed = true
		x.broadcast()
	}
	x.mu.Unlock()
	x.stop()
	<-x.done
	x.list.wait()
}

// run is the worker: it takes every pending room at once and writes
// them; a room that failed goes back unless a newer head replaced it,
// and is retried after a pause.
func (x *indexer) run(ctx context.Context) {
	defer close(x.done)
	backoff := 50 * time.Millisecond
	for {
		x.mu.Lock()
		var batch map[string]indexEntry
		upto := x.queued
		if len(x.pending) > 0 {
			batch = x.pending
			x.pending = map[string]indexEntry{}
			x.broadcast() // space freed
		}
		x.mu.Unlock()
		if batch == nil {
			// stored adds to pending before it wakes: a wake-up that
			// comes after the look above is not lost.
			select {
			case <-x.wake:
				continue
			case <-ctx.Done():
				return
			}
		}

		// Rooms are independent keys: write them side by side, a bounded
		// number at once, so one round trip per room is not paid in turn.
		entries := make([]indexEntry, 0, len(batch))
		for _, e := range batch {
			entries = append(entries, e)
		}
		errs := make([]error, len(entries))
		_ = eachParallel(len(entries), func(i int) error {
			errs[i] = x.write(ctx, entries[i])
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		var failed []indexEntry
		for i, err := range errs {
			if err != nil {
				x.c.opts.Logger.Warn("cluster: index write failed; retrying", "room", entries[i].Room, "err", err)
				failed = append(failed, entries[i])
			}
		}
		x.mu.Lock()
		for _, e := range failed {
			if cur, ok := x.pending[e.Room]; !ok || cur.Head < e.Head {
				x.pending[e.Room] = e
			}
		}
		if len(failed) == 0 {
			x.written = upto
			x.broadcast()
			backoff = 50 * time.Millisecond
		}
		x.mu.Unlock()
		if len(failed) > 0 {
			// NATS is unavailable or overloaded: pause, growing up to
			// the publish timeout, instead of hammering it.
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, x.c.opts.PublishTimeout)
		}
	}
}

// write puts e in chat-rooms and, for a direct-message room, under both
// names in chat-dms. Both only move forward: another node may have
// written a newer head meanwhile, which an older one must not replace.
func (x *indexer) write(ctx context.Context, e indexEntry) error {
	ctx, cancel := context.WithTimeout(ctx, x.c.opts.PublishTimeout)
	defer cancel()
	val, err := json.Marshal(e)
	if err != nil {
		return err
	}
	forward := func(cur []byte) ([]byte, bool, error) {
		if cur != nil {
			var old indexEntry
			if json.Unmarshal(cur, &old) == nil && (old.Head > e.Head || old.Head == e.Head && old.Time >= e.Time) {
				return nil, false, nil
			}
		}
		return val, true, nil
	}
	if _, err := x.c.kvCAS(ctx, x.c.rooms, Token(e.Room), forward); err != nil {
		return fmt.Errorf("chat-rooms: %w", err)
	}
	for _, name := range dmNames(e.Room) {
		if _, err := x.c.kvCAS(ctx, x.c.dms, Token(name)+"."+Token(e.Room), forward); err != nil {
			return fmt.Errorf("chat-dms: %w", err)
		}
	}
	return nil
}

// dmNames returns the keys of the two names of a direct-message room
// (one for a room with oneself), nil for any other room. Only a room by
// its canonical name is anybody's: as in package sqlite, a room stored
// under another spelling (before direct messages existed) is nobody's.
func dmNames(room string) []string {
	a, b, ok := protocol.ParseDM(room)
	switch {
	case !ok || room != protocol.DMPrefix+a+protocol.DMPrefix+b:
		return nil
	case a == b:
		return []string{a}
	}
	return []string{a, b}
}

// kvCAS reads key and writes f's answer to what it holds (nil: absent)
// with Create or Update on the revision read, retrying when another
// writer came in between. f's write false leaves the key as it is; a
// nil next with write true deletes it. It reports whether it wrote.
//
// It reads from the stream's leader (leaderGet): a direct get may be
// answered by a replica that is behind, and a decision not to write
// (a marker already further, a name already claimed) must rest on the
// latest value. Even the leader may not hold yet what refused a write (a
// proposal not yet applied), or that may fail after all: the loop then
// tries again, after a pause growing by the millisecond.
func (c *Conn) kvCAS(ctx context.Context, kv jetstream.KeyValue, key string, f func(cur []byte) (next []byte, write bool, err error)) (bool, error) {
	for try := range maxCASTries {
		if try > 1 {
			select {
			case <-time.After(time.Duration(try-1) * time.Millisecond):
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
		cur, rev, err := c.leaderGet(ctx, kv, key)
		if err != nil {
			return false, err
		}
		if rev != 0 && cur == nil {
			cur = []byte{} // present but empty, unlike absent
		}
		next, write, err := f(cur)
		if err != nil || !write {
			return false, err
		}
		switch {
		case next == nil && rev == 0:
			return false, nil // delete what is not there
		case next == nil:
			err = kv.Delete(ctx, key, jetstream.LastRevision(rev))
		case rev == 0:
			_, err = kv.Create(ctx, key, next)
		default:
			_, err = kv.Update(ctx, key, next, rev)
		}
		if err == nil {
			return true, nil
		}
		// A conflict: read again. No stream answering: its replicas are
		// electing a leader (the client has waited half a second
		// already); try again while the loop lasts.
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) &&
			!errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
			return false, err
		}
	}
	return false, fmt.Errorf("cluster: key %s: still contended after %d tries", key, maxCASTries)
}

// leaderGet reads key of kv from its stream's leader: the latest value,
// whatever replica answered a write. rev is 0 when the key is absent or
// deleted.
func (c *Conn) leaderGet(ctx context.Context, kv jetstream.KeyValue, key string) (val []byte, rev uint64, err error) {
	m, err := c.leaderMsg(ctx, "KV_"+kv.Bucket(), getReq{LastBySubj: "$KV." + kv.Bucket() + "." + key})
	if err != nil || m == nil {
		return nil, 0, err
	}
	// A key removed by its TTL leaves a marker with a reason instead.
	if bytes.Contains(m.Header, []byte("KV-Operation: DEL")) || bytes.Contains(m.Header, []byte("KV-Operation: PURGE")) ||
		bytes.Contains(m.Header, []byte("Nats-Marker-Reason")) {
		return nil, 0, nil
	}
	return m.Data, m.Seq, nil
}

// leaderMsg gets a message of stream from the stream's leader
// (STREAM.MSG.GET, not a direct get, which any replica answers: it may
// be behind, and right after the stream is created none may answer). It
// returns nil if there is no such message.
func (c *Conn) leaderMsg(ctx context.Context, stream string, req getReq) (*storedMsg, error) {
	m, err := c.getMsgFrom(ctx, stream, req)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	return m, err
}

// roomList is a node's replica of chat-rooms, without direct-message
// rooms, for Active: the bucket has no order, and reading all of it for
// every LIST would cost every room each time. A watcher keeps it, started
// by the first Active.
type roomList struct {
	c   *Conn
	ctx context.Context // cancelled at close

	mu      sync.Mutex
	started bool
	rooms   map[string]indexEntry
	applied uint64        // revision (bucket stream sequence) applied last
	changed chan struct{} // closed (and replaced) when applied moves
	done    chan struct{} // closed when the watcher goroutine returns
}

func (l *roomList) init(c *Conn, ctx context.Context) {
	l.c, l.ctx = c, ctx
	l.rooms = map[string]indexEntry{}
	l.changed = make(chan struct{})
}

// wait waits for the watcher goroutine, if any, after the context ended.
func (l *roomList) wait() {
	l.mu.Lock()
	done := l.done
	l.mu.Unlock()
	if done != nil {
		<-done
	}
}

// current returns the replica once it holds everything written to
// chat-rooms before the call (read-your-writes across nodes).
func (l *roomList) current(ctx context.Context) ([]indexEntry, error) {
	// The watcher catches up within moments; if it does not (NATS lost),
	// the caller gets an error, not a wait without end.
	ctx, cancel := context.WithTimeout(ctx, l.c.opts.PublishTimeout)
	defer cancel()
	l.mu.Lock()
	if !l.started {
		w, err := l.c.rooms.WatchAll(l.ctx)
		if err != nil {
			l.mu.Unlock()
			return nil, fmt.Errorf("cluster: watching chat-rooms: %w", err)
		}
		l.started = true
		l.done = make(chan struct{})
		go l.watch(w)
	}
	l.mu.Unlock()
	st, err := l.c.rooms.Status(ctx)
	if err != nil {
		return nil, err
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return nil, fmt.Errorf("cluster: chat-rooms status of type %T", st)
	}
	// The bucket's last message is the newest of its key, so the watcher
	// delivers it, unless the bucket was purged: then there is nothing
	// to wait for, until the next write.
	last := bs.StreamInfo().State.LastSeq
	if bs.StreamInfo().State.Msgs == 0 {
		last = 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.applied < last {
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			l.mu.Lock()
			return nil, ctx.Err()
		case <-l.ctx.Done():
			l.mu.Lock()
			return nil, errors.New("cluster: closed")
		}
		l.mu.Lock()
	}
	out := make([]indexEntry, 0, len(l.rooms))
	for _, e := range l.rooms {
		out = append(out, e)
	}
	return out, nil
}

func (l *roomList) watch(w jetstream.KeyWatcher) {
	defer close(l.done)
	defer stopWatch(w)
	for {
		select {
		case <-l.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil { // the initial values are all in
				continue
			}
			l.apply(e)
		}
	}
}

func (l *roomList) apply(e jetstream.KeyValueEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	room, err := FromToken(e.Key())
	if err == nil && !strings.HasPrefix(room, protocol.DMPrefix) {
		var v indexEntry
		if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &v) == nil && v.Head > 0 {
			l.rooms[room] = v
		} else {
			delete(l.rooms, room)
		}
	}
	if e.Revision() > l.applied {
		l.applied = e.Revision()
		close(l.changed)
		l.changed = make(chan struct{})
	}
}

// newestFirst orders entries by last activity, newest first, then by
// room name descending (the order of sqlite.Inbox and inbox.Memory).
func newestFirst(a, b indexEntry) int {
	if a.Time != b.Time {
		if a.Time > b.Time {
			return -1
		}
		return 1
	}
	return strings.Compare(b.Room, a.Room)
}
