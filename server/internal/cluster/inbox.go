package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
	"chat/server/internal/inbox"
)

// Inbox is the inbox.Store of a cluster: read markers in chat-marks,
// unread mentions in chat-mentions, room lists from the indexes chat-rooms
// and chat-dms that the nodes' indexers keep. Every write is a
// compare-and-set on one key, so devices of one name on several nodes
// never undo each other.
type Inbox struct {
	c           *Conn
	maxMentions int
	listScan    int
}

var _ inbox.Store = (*Inbox)(nil)

// InboxOptions tune an Inbox, like sqlite.InboxOptions.
type InboxOptions struct {
	// MaxMentions is how many unread mentions are kept per name (default
	// 1000); the oldest go first. Every node must use the same.
	MaxMentions int
	// ListScan is how many of the most recently active rooms a search of
	// the room list looks through (default 10000), as in sqlite.Inbox.
	ListScan int
}

// DefaultMaxMentions is the mentions kept per name by default.
const DefaultMaxMentions = 1000

// maxParallelReads bounds the reads one Heads, Direct or Claimed has in
// flight.
const maxParallelReads = 16

// Inbox returns the cluster's inbox store.
func (c *Conn) Inbox(opts InboxOptions) *Inbox {
	if opts.MaxMentions <= 0 {
		opts.MaxMentions = DefaultMaxMentions
	}
	if opts.ListScan <= 0 {
		opts.ListScan = 10000
	}
	return &Inbox{c: c, maxMentions: opts.MaxMentions, listScan: opts.ListScan}
}

// markKey is the chat-marks key of name's marker in room.
func markKey(name, room string) string { return Token(name) + "." + Token(room) }

// mentionEntry is one unread mention in a chat-mentions value, a JSON list
// oldest first.
type mentionEntry struct {
	Room string `json:"r"`
	Seq  uint64 `json:"s"`
}

func decodeMentions(b []byte) ([]mentionEntry, error) {
	var list []mentionEntry
	if len(b) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("cluster: chat-mentions value: %w", err)
	}
	return list, nil
}

// marker returns name's read marker in room, 0 if none. It reads from
// the stream's leader, so that a device sees its own READ at once even
// when another server of NATS answered it (a direct get may be served
// by a replica that is behind).
func (x *Inbox) marker(ctx context.Context, name, room string) (uint64, error) {
	v, rev, err := x.c.leaderGet(ctx, x.c.marks, markKey(name, room))
	if err != nil || rev == 0 {
		return 0, err
	}
	return parseMarker(v)
}

func parseMarker(b []byte) (uint64, error) {
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cluster: chat-marks value %q: %w", b, err)
	}
	return n, nil
}

// State implements inbox.Store.
func (x *Inbox) State(ctx context.Context, name, room string) (read, mentions uint64, err error) {
	read, err = x.marker(ctx, name, room)
	if err != nil {
		return 0, 0, err
	}
	v, _, err := x.c.leaderGet(ctx, x.c.mentions, Token(name))
	if err != nil {
		return 0, 0, err
	}
	list, err := decodeMentions(v)
	for _, m := range list {
		if m.Room == room && m.Seq > read {
			mentions++
		}
	}
	return read, mentions, err
}

// Advance implements inbox.Store.
func (x *Inbox) Advance(ctx context.Context, name, room string, seq uint64) (bool, error) {
	if seq == 0 {
		return false, nil
	}
	moved, err := x.c.advanceMarker(ctx, name, room, seq)
	if err != nil || !moved {
		return false, err
	}
	// Forget the mentions read now. A Mention racing with this may keep
	// one at or below the marker; State counts only those above it, and
	// the list's bound keeps such leftovers few.
	_, err = x.c.kvCAS(ctx, x.c.mentions, Token(name), func(cur []byte) ([]byte, bool, error) {
		list, err := decodeMentions(cur)
		if err != nil || len(list) == 0 {
			return nil, false, err
		}
		kept := slices.DeleteFunc(slices.Clone(list), func(m mentionEntry) bool { return m.Room == room && m.Seq <= seq })
		if len(kept) == len(list) {
			return nil, false, nil
		}
		if len(kept) == 0 {
			return nil, true, nil // delete the key
		}
		b, err := json.Marshal(kept)
		return b, true, err
	})
	return true, err
}

// advanceMarker moves name's marker in room forward to seq, by
// compare-and-set: READs on several nodes end at the highest.
func (c *Conn) advanceMarker(ctx context.Context, name, room string, seq uint64) (bool, error) {
	return c.kvCAS(ctx, c.marks, markKey(name, room), func(cur []byte) ([]byte, bool, error) {
		if cur != nil {
			old, err := parseMarker(cur)
			if err != nil {
				return nil, false, err
			}
			if seq <= old {
				return nil, false, nil
			}
		}
		return strconv.AppendUint(nil, seq, 10), true, nil
	})
}

// Mention implements inbox.Store.
func (x *Inbox) Mention(ctx context.Context, room string, seq uint64, names []string) error {
	for _, name := range names {
		read, err := x.marker(ctx, name, room)
		if err != nil {
			return err
		}
		if seq <= read {
			continue
		}
		if _, err := x.c.addMentions(ctx, name, []mentionEntry{{room, seq}}, x.maxMentions); err != nil {
			return err
		}
	}
	return nil
}

// addMentions appends those of add that name's list lacks, keeping the
// newest max, and reports whether the list changed.
func (c *Conn) addMentions(ctx context.Context, name string, add []mentionEntry, max int) (bool, error) {
	return c.kvCAS(ctx, c.mentions, Token(name), func(cur []byte) ([]byte, bool, error) {
		list, err := decodeMentions(cur)
		if err != nil {
			return nil, false, err
		}
		n := len(list)
		for _, m := range add {
			if !slices.Contains(list, m) {
				list = append(list, m)
			}
		}
		if len(list) == n {
			return nil, false, nil
		}
		if len(list) > max {
			list = list[len(list)-max:]
		}
		b, err := json.Marshal(list)
		return b, true, err
	})
}

// Direct implements inbox.Store. It reads name's keys of chat-dms (one
// per direct-message room of name with messages: like sqlite's, the rows
// of a name are not capped) in one watch, then the markers of the limit
// newest.
func (x *Inbox) Direct(ctx context.Context, name string, limit int) ([]protocol.RoomState, error) {
	if limit <= 0 || name == "" {
		return nil, nil
	}
	wctx, cancel := context.WithTimeout(ctx, x.c.opts.PublishTimeout)
	defer cancel()
	w, err := x.c.dms.WatchFiltered(wctx, []string{Token(name) + ".*"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer stopWatch(w)
	var rooms []indexEntry
	for done := false; !done; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("cluster: chat-dms watch ended")
			}
			if e == nil { // every current value is in
				done = true
				break
			}
			var v indexEntry
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				return nil, fmt.Errorf("cluster: chat-dms value of %s: %w", e.Key(), err)
			}
			if v.Head > 0 {
				rooms = append(rooms, v)
			}
		case <-wctx.Done():
			return nil, wctx.Err()
		}
	}
	slices.SortFunc(rooms, newestFirst)
	rooms = rooms[:min(len(rooms), limit)]
	out := make([]protocol.RoomState, len(rooms))
	err = eachParallel(len(rooms), func(i int) error {
		read, err := x.marker(ctx, name, rooms[i].Room)
		out[i] = protocol.RoomState{Room: rooms[i].Room, Head: rooms[i].Head, Time: rooms[i].Time, Read: read}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// stopWatch stops a key watcher that its reader leaves early. nats.go
// never closes a watcher's Updates channel, and its subscription's
// callback blocks sending into it when it is full: without a reader it
// would stay blocked (a goroutine per early exit). After Stop no new
// entries come, so the drain ends once a second passes without one.
func stopWatch(w jetstream.KeyWatcher) {
	_ = w.Stop()
	go func() {
		idle := time.NewTimer(time.Second)
		defer idle.Stop()
		for {
			select {
			case _, ok := <-w.Updates():
				if !ok {
					return // closed: its watch's context ended
				}
				idle.Reset(time.Second)
			case <-idle.C:
				return
			}
		}
	}()
}

// Active implements inbox.Store. It reads this node's replica of
// chat-rooms (after it caught up with the bucket), and searches only its
// ListScan most recently active rooms, as sqlite.Inbox does.
func (x *Inbox) Active(ctx context.Context, match string, limit int) ([]protocol.RoomInfo, error) {
	if limit <= 0 {
		return nil, nil
	}
	rooms, err := x.c.index.list.current(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rooms, newestFirst)
	var out []protocol.RoomInfo
	for _, r := range rooms[:min(len(rooms), x.listScan)] {
		if len(out) >= limit {
			break
		}
		if strings.Contains(r.Room, match) {
			out = append(out, protocol.RoomInfo{Room: r.Room, Head: r.Head, Time: r.Time})
		}
	}
	return out, nil
}

// Heads implements inbox.Store.
func (x *Inbox) Heads(ctx context.Context, rooms []string) ([]protocol.RoomInfo, error) {
	found := make([]*indexEntry, len(rooms))
	err := eachParallel(len(rooms), func(i int) error {
		if rooms[i] == "" {
			return nil
		}
		// From the leader, like the markers: a replica may be behind.
		val, rev, err := x.c.leaderGet(ctx, x.c.rooms, Token(rooms[i]))
		if err != nil || rev == 0 {
			return err
		}
		var v indexEntry
		if err := json.Unmarshal(val, &v); err != nil {
			return fmt.Errorf("cluster: chat-rooms value of %q: %w", rooms[i], err)
		}
		if v.Head > 0 {
			found[i] = &v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []protocol.RoomInfo
	seen := make(map[string]bool, len(rooms))
	for i, v := range found {
		if v != nil && !seen[rooms[i]] { // once each, like sqlite's IN
			seen[rooms[i]] = true
			out = append(out, protocol.RoomInfo{Room: v.Room, Head: v.Head, Time: v.Time})
		}
	}
	return out, nil
}

// eachParallel runs f(0) … f(n-1), at most maxParallelReads at once: each is
// one round trip to NATS, which need not wait for the one before.
func eachParallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, maxParallelReads)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = f(i)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
