package broker

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"chat/protocol"
	"chat/server/internal/history"
)

// Local is the in-process Broker store: messages in a history.Log,
// subscriptions and presence in memory. Each hub attaches through a Node;
// a single server has exactly one.
type Local struct {
	log history.Log
	ttl time.Duration

	mu       sync.Mutex
	nodes    map[*Node]bool
	subs     map[string]map[*Node]int // room → subscribed nodes (a count: Subscribe may be repeated)
	presence map[string]map[string]*present

	stop    chan struct{}
	stopped chan struct{}
}

// present is one name in one room: its connections, on any node.
type present struct {
	name       string
	secretHash string
	conns      map[connID]bool
}

type connID struct {
	node *Node
	conn uint64
}

// LocalOptions tune a Local.
type LocalOptions struct {
	// PresenceTTL is how long a node's presence entries outlive its last
	// renewal (default PresenceTTL). Nodes renew every third of it.
	PresenceTTL time.Duration
}

// NewLocal opens the store. open is given the commit sink and returns the
// log (sqlite.Open, history.NewMemory).
func NewLocal(open func(history.Sink) (history.Log, error), opts LocalOptions) (*Local, error) {
	if opts.PresenceTTL <= 0 {
		opts.PresenceTTL = PresenceTTL
	}
	l := &Local{
		ttl:      opts.PresenceTTL,
		nodes:    map[*Node]bool{},
		subs:     map[string]map[*Node]int{},
		presence: map[string]map[string]*present{},
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	log, err := open(l.dispatch)
	if err != nil {
		return nil, err
	}
	l.log = log
	go l.expire()
	return l, nil
}

// Log is the store's history log (for operators' tools and tests).
func (l *Local) Log() history.Log { return l.log }

// Close closes the nodes still open, then the log.
func (l *Local) Close() error {
	l.mu.Lock()
	nodes := make([]*Node, 0, len(l.nodes))
	for n := range l.nodes {
		nodes = append(nodes, n)
	}
	l.mu.Unlock()
	for _, n := range nodes {
		n.Close()
	}
	close(l.stop)
	<-l.stopped
	return l.log.Close()
}

// Node attaches a hub. Its presence entries live while the node renews
// them (it does so by itself until Close).
func (l *Local) Node(h Handler) *Node {
	n := &Node{l: l, h: h, done: make(chan struct{})}
	l.mu.Lock()
	n.expires = time.Now().Add(l.ttl)
	l.nodes[n] = true
	l.mu.Unlock()
	go n.renew()
	return n
}

// dispatch runs on the log's commit goroutine: each node gets its own
// results, then the new messages of the rooms it subscribes to.
func (l *Local) dispatch(results []history.Result) {
	type delivery struct {
		own  []history.Result
		msgs []protocol.Msg
	}
	l.mu.Lock()
	out := make(map[*Node]*delivery, len(l.nodes))
	get := func(n *Node) *delivery {
		d := out[n]
		if d == nil {
			d = &delivery{}
			out[n] = d
		}
		return d
	}
	for i := range results {
		r := &results[i]
		if n, ok := r.Request.Origin.(*Node); ok && l.nodes[n] {
			d := get(n)
			d.own = append(d.own, *r)
		}
		if r.Err != nil || r.Duplicate {
			continue
		}
		for n := range l.subs[r.Msg.Room] {
			d := get(n)
			d.msgs = append(d.msgs, r.Msg)
		}
	}
	l.mu.Unlock()
	for n, d := range out {
		if len(d.own) > 0 {
			n.h.Published(d.own)
		}
		if len(d.msgs) > 0 {
			n.h.Messages(d.msgs)
		}
	}
}

// notice is a presence change to tell a node, outside the lock.
type notice struct {
	node    *Node
	room    string
	changes []protocol.PresenceChange
}

func (l *Local) tell(notices []notice) {
	for _, n := range notices {
		n.node.h.PresenceChanged(n.room, n.changes)
	}
}

// othersLocked lists the nodes other than except subscribed to room.
func (l *Local) othersLocked(room string, except *Node, c protocol.PresenceChange) []notice {
	var ns []notice
	for n := range l.subs[room] {
		if n != except {
			ns = append(ns, notice{n, room, []protocol.PresenceChange{c}})
		}
	}
	return ns
}

// removeLocked takes one connection out of room's presence and reports
// whether its name is gone from the room.
func (l *Local) removeLocked(room, key string, id connID) (gone bool, name string) {
	names := l.presence[room]
	p := names[key]
	if p == nil || !p.conns[id] {
		return false, ""
	}
	delete(p.conns, id)
	if len(p.conns) > 0 {
		return false, p.name
	}
	delete(names, key)
	if len(names) == 0 {
		delete(l.presence, room)
	}
	return true, p.name
}

// expire drops the presence of nodes that stopped renewing it (a crashed
// process), so their members leave for everyone else.
func (l *Local) expire() {
	defer close(l.stopped)
	t := time.NewTicker(max(l.ttl/10, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case now := <-t.C:
			l.mu.Lock()
			var dead []*Node
			for n := range l.nodes {
				// In one process a node stops renewing only when it
				// crashed (Crash). A live node whose renewal merely ran
				// late (the process was paused, and this ticker fired
				// first) keeps its entries: dropping them would leave a
				// node that still serves connections but hears nothing.
				if now.After(n.expires) && n.crashed() {
					dead = append(dead, n)
				}
			}
			var notices []notice
			for _, n := range dead {
				notices = append(notices, l.dropNodeLocked(n)...)
			}
			l.mu.Unlock()
			l.tell(notices)
		}
	}
}

// dropNodeLocked detaches n: its subscriptions end and its connections
// leave every room, which the remaining nodes hear of.
func (l *Local) dropNodeLocked(n *Node) []notice {
	delete(l.nodes, n)
	for room, nodes := range l.subs {
		delete(nodes, n)
		if len(nodes) == 0 {
			delete(l.subs, room)
		}
	}
	var notices []notice
	for room, names := range l.presence {
		for key, p := range names {
			for id := range p.conns {
				if id.node != n {
					continue
				}
				if gone, name := l.removeLocked(room, key, id); gone {
					notices = append(notices, l.othersLocked(room, n,
						protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: name})...)
				}
			}
		}
	}
	return notices
}

// Node is one hub's Broker on a Local.
type Node struct {
	l       *Local
	h       Handler
	expires time.Time // guarded by l.mu
	done    chan struct{}
	once    sync.Once
}

var _ Broker = (*Node)(nil)

func (n *Node) renew() {
	t := time.NewTicker(n.l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case now := <-t.C:
			n.l.mu.Lock()
			if n.l.nodes[n] {
				n.expires = now.Add(n.l.ttl)
			}
			n.l.mu.Unlock()
		}
	}
}

// Crash stops renewing this node's presence without removing it, as a
// killed process would: tests use it to watch entries expire.
func (n *Node) Crash() { n.once.Do(func() { close(n.done) }) }

func (n *Node) crashed() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// attached reports whether the node is still part of the store; callers
// hold l.mu.
func (n *Node) attachedLocked() bool { return n.l.nodes[n] }

// Publish implements Broker.
func (n *Node) Publish(p *Publication) error {
	n.l.mu.Lock()
	ok := n.attachedLocked()
	n.l.mu.Unlock()
	if !ok {
		return ErrClosed
	}
	p.Origin = n
	return n.l.log.Append(p)
}

// Flush implements Broker.
func (n *Node) Flush(ctx context.Context) error { return n.l.log.Flush(ctx) }

// Subscribe implements Broker.
func (n *Node) Subscribe(ctx context.Context, room string) (StreamPosition, error) {
	epoch, err := n.l.log.Epoch(ctx, room)
	if err != nil {
		return StreamPosition{}, err
	}
	n.l.mu.Lock()
	if !n.attachedLocked() {
		n.l.mu.Unlock()
		return StreamPosition{}, ErrClosed
	}
	subs := n.l.subs[room]
	if subs == nil {
		subs = map[*Node]int{}
		n.l.subs[room] = subs
	}
	subs[n]++
	n.l.mu.Unlock()
	// Subscribed first, then read: a message committed in between is both
	// read and delivered (the caller skips it), never neither.
	// The head, not the last kept message: retention may have removed
	// every message of the room.
	_, head, err := n.l.log.Bounds(ctx, room)
	if err != nil {
		n.Unsubscribe(room)
		return StreamPosition{}, err
	}
	return StreamPosition{Offset: head, Epoch: epoch}, nil
}

// Unsubscribe implements Broker.
func (n *Node) Unsubscribe(room string) {
	n.l.mu.Lock()
	defer n.l.mu.Unlock()
	subs := n.l.subs[room]
	if subs == nil {
		return // the node was dropped, and its subscriptions with it
	}
	if subs[n]--; subs[n] <= 0 {
		delete(subs, n)
	}
	if len(subs) == 0 {
		delete(n.l.subs, room)
	}
}

// Since implements Broker.
func (n *Node) Since(ctx context.Context, room string, after uint64, limit int) ([]protocol.Msg, error) {
	return n.l.log.Since(ctx, room, after, limit)
}

// Before implements Broker.
func (n *Node) Before(ctx context.Context, room string, before uint64, limit int) ([]protocol.Msg, error) {
	return n.l.log.Before(ctx, room, before, limit)
}

// Last implements Broker.
func (n *Node) Last(ctx context.Context, room string, limit int) ([]protocol.Msg, error) {
	return n.l.log.Last(ctx, room, limit)
}

// Floor implements Broker.
func (n *Node) Floor(ctx context.Context, room string) (uint64, error) {
	floor, _, err := n.l.log.Bounds(ctx, room)
	return floor, err
}

// Search implements Broker: the log's own search, if it has one.
func (n *Node) Search(ctx context.Context, q history.Query) ([]protocol.Hit, bool, error) {
	s, ok := n.l.log.(history.Searcher)
	if !ok {
		return nil, false, ErrNoSearch
	}
	return s.Search(ctx, q)
}

// PresenceAdd implements Broker.
func (n *Node) PresenceAdd(_ context.Context, room string, p Presence) (bool, error) {
	key := protocol.Key(p.Name)
	l := n.l
	l.mu.Lock()
	if !l.nodes[n] {
		l.mu.Unlock()
		return false, ErrClosed
	}
	names := l.presence[room]
	if names == nil {
		names = map[string]*present{}
		l.presence[room] = names
	}
	e := names[key]
	if e != nil && (p.SecretHash == "" || e.secretHash != p.SecretHash) {
		l.mu.Unlock()
		return false, ErrNameTaken
	}
	first := e == nil
	if first {
		e = &present{name: p.Name, secretHash: p.SecretHash, conns: map[connID]bool{}}
		names[key] = e
	}
	e.conns[connID{n, p.Conn}] = true
	var notices []notice
	if first {
		notices = l.othersLocked(room, n, protocol.PresenceChange{Kind: protocol.PresenceJoined, Name: p.Name})
	}
	l.mu.Unlock()
	l.tell(notices)
	return first, nil
}

// PresenceRemove implements Broker.
func (n *Node) PresenceRemove(_ context.Context, room string, p Presence) (bool, error) {
	l := n.l
	l.mu.Lock()
	gone, name := l.removeLocked(room, protocol.Key(p.Name), connID{n, p.Conn})
	var notices []notice
	if gone {
		notices = l.othersLocked(room, n, protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: name})
	}
	l.mu.Unlock()
	l.tell(notices)
	return gone, nil
}

// PresenceList implements Broker.
func (n *Node) PresenceList(_ context.Context, room string, limit int) ([]string, int, error) {
	n.l.mu.Lock()
	defer n.l.mu.Unlock()
	names := n.l.presence[room]
	list := make([]string, 0, min(limit, len(names)))
	for _, p := range names {
		if len(list) >= limit {
			break
		}
		list = append(list, p.name)
	}
	return list, len(names), nil
}

// PresenceRooms implements Broker. It looks at every room with presence:
// as many as there are connections in rooms at most.
func (n *Node) PresenceRooms(_ context.Context, keep func(string) bool, limit int) ([]RoomCount, error) {
	n.l.mu.Lock()
	var out []RoomCount
	for room, names := range n.l.presence {
		if keep(room) {
			out = append(out, RoomCount{Room: room, Count: len(names)})
		}
	}
	n.l.mu.Unlock()
	slices.SortFunc(out, func(a, b RoomCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Room, b.Room)
	})
	return out[:min(len(out), max(limit, 0))], nil
}

// Notify implements Broker.
func (n *Node) Notify(_ context.Context, note *Note) error {
	l := n.l
	l.mu.Lock()
	if !l.nodes[n] {
		l.mu.Unlock()
		return ErrClosed
	}
	nodes := make([]*Node, 0, len(l.nodes))
	for m := range l.nodes {
		nodes = append(nodes, m)
	}
	l.mu.Unlock()
	for _, m := range nodes {
		m.h.Noted(note)
	}
	return nil
}

// Close implements Broker.
func (n *Node) Close() error {
	n.Crash()
	n.l.mu.Lock()
	var notices []notice
	if n.l.nodes[n] {
		notices = n.l.dropNodeLocked(n)
	}
	n.l.mu.Unlock()
	n.l.tell(notices)
	return nil
}
