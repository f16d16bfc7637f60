package hub

import (
	"testing"

	"chat/protocol"
)

// TestRingReplaysEachFinalStateOnce: of the changes in a replay, only the
// last one of each target older than the replay carries the state; the
// ring's own copy of a changed message takes the new state; dropping and
// trimming keep the byte count right.
func TestRingReplaysEachFinalStateOnce(t *testing.T) {
	r := newRing(16, 0, nil)
	msg := func(seq uint64, text string) *protocol.Msg {
		return &protocol.Msg{Room: "r", Seq: seq, Sender: "a", ID: "x", Text: text}
	}
	change := func(seq, target uint64, text string) {
		state := msg(target, text)
		entry := &protocol.Msg{Room: "r", Seq: seq, Sender: "a", Change: &protocol.ChangeEntry{Kind: protocol.ChangeEdit, Target: target, State: state}}
		r.apply("r", target, state)
		r.pushChange(seq, protocol.Encode(entry.Update(state)), protocol.Encode(entry.Update(nil)), target)
	}
	r.push(1, protocol.Encode(msg(1, "one")))
	r.push(2, protocol.Encode(msg(2, "two")))
	change(3, 1, "one'")
	change(4, 2, "two'")
	change(5, 1, "one''")
	r.push(6, protocol.Encode(msg(6, "six")))
	change(7, 6, "six'")

	decode := func(frames [][]byte) []protocol.Message {
		out := make([]protocol.Message, len(frames))
		for i, f := range frames {
			m, err := protocol.Decode(f[protocol.LengthSize:])
			if err != nil {
				t.Fatal(err)
			}
			out[i] = m
		}
		return out
	}
	// From 1: message 2 and 6 are replayed in their final state; of
	// message 1's changes only the last (5) has the state.
	got := decode(r.since(1))
	if len(got) != 6 {
		t.Fatalf("%d frames", len(got))
	}
	if m := got[0].(*protocol.Msg); m.Seq != 2 || m.Text != "two'" {
		t.Fatalf("message 2 replayed as %+v", m)
	}
	want := map[uint64]string{3: "", 4: "", 5: "one''", 7: ""}
	for _, m := range got {
		if u, ok := m.(*protocol.Update); ok {
			state := ""
			if u.State != nil {
				state = u.State.Text
			}
			if state != want[u.Seq] {
				t.Errorf("UPDATE %d carries state %q, want %q", u.Seq, state, want[u.Seq])
			}
		}
	}
	// From 0 (a late joiner): every message final, no UPDATE with state.
	for _, m := range decode(r.since(0)) {
		if u, ok := m.(*protocol.Update); ok && u.State != nil {
			t.Errorf("UPDATE %d carries a state in a full replay", u.Seq)
		}
		if msg, ok := m.(*protocol.Msg); ok && msg.Seq == 1 && msg.Text != "one''" {
			t.Errorf("message 1 replayed as %q", msg.Text)
		}
	}
	if !r.isChange(3) || r.isChange(2) || r.isChange(99) {
		t.Error("isChange")
	}
	sum := 0
	for i := range r.n {
		j := (r.start + i) % len(r.frames)
		sum += entrySize(r.frames[j], r.changes[j])
	}
	if sum != r.bytes {
		t.Fatalf("the ring counts %d bytes, holds %d", r.bytes, sum)
	}
	r.trim(-1)
	if r.bytes != 0 || r.n != 0 {
		t.Fatalf("after trimming: %d bytes, %d frames", r.bytes, r.n)
	}
}
