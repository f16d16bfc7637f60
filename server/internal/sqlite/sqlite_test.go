package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"chat/server/internal/history"
	"chat/server/internal/history/historytest"
)

func TestConformance(t *testing.T) {
	historytest.Run(t, func(t *testing.T, sink history.Sink) history.Log {
		l, err := Open(filepath.Join(t.TempDir(), "chat.db"), sink, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		return l
	})
}

// results is a sink that records everything it is given.
type results struct {
	mu  sync.Mutex
	all []history.Result
}

func (r *results) sink(rs []history.Result) {
	r.mu.Lock()
	r.all = append(r.all, rs...)
	r.mu.Unlock()
}

// TestReopenKeepsHistoryAndDedup: after a restart, sequence numbers
// continue where they stopped and a client re-sending a stored message
// gets the original back instead of a copy.
func TestReopenKeepsHistoryAndDedup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	ctx := context.Background()
	var first results
	l, err := Open(path, first.sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := l.Append(&history.Request{Room: "general", Sender: "alice", ID: fmt.Sprint(i), Text: fmt.Sprint("m", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	var second results
	l, err = Open(path, second.sink, Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_ = l.Append(&history.Request{Room: "general", Sender: "ALICE", ID: "9", Text: "re-sent"})
	_ = l.Append(&history.Request{Room: "general", Sender: "alice", ID: "10", Text: "new"})
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(second.all) != 2 {
		t.Fatalf("%d results", len(second.all))
	}
	if r := second.all[0]; !r.Duplicate || r.Msg.Seq != 10 || r.Msg.Text != "m9" {
		t.Errorf("re-send after restart: %+v", r)
	}
	if r := second.all[1]; r.Duplicate || r.Msg.Seq != 11 {
		t.Errorf("new message after restart: %+v", r)
	}
	msgs, err := l.Since(ctx, "general", 0, 100)
	if err != nil || len(msgs) != 11 {
		t.Fatalf("%d messages after restart (%v), want 11", len(msgs), err)
	}
}

func TestOpenRejectsBadOptionsAndNewerSchema(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "a.db"), func([]history.Result) {}, Options{Synchronous: "sometimes"}); err == nil {
		t.Error("accepted synchronous=sometimes")
	}
	path := filepath.Join(dir, "b.db")
	l, err := Open(path, func([]history.Result) {}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.write.Exec("PRAGMA user_version = " + fmt.Sprint(schemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := Open(path, func([]history.Result) {}, Options{}); err == nil {
		t.Error("opened a database with a newer schema")
	}
}

func BenchmarkAppend(b *testing.B) {
	done := make(chan struct{}, 1024)
	l, err := Open(filepath.Join(b.TempDir(), "chat.db"), func(rs []history.Result) {
		for range rs {
			done <- struct{}{}
		}
	}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for i := 0; i < b.N; i++ {
			_ = l.Append(&history.Request{Room: "general", Sender: "alice", ID: fmt.Sprint(i), Text: "hello, world"})
		}
	}()
	for i := 0; i < b.N; i++ {
		<-done
	}
}
