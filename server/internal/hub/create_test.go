package hub

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"chat/protocol"
	"chat/server/internal/rooms"
)

// TestOperatorsCreateRooms: under rooms.Operators, the IsOperator hook
// decides who creates rooms; everyone joins a room that exists.
func TestOperatorsCreateRooms(t *testing.T) {
	op := newMember()
	h, _ := newHub(t, Config{Rooms: rooms.NewMemory(), RoomCreate: rooms.Operators,
		IsOperator: func(m Member) bool { return m == op }})
	guest := h.Connect(newMember())
	e := guest.Join(&protocol.Join{Room: "news", Name: "guest"})
	if e == nil || e.Code != protocol.CodeRoomCreateRefused || e.Closing() || e.Room != "news" {
		t.Fatalf("a guest creating: %v", e)
	}
	opConn := h.Connect(op)
	mustJoin(t, opConn, &protocol.Join{Room: "News", Name: "op"})
	mustJoin(t, guest, &protocol.Join{Room: "news", Name: "guest"})
	// The room exists for good: emptied and dropped, it is still there.
	guest.Close()
	opConn.Close()
	h.mu.Lock()
	held := len(h.rooms)
	h.mu.Unlock()
	if held != 0 {
		t.Fatalf("%d rooms held after everyone left", held)
	}
	again := h.Connect(newMember())
	mustJoin(t, again, &protocol.Join{Room: "news", Name: "guest"})
}

// TestWithoutHookNobodyIsOperator: a hub not told who operators are
// creates no rooms under rooms.Operators.
func TestWithoutHookNobodyIsOperator(t *testing.T) {
	h, _ := newHub(t, Config{Rooms: rooms.NewMemory(), RoomCreate: rooms.Operators})
	if e := h.Connect(newMember()).Join(&protocol.Join{Room: "x", Name: "a"}); e == nil || e.Code != protocol.CodeRoomCreateRefused {
		t.Fatalf("created without an operator hook: %v", e)
	}
}

// TestRoomLookupsRunOnce: callers of once for the same operation while
// it runs share its one call and result; exactly one is told it was its
// call; a caller whose context ends stops waiting.
func TestRoomLookupsRunOnce(t *testing.T) {
	var k knownRooms
	gate := make(chan struct{})
	var calls atomic.Int32
	f := func(context.Context) (bool, error) {
		calls.Add(1)
		<-gate
		return true, nil
	}
	const callers = 20
	type answer struct{ result, mine bool }
	answers := make(chan answer, callers)
	// The first caller starts the call; the others join it while it is
	// held at the gate.
	go func() {
		r, mine, _ := k.once(context.Background(), "exists x", f)
		answers <- answer{r, mine}
	}()
	for calls.Load() == 0 {
		runtime.Gosched()
	}
	var wg sync.WaitGroup
	for range callers - 1 {
		wg.Go(func() {
			r, mine, _ := k.once(context.Background(), "exists x", f)
			answers <- answer{r, mine}
		})
	}
	// Wait until every one has joined the held call.
	for {
		k.mu.Lock()
		n := k.inflight["exists x"].waiters
		k.mu.Unlock()
		if n == callers-1 {
			break
		}
		runtime.Gosched()
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := k.once(cancelled, "exists x", f); err == nil {
		t.Fatal("a cancelled caller kept waiting")
	}
	close(gate)
	wg.Wait()
	mine := 0
	for range callers {
		a := <-answers
		if !a.result {
			t.Fatal("a caller got another result")
		}
		if a.mine {
			mine++
		}
	}
	if calls.Load() != 1 || mine != 1 {
		t.Fatalf("%d calls, %d callers told it was theirs; want 1 and 1", calls.Load(), mine)
	}
}

// countingRooms counts the creations in a real in-memory record.
type countingRooms struct {
	*rooms.Memory
	mu      sync.Mutex
	created int
}

func (c *countingRooms) Create(ctx context.Context, room string, max int) (bool, error) {
	created, err := c.Memory.Create(ctx, room, max)
	c.mu.Lock()
	if created {
		c.created++
	}
	c.mu.Unlock()
	return created, err
}

// TestACrowdJoiningANewRoom: JOINs of a new room arriving together all
// get in, the room is created once, and one of them is its creator (the
// others' creation allowance is refunded).
func TestACrowdJoiningANewRoom(t *testing.T) {
	reg := &countingRooms{Memory: rooms.NewMemory()}
	var hits atomic.Int32
	h, _ := newHub(t, Config{Rooms: reg, LimitHit: func(string, string, string) { hits.Add(1) }})
	const crowd = 30
	var wg sync.WaitGroup
	for i := range crowd {
		c := h.Connect(newMember())
		wg.Go(func() {
			if e := c.Join(&protocol.Join{Room: "crowd", Name: fmt.Sprint("m", i)}); e != nil {
				t.Error(e)
			}
		})
	}
	wg.Wait()
	if reg.created != 1 || hits.Load() != 0 {
		t.Fatalf("%d creations, %d limit hits", reg.created, hits.Load())
	}
	if !h.known.has("crowd") {
		t.Fatal("the created room is not remembered")
	}
}
