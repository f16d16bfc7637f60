package brokertest

import (
	"context"
	"reflect"
	"testing"

	"chat/protocol"
	"chat/server/internal/broker"
)

// runFiles is part of Run: a message's file travels with it to the
// sender's result, the subscribers and every read, and a delete takes it.
func runFiles(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("FilesTravelWithTheirMessages", func(t *testing.T) {
		recA, recB := newRecorder(), newRecorder()
		nodes := open(t, recA, recB)
		a, b := nodes[0], nodes[1]
		if _, err := b.Subscribe(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		f := &protocol.File{ID: "aa11", Name: "cat.png", Type: "image/png", Size: 2048, Width: 800, Height: 600,
			Thumb: "bb22", ThumbWidth: 320, ThumbHeight: 240}
		same := func(what string, got *protocol.File) {
			t.Helper()
			if !reflect.DeepEqual(got, f) {
				t.Fatalf("%s: file %+v, want %+v", what, got, f)
			}
		}
		p := &broker.Publication{Room: "r", Sender: "alice", ID: "m1", Tag: "m1", File: f} // no caption
		if err := a.Publish(p); err != nil {
			t.Fatal(err)
		}
		same("result", recA.result(t, "m1").Msg.File)
		same("delivery", recB.message(t, "r", 1).File)
		publish(t, a, "r", "bob", "m2", "nice")
		recB.message(t, "r", 2)
		for name, read := range map[string]func() ([]protocol.Msg, error){
			"Since":  func() ([]protocol.Msg, error) { return b.Since(ctx, "r", 0, 10) },
			"Before": func() ([]protocol.Msg, error) { return b.Before(ctx, "r", 3, 10) },
			"Last":   func() ([]protocol.Msg, error) { return b.Last(ctx, "r", 2) },
		} {
			msgs, err := read()
			if err != nil || len(msgs) != 2 || msgs[1].File != nil {
				t.Fatalf("%s: %+v, %v", name, msgs, err)
			}
			same(name, msgs[0].File)
		}
		publishChange(t, a, "r", "alice", "d1", protocol.ChangeDelete, 1, "", false)
		for what, m := range map[string]protocol.Msg{"result": recA.result(t, "d1").Msg, "delivery": recB.message(t, "r", 3)} {
			if m.Change == nil || m.Change.State == nil || m.Change.State.File != nil || m.Change.State.Text != "" {
				t.Fatalf("%s of the delete: %+v (state %+v), want the state without its file", what, m, m.Change)
			}
		}
		msgs, err := b.Since(ctx, "r", 0, 1)
		if err != nil || len(msgs) != 1 || msgs[0].File != nil || msgs[0].Edited == 0 {
			t.Fatalf("read of the deleted message: %+v, %v", msgs, err)
		}
	})
}
