package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
	"chat/server/internal/broker"
)

// Bounds of a Node, the defaults of NodeOptions.
const (
	// DefaultPublishQueue is how many publications a node holds, queued or
	// in flight, before Publish blocks (the hub's back-pressure).
	DefaultPublishQueue = 4096
	// DefaultMaxBatch is the most messages of one room sent as one atomic
	// batch. Each message takes two batch entries (itself and its
	// deduplication marker), and nats-server accepts at most 1000 entries
	// per batch by default, so it may not exceed 500.
	DefaultMaxBatch = 128
	// DefaultMaxBatches is how many atomic batches (of different rooms) a
	// node has in flight at once. nats-server accepts 50 per stream by
	// default, from all nodes together; a node's further rooms wait.
	DefaultMaxBatches = 8
	// deliveryQueue is how many deliveries (results, messages) wait for
	// the delivery goroutine before the NATS callbacks and room workers
	// that produce them block.
	deliveryQueue = 1024
	// maxHeads bounds the cache of room heads (last room seq and stream
	// seq); past it the cache starts afresh.
	maxHeads = 16384
)

// NodeOptions configure a Node.
type NodeOptions struct {
	// ID names the node in message headers, presence entries and
	// heartbeats; it must be unique in the cluster (default: random).
	ID string
	// PresenceTTL is how long a node's presence entries outlive its last
	// heartbeat (default broker.PresenceTTL); it heartbeats every third.
	PresenceTTL time.Duration
	// PublishQueue bounds the publications queued or in flight (default
	// DefaultPublishQueue).
	PublishQueue int
	// MaxBatch bounds the messages of one atomic batch (default
	// DefaultMaxBatch, at most 500).
	MaxBatch int
	// MaxBatches bounds the atomic batches in flight at once (default
	// DefaultMaxBatches).
	MaxBatches int
	// SearchDir is the directory of the node's search index (DESIGN.md,
	// "Search"), kept across restarts; "": a temporary directory, removed
	// at Close (the index is built again from the stream).
	SearchDir string
	// Files, if set, is the file store (Conn.Files) this node serves:
	// its references come from the node's index (DESIGN.md, "Files").
	Files  *FileStore
	Logger *slog.Logger // default: the Conn's
}

// Node is one chat node's broker.Broker on the cluster. It implements
// DESIGN.md: messages in stream CHAT published per room by atomic batch
// with compare-and-set, one ordered consumer for fan-out, presence in
// bucket chat-presence, notes on core NATS.
type Node struct {
	c    *Conn
	h    broker.Handler
	id   string
	opts NodeOptions
	log  *slog.Logger

	ctx    context.Context // cancelled by Close and Crash
	cancel context.CancelFunc
	closed atomic.Bool
	wg     sync.WaitGroup // the node's goroutines

	// Publishing (publish.go).
	slots      chan struct{} // one per publication queued or in flight
	batchSlots chan struct{} // one per atomic batch in flight
	pubMu      sync.Mutex
	queues     map[string]*roomQueue
	// failedTags are the Tags of publications that failed, with when
	// (see runRoom); under pubMu, pruned after failedTagTTL.
	failedTags map[any]time.Time
	headMu     sync.Mutex
	heads      map[string]head

	// Flush: publications whose results have not reached the Handler.
	flushMu     sync.Mutex
	outstanding int
	flushed     chan struct{} // closed when outstanding drops to 0

	// Delivery to the Handler, on one goroutine.
	deliveries chan delivery
	// releaseWake tells the delivery goroutine that subscriptions became
	// ready (pendingRelease, under dmu). Not a delivery on deliveries:
	// Subscribe runs with the hub's room locked, and the delivery
	// goroutine may be waiting for that lock (a full Handler queue), so
	// Subscribe must never block on it.
	releaseWake    chan struct{}
	pendingRelease map[string]bool
	dmu            sync.Mutex
	subs           map[string]*roomSub
	inflight       map[string]int // batches of this node in flight per room
	resulted       map[string]uint64
	held           map[string][]heldMsg

	// Flush also waits for the consumer to pass this node's last stored
	// message (storedSeq, a stream seq): seenSeq is the consumer's last
	// stream seq; seenWake, if set, is closed when seenSeq moves.
	storedSeq atomic.Uint64
	seenMu    sync.Mutex
	seenSeq   uint64
	seenWake  chan struct{}

	consumer jetstream.ConsumeContext
	noteSub  *nats.Subscription

	pres *presence

	search *searchIndex

	// onBatchError, if set (tests, before the first Publish), is told
	// the JetStream error code of each failed batch (0: no answer).
	onBatchError func(code int)
}

// roomSub is a subscribed room on this node.
type roomSub struct {
	count     int    // Subscribe calls not yet undone by Unsubscribe
	delivered uint64 // last seq handed to Messages
	// ready is set once Subscribe read the head: until then messages are
	// held, so none at or below the returned position is delivered.
	ready bool
}

type heldMsg struct {
	msg  protocol.Msg
	mine bool
}

// delivery is one item for the delivery goroutine: a room's results (with
// batchDone: one of this node's batches ended), or a stored message seen
// by the consumer.
type delivery struct {
	room      string
	results   []broker.Result
	batchDone bool
	msg       protocol.Msg
	mine      bool
	barrier   chan struct{} // closed once what came before is delivered
}

var _ broker.Broker = (*Node)(nil)

// Node starts a chat node on the cluster, delivering to h.
func (c *Conn) Node(h broker.Handler, opts NodeOptions) (*Node, error) {
	if opts.ID == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		opts.ID = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if opts.PresenceTTL <= 0 {
		opts.PresenceTTL = broker.PresenceTTL
	}
	if opts.PublishQueue <= 0 {
		opts.PublishQueue = DefaultPublishQueue
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	opts.MaxBatch = min(opts.MaxBatch, 500)
	if opts.MaxBatches <= 0 {
		opts.MaxBatches = DefaultMaxBatches
	}
	if opts.Logger == nil {
		opts.Logger = c.opts.Logger
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		c: c, h: h, id: opts.ID, opts: opts, log: opts.Logger.With("node", opts.ID),
		ctx: ctx, cancel: cancel,
		slots:          make(chan struct{}, opts.PublishQueue),
		batchSlots:     make(chan struct{}, opts.MaxBatches),
		queues:         map[string]*roomQueue{},
		failedTags:     map[any]time.Time{},
		heads:          map[string]head{},
		flushed:        make(chan struct{}),
		deliveries:     make(chan delivery, deliveryQueue),
		releaseWake:    make(chan struct{}, 1),
		pendingRelease: map[string]bool{},
		subs:           map[string]*roomSub{},
		inflight:       map[string]int{},
		resulted:       map[string]uint64{},
		held:           map[string][]heldMsg{},
	}
	if err := n.start(); err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

func (n *Node) start() error {
	startCtx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	defer cancel()
	// The consumer starts after the stream's current last message: from
	// now on, every stored message passes by this node.
	info, err := n.c.stream.Info(startCtx)
	if err != nil {
		return fmt.Errorf("cluster: stream %s: %w", StreamName, err)
	}
	cons, err := n.c.stream.OrderedConsumer(startCtx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{MsgSubject + ">"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    info.State.LastSeq + 1,
	})
	if err != nil {
		return fmt.Errorf("cluster: consumer: %w", err)
	}
	n.wg.Add(1)
	go n.deliver()
	n.consumer, err = cons.Consume(n.consumed)
	if err != nil {
		return fmt.Errorf("cluster: consumer: %w", err)
	}
	n.noteSub, err = n.c.nc.Subscribe(NoteSubject, n.noted)
	if err != nil {
		return fmt.Errorf("cluster: subscribing to notes: %w", err)
	}
	if n.search, err = n.c.openSearch(startCtx, n.opts.SearchDir); err != nil {
		return err
	}
	if n.opts.Files != nil {
		if err := n.opts.Files.attach(n); err != nil {
			return err
		}
	}
	n.pres = newPresence(n)
	return n.pres.start(startCtx)
}

// ID is the node's id.
func (n *Node) ID() string { return n.id }

// consumed runs on the consumer's goroutine for every stored message.
func (n *Node) consumed(m jetstream.Msg) {
	tok := strings.TrimPrefix(m.Subject(), MsgSubject)
	room, err := FromToken(tok)
	if err != nil {
		return
	}
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	defer n.seen(meta.Sequence.Stream)
	seq, _ := strconv.ParseUint(m.Headers().Get(HeaderSeq), 10, 64)
	if seq > 0 {
		n.noteHead(room, head{seq: seq, stream: meta.Sequence.Stream})
		n.c.seqs.add(room, seq, meta.Sequence.Stream)
	}
	n.dmu.Lock()
	_, subscribed := n.subs[room]
	n.dmu.Unlock()
	if !subscribed {
		return // the common case: decode only what is delivered
	}
	data := m.Data()
	if len(data) <= protocol.LengthSize {
		return
	}
	dec, err := protocol.Decode(data[protocol.LengthSize:])
	msg, ok := dec.(*protocol.Msg)
	if err != nil || !ok {
		n.log.Error("undecodable message in the stream", "subject", m.Subject(), "seq", meta.Sequence.Stream, "err", err)
		return
	}
	hdr := m.Headers()
	msg.Change = parseChange(hdr.Get(HeaderChange))
	if msg.Change != nil || len(hdr[HeaderRedacted]) > 0 {
		n.withState(room, msg)
	}
	n.push(delivery{room: room, msg: *msg, mine: hdr.Get(HeaderNode) == n.id})
}

// withState completes a change entry with its target's state, or replaces
// the copy without text of a changed message by its record, reading the
// record on the consumer goroutine (which waits meanwhile): a failed read
// (the leader moving, a timeout) is tried again within stateReadTimeout.
// If none succeeds, the State stays nil, logged once: the hub sends the
// UPDATE without it (it redacts its cached copy of a deleted target, and
// a client reading the target later has it) — DESIGN.md, "Changes".
func (n *Node) withState(room string, msg *protocol.Msg) {
	ctx, cancel := context.WithTimeout(n.ctx, min(n.c.opts.PublishTimeout, stateReadTimeout))
	defer cancel()
	target := msg.Seq
	if msg.Change != nil {
		target = msg.Change.Target
	}
	var st *protocol.Msg
	var err error
	for attempt := 0; ; attempt++ {
		if f := n.c.stateReadFault; f != nil {
			err = f()
		} else {
			err = nil
		}
		if err == nil {
			_, st, _, err = n.c.loadRecord(ctx, room, target)
		}
		if err == nil || pause(ctx, attempt) != nil {
			break
		}
	}
	if err != nil {
		n.log.Warn("cluster: reading a changed message's state failed; delivered without it", "room", room, "seq", target, "err", err)
		return
	}
	switch {
	case st == nil:
	case msg.Change != nil:
		msg.Change.State = st
	default:
		*msg = *st
	}
}

// stateReadTimeout bounds the consumer's reads of a changed message's
// record.
const stateReadTimeout = 2 * time.Second

// seen records that the consumer is past stream seq s.
func (n *Node) seen(s uint64) {
	n.seenMu.Lock()
	n.seenSeq = max(n.seenSeq, s)
	if n.seenWake != nil {
		close(n.seenWake)
		n.seenWake = nil
	}
	n.seenMu.Unlock()
}

// push hands d to the delivery goroutine (dropped once the node stops).
func (n *Node) push(d delivery) {
	select {
	case n.deliveries <- d:
	case <-n.ctx.Done():
	}
}

// deliver is the one goroutine calling Published and Messages. It holds
// back this node's own messages of a room until their results went out,
// so an ACK precedes the sender's copy; messages of the room behind them
// wait too, to keep the room's order.
func (n *Node) deliver() {
	defer n.wg.Done()
	var msgs []protocol.Msg
	flush := func() {
		if len(msgs) > 0 && !n.closed.Load() {
			n.h.Messages(msgs)
		}
		msgs = nil
	}
	for {
		var d delivery
		select {
		case <-n.ctx.Done():
			return
		case <-n.releaseWake:
			n.dmu.Lock()
			rooms := n.pendingRelease
			n.pendingRelease = map[string]bool{}
			n.dmu.Unlock()
			for room := range rooms {
				n.release(room)
			}
			continue
		case d = <-n.deliveries:
		}
		handle := func(d delivery) {
			if d.barrier != nil {
				flush()
				close(d.barrier)
				return
			}
			if d.batchDone {
				flush()
				n.results(d)
			} else {
				msgs = n.arrived(d, msgs)
			}
		}
		handle(d)
		// Gather what else is waiting into one Messages call.
	drain:
		for len(msgs) < deliveryQueue {
			select {
			case d = <-n.deliveries:
				handle(d)
			default:
				break drain
			}
		}
		flush()
	}
}

// arrived files a stored message: appended to out for delivery, held, or
// dropped (a room not subscribed, a message delivered already).
func (n *Node) arrived(d delivery, out []protocol.Msg) []protocol.Msg {
	n.dmu.Lock()
	defer n.dmu.Unlock()
	s := n.subs[d.room]
	if s == nil {
		return out
	}
	if !s.ready || len(n.held[d.room]) > 0 || (d.mine && n.inflight[d.room] > 0 && d.msg.Seq > n.resulted[d.room]) {
		n.held[d.room] = append(n.held[d.room], heldMsg{d.msg, d.mine})
		return out
	}
	return n.deliverableLocked(d.room, d.msg, out)
}

func (n *Node) deliverableLocked(room string, m protocol.Msg, out []protocol.Msg) []protocol.Msg {
	s := n.subs[room]
	if s == nil || m.Seq <= s.delivered {
		return out
	}
	s.delivered = m.Seq
	return append(out, m)
}

// results reports a batch's results, then releases the messages held for
// them.
func (n *Node) results(d delivery) {
	if len(d.results) > 0 && !n.closed.Load() {
		n.h.Published(d.results)
	}
	n.flushMu.Lock()
	n.outstanding -= len(d.results)
	if n.outstanding == 0 {
		close(n.flushed)
		n.flushed = make(chan struct{})
	}
	n.flushMu.Unlock()

	var out []protocol.Msg
	n.dmu.Lock()
	room := d.room
	if n.inflight[room]--; n.inflight[room] <= 0 {
		delete(n.inflight, room)
	}
	for _, r := range d.results {
		if r.Err == nil && !r.Duplicate {
			n.resulted[room] = max(n.resulted[room], r.Msg.Seq)
		}
	}
	out = n.releaseLocked(room, out)
	if n.inflight[room] == 0 {
		delete(n.resulted, room)
	}
	n.dmu.Unlock()
	if len(out) > 0 && !n.closed.Load() {
		n.h.Messages(out)
	}
}

// releaseLocked delivers the room's held messages that may go now.
func (n *Node) releaseLocked(room string, out []protocol.Msg) []protocol.Msg {
	if s := n.subs[room]; s == nil || !s.ready {
		return out
	}
	held := n.held[room]
	i := 0
	for ; i < len(held); i++ {
		h := held[i]
		if h.mine && n.inflight[room] > 0 && h.msg.Seq > n.resulted[room] {
			break
		}
		out = n.deliverableLocked(room, h.msg, out)
	}
	if i == len(held) {
		delete(n.held, room)
	} else {
		n.held[room] = held[i:]
	}
	return out
}

// release delivers what was held for a subscription that became ready.
func (n *Node) release(room string) {
	n.dmu.Lock()
	out := n.releaseLocked(room, nil)
	n.dmu.Unlock()
	if len(out) > 0 && !n.closed.Load() {
		n.h.Messages(out)
	}
}

// Flush implements broker.Broker: it waits until this node has no
// publication without its result (under a steady stream of publications
// that may take a while), then until the consumer delivered the last
// message this node stored, then for the room indexes.
func (n *Node) Flush(ctx context.Context) error {
	for {
		n.flushMu.Lock()
		if n.outstanding == 0 {
			n.flushMu.Unlock()
			break
		}
		ch := n.flushed
		n.flushMu.Unlock()
		if err := n.await(ctx, ch); err != nil {
			return err
		}
	}
	target := n.storedSeq.Load()
	for {
		n.seenMu.Lock()
		if n.seenSeq >= target {
			n.seenMu.Unlock()
			break
		}
		if n.seenWake == nil {
			n.seenWake = make(chan struct{})
		}
		ch := n.seenWake
		n.seenMu.Unlock()
		if err := n.await(ctx, ch); err != nil {
			return err
		}
	}
	barrier := make(chan struct{})
	select {
	case n.deliveries <- delivery{barrier: barrier}:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.ctx.Done():
		return broker.ErrClosed
	}
	if err := n.await(ctx, barrier); err != nil {
		return err
	}
	return n.c.index.flush(ctx)
}

// await waits for ch to close, ctx to end or the node to stop.
func (n *Node) await(ctx context.Context, ch chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.ctx.Done():
		return broker.ErrClosed
	}
}

// Subscribe implements broker.Broker: the room is marked first, then its
// head read from the stream leader, so a message stored after the read
// reaches the consumer after the mark.
func (n *Node) Subscribe(ctx context.Context, room string) (broker.StreamPosition, error) {
	if n.closed.Load() {
		return broker.StreamPosition{}, broker.ErrClosed
	}
	n.dmu.Lock()
	s := n.subs[room]
	fresh := s == nil
	if fresh {
		s = &roomSub{}
		n.subs[room] = s
	}
	s.count++
	n.dmu.Unlock()
	h, err := n.c.readHead(ctx, room)
	if err != nil {
		n.Unsubscribe(room)
		return broker.StreamPosition{}, err
	}
	if fresh {
		// What the caller reads from history is not delivered: messages
		// that arrived since the mark were held, and those after the
		// position go out now, from the delivery goroutine.
		n.dmu.Lock()
		if n.subs[room] == s {
			s.delivered = max(s.delivered, h.seq)
			s.ready = true
			n.pendingRelease[room] = true
		}
		n.dmu.Unlock()
		select {
		case n.releaseWake <- struct{}{}:
		default: // a wake is pending already
		}
	}
	return broker.StreamPosition{Offset: h.seq, Epoch: n.c.epoch}, nil
}

// Unsubscribe implements broker.Broker.
func (n *Node) Unsubscribe(room string) {
	n.dmu.Lock()
	defer n.dmu.Unlock()
	s := n.subs[room]
	if s == nil {
		return
	}
	if s.count--; s.count <= 0 {
		delete(n.subs, room)
		delete(n.held, room)
	}
}

// subscribed reports whether room has local members.
func (n *Node) subscribed(room string) bool {
	n.dmu.Lock()
	defer n.dmu.Unlock()
	return n.subs[room] != nil
}

// Close implements broker.Broker: publications not yet stored are
// dropped (their senders were not acknowledged), this node's presence
// entries and heartbeat are removed.
func (n *Node) Close() error {
	if n.closed.Swap(true) {
		return nil
	}
	n.stop()
	ctx, cancel := context.WithTimeout(context.Background(), n.c.opts.PublishTimeout)
	defer cancel()
	return n.pres.removeAll(ctx)
}

// Crash stops the node without removing anything, as a killed process
// would: tests use it to watch the other nodes reap its presence.
func (n *Node) Crash() {
	n.closed.Store(true)
	n.stop()
}

// stop ends the node's goroutines and subscriptions.
func (n *Node) stop() {
	n.closed.Store(true)
	n.cancel()
	// Publish adds room workers to wg under pubMu once it saw the node
	// open; after this no more are added, so wg.Wait below is safe.
	n.pubMu.Lock()
	n.pubMu.Unlock() //lint:ignore SA2001 an empty critical section is the barrier

	if n.consumer != nil {
		n.consumer.Stop()
	}
	if n.noteSub != nil {
		_ = n.noteSub.Unsubscribe()
	}
	if n.pres != nil {
		n.pres.stop()
	}
	n.wg.Wait()
	if n.opts.Files != nil {
		n.opts.Files.detach() // its collector reads the index
	}
	if n.search != nil {
		n.search.close()
	}
}

// errClosed is the error of calls after Close.
func (n *Node) errClosed() error {
	if n.closed.Load() {
		return broker.ErrClosed
	}
	return nil
}

var errNotFound = errors.New("cluster: no such message")
