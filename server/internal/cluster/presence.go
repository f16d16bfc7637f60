package cluster

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
	"chat/server/internal/broker"
)

// presenceValue is a chat-presence entry: a name in a room, through
// which nodes.
type presenceValue struct {
	Name string `json:"name"`
	// SecretHash is broker.Presence's, raw bytes (a SHA-256 sum): []byte
	// so that JSON carries it in base64. As a string, JSON would replace
	// its invalid UTF-8 with U+FFFD, and the same name coming back through
	// another node would no longer match its own entry.
	SecretHash []byte   `json:"secretHash"`
	Nodes      []string `json:"nodes"`
}

// localPresence is one name's connections in a room on this node.
type localPresence struct {
	name, secretHash string
	conns            map[uint64]bool
}

// presenceStripes serialise one node's read-modify-write cycles on the
// same key (two connections of a name entering at once); nodes among
// themselves rely on compare-and-set.
const presenceStripes = 64

// presence is a node's part of chat-presence: its own entries, a replica
// of the bucket kept by a watcher, heartbeats in chat-nodes and the
// reaping of dead nodes' entries.
type presence struct {
	n      *Node
	kv     jetstream.KeyValue
	stream jetstream.Stream // the bucket's stream, for its last revision
	ttl    time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	advanced chan struct{} // closed (and renewed) when rev moves
	rev      uint64        // last revision the watcher applied
	replica  map[string]map[string]*presenceValue
	local    map[string]map[string]*localPresence
	lastSeen map[string]time.Time // node id → when its heartbeat last changed here
	lastRev  map[string]uint64    // node id → its heartbeat's revision then
	dead     map[string]bool      // nodes being reaped

	seed    maphash.Seed
	stripes [presenceStripes]sync.Mutex
}

func newPresence(n *Node) *presence {
	ctx, cancel := context.WithCancel(n.ctx)
	return &presence{n: n, kv: n.c.presence, ttl: n.opts.PresenceTTL, ctx: ctx, cancel: cancel,
		advanced: make(chan struct{}),
		replica:  map[string]map[string]*presenceValue{}, local: map[string]map[string]*localPresence{},
		lastSeen: map[string]time.Time{}, lastRev: map[string]uint64{}, dead: map[string]bool{}, seed: maphash.MakeSeed()}
}

func presenceKey(room, nameKey string) string { return Token(room) + "." + Token(nameKey) }

// start heartbeats once, loads the replica and starts the loops.
func (p *presence) start(ctx context.Context) error {
	s, err := p.n.c.js.Stream(ctx, "KV_"+BucketPresence)
	if err != nil {
		return err
	}
	p.stream = s
	if err := p.heartbeat(ctx); err != nil {
		return err
	}
	pw, err := p.kv.WatchAll(p.ctx)
	if err != nil {
		return err
	}
	nw, err := p.n.c.nodes.WatchAll(p.ctx)
	if err != nil {
		_ = pw.Stop()
		return err
	}
	loaded := make(chan struct{})
	p.wg.Add(4)
	go p.watchPresence(pw, loaded)
	go p.watchNodes(nw)
	go p.beat()
	go p.loop()
	select {
	case <-loaded:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Entries naming this node come from an earlier run under the same
	// id, whose connections are gone: they would never be reaped, since
	// the id heartbeats again.
	p.mu.Lock()
	var stale []string
	for room, names := range p.replica {
		for key, v := range names {
			if slices.Contains(v.Nodes, p.n.id) {
				stale = append(stale, presenceKey(room, key))
			}
		}
	}
	p.mu.Unlock()
	for _, k := range stale {
		if _, err := p.removeKV(ctx, k, p.n.id); err != nil {
			return err
		}
	}
	return nil
}

func (p *presence) stop() {
	p.cancel()
	p.wg.Wait()
}

func (p *presence) heartbeat(ctx context.Context) error {
	_, err := p.n.c.nodes.Put(ctx, Token(p.n.id), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	return err
}

// watchPresence keeps the replica and tells the handler of names that
// came or went through other nodes, in the rooms it subscribes to.
func (p *presence) watchPresence(w jetstream.KeyWatcher, loaded chan struct{}) {
	defer p.wg.Done()
	defer stopWatch(w)
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-p.ctx.Done():
			return
		case e, ok = <-w.Updates():
		}
		if !ok {
			return
		}
		if e == nil {
			close(loaded)
			continue
		}
		room, key, ok := splitKey(e.Key())
		if !ok {
			continue
		}
		var change *protocol.PresenceChange
		p.mu.Lock()
		names := p.replica[room]
		prev := names[key]
		switch e.Operation() {
		case jetstream.KeyValuePut:
			v := &presenceValue{}
			if json.Unmarshal(e.Value(), v) != nil {
				break
			}
			if names == nil {
				names = map[string]*presenceValue{}
				p.replica[room] = names
			}
			names[key] = v
			if prev == nil && !(len(v.Nodes) == 1 && v.Nodes[0] == p.n.id) {
				change = &protocol.PresenceChange{Kind: protocol.PresenceJoined, Name: v.Name}
			}
		default: // deleted or purged
			if prev == nil {
				break
			}
			delete(names, key)
			if len(names) == 0 {
				delete(p.replica, room)
			}
			if !(len(prev.Nodes) == 1 && prev.Nodes[0] == p.n.id) {
				change = &protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: prev.Name}
			}
		}
		p.rev = max(p.rev, e.Revision())
		close(p.advanced)
		p.advanced = make(chan struct{})
		p.mu.Unlock()
		if change != nil && p.n.subscribed(room) && !p.n.closed.Load() {
			p.n.h.PresenceChanged(room, []protocol.PresenceChange{*change})
		}
	}
}

func splitKey(k string) (room, key string, ok bool) {
	rt, kt, found := strings.Cut(k, ".")
	if !found {
		return "", "", false
	}
	room, err1 := FromToken(rt)
	key, err2 := FromToken(kt)
	return room, key, err1 == nil && err2 == nil
}

// watchNodes notes when each node's heartbeat last changed, by this
// node's clock: no two clocks are compared.
func (p *presence) watchNodes(w jetstream.KeyWatcher) {
	defer p.wg.Done()
	defer stopWatch(w)
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-p.ctx.Done():
			return
		case e, ok = <-w.Updates():
		}
		if !ok {
			return
		}
		if e == nil || e.Key() == HealthKey {
			continue
		}
		id, err := FromToken(e.Key())
		if err != nil {
			continue
		}
		p.mu.Lock()
		if e.Operation() == jetstream.KeyValuePut {
			p.lastSeen[id] = time.Now()
			p.lastRev[id] = e.Revision()
			delete(p.dead, id)
		}
		p.mu.Unlock()
	}
}

// beat heartbeats every TTL/3, on its own: reconciling or reaping,
// which may wait for NATS, must not make this node look dead to others.
func (p *presence) beat() {
	defer p.wg.Done()
	t := time.NewTicker(p.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(p.ctx, p.ttl/3)
			if err := p.heartbeat(ctx); err != nil {
				p.n.log.Warn("presence heartbeat", "err", err)
			}
			cancel()
		}
	}
}

// loop reconciles this node's entries with its connections every TTL/3
// and reaps nodes silent for longer than the TTL.
func (p *presence) loop() {
	defer p.wg.Done()
	fix := time.NewTicker(p.ttl / 3)
	defer fix.Stop()
	reap := time.NewTicker(max(p.ttl/10, 10*time.Millisecond))
	defer reap.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-fix.C:
			ctx, cancel := context.WithTimeout(p.ctx, p.ttl/3)
			p.reconcile(ctx)
			cancel()
		case now := <-reap.C:
			p.reap(now)
		}
	}
}

// alive asks the leader of chat-nodes whether node id heartbeat since
// this node last saw it: after this node was cut off from NATS, or its
// watcher fell behind, every other node looks silent here while it is
// not. An error (this node cannot ask) counts as alive: nobody is
// reaped on a guess.
func (p *presence) alive(ctx context.Context, id string) bool {
	_, rev, err := p.n.c.leaderGet(ctx, p.n.c.nodes, Token(id))
	if err != nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if rev != 0 && rev != p.lastRev[id] {
		p.lastSeen[id], p.lastRev[id] = time.Now(), rev
		delete(p.dead, id)
		return true
	}
	return false
}

// reconcile makes the bucket agree with this node's connections: it
// puts the node back into entries that lack it (it was reaped while cut
// off longer than the TTL) and takes it out of entries it holds no
// connection for (an add or remove whose answer was lost). The replica
// only picks candidates; each is decided under its stripe lock, where
// the local state is settled, by reads from the leader.
func (p *presence) reconcile(ctx context.Context) {
	type item struct{ room, key string }
	var check []item
	p.mu.Lock()
	for room, names := range p.local {
		for key := range names {
			if v := p.replica[room][key]; v == nil || !slices.Contains(v.Nodes, p.n.id) {
				check = append(check, item{room, key})
			}
		}
	}
	for room, names := range p.replica {
		for key, v := range names {
			if slices.Contains(v.Nodes, p.n.id) && p.local[room][key] == nil {
				check = append(check, item{room, key})
			}
		}
	}
	p.mu.Unlock()
	for _, it := range check {
		kvKey := presenceKey(it.room, it.key)
		mu := p.stripe(kvKey)
		mu.Lock()
		p.mu.Lock()
		lp := p.local[it.room][it.key]
		var name, secret string
		if lp != nil {
			name, secret = lp.name, lp.secretHash
		}
		p.mu.Unlock()
		var err error
		if lp != nil {
			_, err = p.addKV(ctx, it.room, it.key, name, secret)
		} else {
			_, err = p.removeKV(ctx, kvKey, p.n.id)
		}
		mu.Unlock()
		if err != nil {
			p.n.log.Warn("reconciling presence", "room", it.room, "name", name, "err", err)
		}
	}
}

// reap removes nodes silent for longer than the TTL from every entry.
// It runs every tenth of the TTL and takes a node for dead after nine
// tenths of silence (almost three missed heartbeats), so its members
// leave within the TTL of its last heartbeat.
func (p *presence) reap(now time.Time) {
	type item struct{ node, kvKey string }
	var work []item
	var gone []string
	p.mu.Lock()
	referenced := map[string]bool{}
	for room, names := range p.replica {
		for key, v := range names {
			for _, id := range v.Nodes {
				if id == p.n.id {
					continue
				}
				referenced[id] = true
				seen, ok := p.lastSeen[id]
				if !ok {
					// First heard of through an entry: the TTL runs from now.
					p.lastSeen[id] = now
					continue
				}
				if now.Sub(seen) > p.ttl-p.ttl/10 {
					p.dead[id] = true
					work = append(work, item{id, presenceKey(room, key)})
				}
			}
		}
	}
	for id, seen := range p.lastSeen {
		if id != p.n.id && !referenced[id] && now.Sub(seen) > p.ttl {
			gone = append(gone, id)
			delete(p.lastSeen, id)
			delete(p.lastRev, id)
			delete(p.dead, id)
		}
	}
	p.mu.Unlock()
	if len(work) == 0 && len(gone) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, max(p.ttl/3, time.Second))
	defer cancel()
	verdict := map[string]bool{} // node id → confirmed dead
	for _, w := range work {
		dead, asked := verdict[w.node]
		if !asked {
			dead = !p.alive(ctx, w.node)
			verdict[w.node] = dead
		}
		if !dead {
			continue
		}
		p.n.log.Info("removing the presence of a silent node", "dead", w.node, "key", w.kvKey)
		if _, err := p.removeKV(ctx, w.kvKey, w.node); err != nil {
			p.n.log.Warn("removing a dead node's presence", "dead", w.node, "err", err)
		}
	}
	for _, id := range gone {
		// Its entries are gone; so goes its heartbeat (it comes back if
		// the node was alive after all).
		_ = p.n.c.nodes.Delete(ctx, Token(id))
	}
}

func (p *presence) stripe(kvKey string) *sync.Mutex {
	return &p.stripes[maphash.String(p.seed, kvKey)%presenceStripes]
}

// kvGet reads an entry from the bucket's leader (a direct get may come
// from a replica behind it): the value, the revision to compare-and-set
// against (of a delete marker too), and whether the entry exists.
func (p *presence) kvGet(ctx context.Context, kvKey string) (presenceValue, uint64, bool, error) {
	var v presenceValue
	sm, err := p.n.c.getMsgFrom(ctx, "KV_"+BucketPresence, getReq{LastBySubj: "$KV." + BucketPresence + "." + kvKey})
	if errors.Is(err, errNotFound) {
		return v, 0, false, nil
	}
	if err != nil {
		return v, 0, false, err
	}
	if bytes.Contains(sm.Header, []byte("KV-Operation")) {
		return v, sm.Seq, false, nil // a delete or purge marker
	}
	if err := json.Unmarshal(sm.Data, &v); err != nil {
		return v, 0, false, err
	}
	return v, sm.Seq, true, nil
}

func isConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var ae *jetstream.APIError
	return errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// addKV adds this node to the entry of (room, key), creating it: first
// reports that it did. A different or empty secret is ErrNameTaken.
func (p *presence) addKV(ctx context.Context, room, key, name, secretHash string) (bool, error) {
	kvKey := presenceKey(room, key)
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		v, rev, exists, err := p.kvGet(ctx, kvKey)
		if err != nil {
			return false, err
		}
		first := !exists
		if exists {
			if secretHash == "" || string(v.SecretHash) != secretHash {
				return false, broker.ErrNameTaken
			}
			if slices.Contains(v.Nodes, p.n.id) {
				return false, nil
			}
			v.Nodes = append(v.Nodes, p.n.id)
		} else {
			v = presenceValue{Name: name, SecretHash: []byte(secretHash), Nodes: []string{p.n.id}}
		}
		data, _ := json.Marshal(v)
		_, err = p.kv.Update(ctx, kvKey, data, rev)
		if err == nil {
			return first, nil
		}
		if !isConflict(err) {
			return false, err
		}
		p.n.backoff(ctx, attempt)
	}
}

// removeKV takes node out of an entry, deleting it if no node remains:
// gone reports that it did.
func (p *presence) removeKV(ctx context.Context, kvKey, node string) (bool, error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		v, rev, exists, err := p.kvGet(ctx, kvKey)
		if err != nil {
			return false, err
		}
		if !exists || !slices.Contains(v.Nodes, node) {
			return !exists, nil
		}
		v.Nodes = slices.DeleteFunc(v.Nodes, func(id string) bool { return id == node })
		if len(v.Nodes) == 0 {
			err = p.kv.Delete(ctx, kvKey, jetstream.LastRevision(rev))
			if err == nil {
				return true, nil
			}
		} else {
			data, _ := json.Marshal(v)
			if _, err = p.kv.Update(ctx, kvKey, data, rev); err == nil {
				return false, nil
			}
		}
		if !isConflict(err) {
			return false, err
		}
		p.n.backoff(ctx, attempt)
	}
}

// PresenceAdd implements broker.Broker.
func (n *Node) PresenceAdd(ctx context.Context, room string, pr broker.Presence) (bool, error) {
	if err := n.errClosed(); err != nil {
		return false, err
	}
	p := n.pres
	key := protocol.Key(pr.Name)
	mu := p.stripe(presenceKey(room, key))
	mu.Lock()
	defer mu.Unlock()
	p.mu.Lock()
	lp := p.local[room][key]
	if lp != nil {
		defer p.mu.Unlock()
		if pr.SecretHash == "" || lp.secretHash != pr.SecretHash {
			return false, broker.ErrNameTaken
		}
		lp.conns[pr.Conn] = true
		return false, nil
	}
	p.mu.Unlock()
	first, err := p.addKV(ctx, room, key, pr.Name, pr.SecretHash)
	if err != nil {
		return false, err
	}
	p.mu.Lock()
	names := p.local[room]
	if names == nil {
		names = map[string]*localPresence{}
		p.local[room] = names
	}
	names[key] = &localPresence{name: pr.Name, secretHash: pr.SecretHash, conns: map[uint64]bool{pr.Conn: true}}
	p.mu.Unlock()
	return first, nil
}

// PresenceRemove implements broker.Broker.
func (n *Node) PresenceRemove(ctx context.Context, room string, pr broker.Presence) (bool, error) {
	p := n.pres
	key := protocol.Key(pr.Name)
	kvKey := presenceKey(room, key)
	mu := p.stripe(kvKey)
	mu.Lock()
	defer mu.Unlock()
	p.mu.Lock()
	lp := p.local[room][key]
	if lp == nil || !lp.conns[pr.Conn] {
		p.mu.Unlock()
		return false, nil
	}
	delete(lp.conns, pr.Conn)
	if len(lp.conns) > 0 {
		p.mu.Unlock()
		return false, nil
	}
	delete(p.local[room], key)
	if len(p.local[room]) == 0 {
		delete(p.local, room)
	}
	p.mu.Unlock()
	return p.removeKV(ctx, kvKey, n.id)
}

// removeAll removes this node from all its entries and its heartbeat
// (Close).
func (p *presence) removeAll(ctx context.Context) error {
	p.mu.Lock()
	var keys []string
	for room, names := range p.local {
		for key := range names {
			keys = append(keys, presenceKey(room, key))
		}
	}
	clear(p.local)
	p.mu.Unlock()
	var errs []error
	for _, k := range keys {
		if _, err := p.removeKV(ctx, k, p.n.id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := p.n.c.nodes.Delete(ctx, Token(p.n.id)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// sync waits until the replica holds every write the bucket had when it
// was called (at most a second: past it, the replica is read as it is),
// so a node reads its own and others' completed writes.
func (p *presence) sync(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	info, err := p.stream.Info(ctx)
	if err != nil {
		return
	}
	for {
		p.mu.Lock()
		done, ch := p.rev >= info.State.LastSeq, p.advanced
		p.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// PresenceList implements broker.Broker.
func (n *Node) PresenceList(ctx context.Context, room string, limit int) ([]string, int, error) {
	if err := n.errClosed(); err != nil {
		return nil, 0, err
	}
	p := n.pres
	if limit > 0 {
		// A member list (JOINED) waits for every write before it. A
		// count alone (a presence batch's) takes the replica as it is:
		// it runs on the hub's delivery path, for every change a big
		// room batches, and must not wait for NATS each time.
		p.sync(ctx)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	names := p.replica[room]
	list := make([]string, 0, min(max(limit, 0), len(names)))
	for _, v := range names {
		if len(list) >= limit {
			break
		}
		list = append(list, v.Name)
	}
	return list, len(names), nil
}

// PresenceRooms implements broker.Broker.
func (n *Node) PresenceRooms(ctx context.Context, keep func(string) bool, limit int) ([]broker.RoomCount, error) {
	if err := n.errClosed(); err != nil {
		return nil, err
	}
	p := n.pres
	p.sync(ctx)
	p.mu.Lock()
	var out []broker.RoomCount
	for room, names := range p.replica {
		if keep(room) {
			out = append(out, broker.RoomCount{Room: room, Count: len(names)})
		}
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b broker.RoomCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Room, b.Room)
	})
	return out[:min(len(out), max(limit, 0))], nil
}
