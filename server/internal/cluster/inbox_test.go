package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/cluster/natstest"
	"chat/server/internal/history"
	"chat/server/internal/inbox"
	"chat/server/internal/inbox/inboxtest"
)

// importLog is a history.Log for the inbox tests: Append stores the
// message in stream CHAT as a node would (payload, per-room seq head+1,
// the time now) through Import, which also indexes it. It is not the
// broker's publishing path, only enough to give the indexes rooms.
type importLog struct {
	c  *Conn
	mu sync.Mutex // one Append at a time: head+1 must stay head+1
}

var _ history.Log = (*importLog)(nil)

func (l *importLog) Append(r *history.Request) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	last, err := l.c.roomHead(ctx, r.Room)
	if err != nil {
		return err
	}
	var head uint64
	if last != nil {
		head = last.Seq
	}
	m := protocol.Msg{Room: r.Room, Seq: head + 1, Time: protocol.Millis(time.Now()), Sender: r.Sender, ID: r.ID, Text: r.Text}
	return l.c.Import(ctx, []protocol.Msg{m})
}

func (l *importLog) Flush(ctx context.Context) error { return l.c.index.flush(ctx) }

var errNotInTests = errors.New("not implemented by the test log")

func (l *importLog) Since(context.Context, string, uint64, int) ([]protocol.Msg, error) {
	return nil, errNotInTests
}
func (l *importLog) Last(context.Context, string, int) ([]protocol.Msg, error) {
	return nil, errNotInTests
}
func (l *importLog) Before(context.Context, string, uint64, int) ([]protocol.Msg, error) {
	return nil, errNotInTests
}
func (l *importLog) Bounds(context.Context, string) (uint64, uint64, error) {
	return 0, 0, errNotInTests
}
func (l *importLog) Epoch(context.Context, string) (uint64, error) { return l.c.Epoch(), nil }
func (l *importLog) Close() error                                  { return nil }

func TestInboxConformance(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, maxMentions int) (inbox.Store, history.Log) {
		c := storesDial(t, natstest.Start(t, 1), "node-a")
		return c.Inbox(InboxOptions{MaxMentions: maxMentions}), &importLog{c: c}
	})
}

// The same on a NATS cluster of three, the messages stored and indexed
// through one server and the store reading through another. One cluster
// serves every subtest (starting one is the slow part): each purges the
// stream and buckets for a fresh, empty store.
func TestInboxConformanceOnThreeServers(t *testing.T) {
	if testing.Short() {
		t.Skip("three NATS servers")
	}
	n := natstest.Start(t, 3)
	inboxtest.Run(t, func(t *testing.T, maxMentions int) (inbox.Store, history.Log) {
		a, b := storesDialURL(t, n.URL(0), "node-a"), storesDialURL(t, n.URL(1), "node-b")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, stream := range []string{StreamName, "KV_" + BucketNames, "KV_" + BucketMarks, "KV_" + BucketMentions, "KV_" + BucketRooms, "KV_" + BucketDMs} {
			s, err := a.js.Stream(ctx, stream)
			if err == nil {
				err = s.Purge(ctx)
			}
			if err != nil {
				t.Fatalf("purging %s: %v", stream, err)
			}
		}
		return b.Inbox(InboxOptions{MaxMentions: maxMentions}), &importLog{c: a}
	})
}

// Devices of one name on three nodes read a room at once, each moving the
// marker to its own positions in its own order: the marker ends at the
// highest, and no Advance that reported a move was undone by a lower one.
// With three NATS servers each node talks to its own.
func TestAdvanceFromSeveralNodesEndsAtTheHighest(t *testing.T) {
	for _, servers := range []int{1, 3} {
		t.Run(fmt.Sprint(servers, "servers"), func(t *testing.T) {
			if servers > 1 && testing.Short() {
				t.Skip("three NATS servers")
			}
			advanceFromSeveralNodes(t, servers)
		})
	}
}

func advanceFromSeveralNodes(t *testing.T, servers int) {
	n := natstest.Start(t, servers)
	var stores []*Inbox
	for i := range 3 {
		stores = append(stores, storesDialURL(t, n.URL(i%servers), fmt.Sprint("node-", i)).Inbox(InboxOptions{}))
	}
	ctx := context.Background()
	const top = 60
	var wg sync.WaitGroup
	errs := make(chan error, len(stores))
	for i, s := range stores {
		seqs := make([]uint64, top)
		for j := range seqs {
			seqs[j] = uint64(j + 1)
		}
		r := rand.New(rand.NewPCG(uint64(i), 7))
		r.Shuffle(len(seqs), func(a, b int) { seqs[a], seqs[b] = seqs[b], seqs[a] })
		wg.Go(func() {
			for _, seq := range seqs {
				moved, err := s.Advance(ctx, "alice", "general", seq)
				if err != nil {
					errs <- err
					return
				}
				read, _, err := s.State(ctx, "alice", "general")
				if err != nil {
					errs <- err
					return
				}
				if moved && read < seq {
					errs <- fmt.Errorf("Advance(%d) moved, then the marker is %d", seq, read)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, s := range stores {
		if read, _, err := s.State(ctx, "alice", "general"); err != nil || read != top {
			t.Fatalf("node %d: marker %d, %v; want %d", i, read, err, top)
		}
	}
}

// A node that stored an older message of a room writes its index after a
// node that stored a newer one: the index keeps the newer head, in
// chat-rooms and chat-dms, and the other node's room list shows it.
func TestIndexOnlyMovesForward(t *testing.T) {
	n := natstest.Start(t, 1)
	a, b := storesDial(t, n, "node-a"), storesDial(t, n, "node-b")
	ctx := context.Background()
	dm := protocol.DMRoom("alice", "bob")
	for _, room := range []string{"general", dm} {
		a.index.stored(&protocol.Msg{Room: room, Seq: 5, Time: 5000})
		if err := a.index.flush(ctx); err != nil {
			t.Fatal(err)
		}
		b.index.stored(&protocol.Msg{Room: room, Seq: 4, Time: 4000})
		b.index.stored(&protocol.Msg{Room: room, Seq: 3, Time: 6000}) // coalesced away: older head
		if err := b.index.flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*Inbox{a.Inbox(InboxOptions{}), b.Inbox(InboxOptions{})} {
		heads, err := s.Heads(ctx, []string{"general", dm})
		if err != nil || len(heads) != 2 || heads[0].Head != 5 || heads[0].Time != 5000 || heads[1].Head != 5 {
			t.Fatalf("Heads = %+v, %v", heads, err)
		}
		active, err := s.Active(ctx, "", 10)
		if err != nil || len(active) != 1 || active[0].Room != "general" || active[0].Head != 5 {
			t.Fatalf("Active = %+v, %v", active, err)
		}
		for _, name := range []string{"alice", "bob"} {
			direct, err := s.Direct(ctx, name, 10)
			if err != nil || len(direct) != 1 || direct[0].Room != dm || direct[0].Head != 5 || direct[0].Time != 5000 {
				t.Fatalf("Direct(%s) = %+v, %v", name, direct, err)
			}
		}
	}
}

// The room list searches only the ListScan most recently active rooms;
// the replica behind it follows rooms written by any node.
func TestActiveSearchesTheListScanNewestRooms(t *testing.T) {
	n := natstest.Start(t, 1)
	a, b := storesDial(t, n, "node-a"), storesDial(t, n, "node-b")
	ctx := context.Background()
	s := b.Inbox(InboxOptions{ListScan: 3})
	for i := range 5 {
		a.index.stored(&protocol.Msg{Room: fmt.Sprint("room-", i), Seq: 1, Time: uint64(1000 + i)})
	}
	if err := a.index.flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.Active(ctx, "", 10)
	if want := []string{"room-4", "room-3", "room-2"}; err != nil || !slices.Equal(activeRoomNames(got), want) {
		t.Fatalf("Active = %+v, %v; want %v", got, err, want)
	}
	if got, _ := s.Active(ctx, "room-1", 10); len(got) != 0 {
		t.Fatalf("Active(room-1) found %+v beyond the scan", got)
	}
	// room-0 becomes the most recent, written by the other node.
	a.index.stored(&protocol.Msg{Room: "room-0", Seq: 2, Time: 2000})
	if err := a.index.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Active(ctx, "room-0", 10); err != nil || len(got) != 1 || got[0].Head != 2 {
		t.Fatalf("Active(room-0) = %+v, %v", got, err)
	}
}

func activeRoomNames(rooms []protocol.RoomInfo) []string {
	var out []string
	for _, r := range rooms {
		out = append(out, r.Room)
	}
	return out
}
