package broker_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/broker/brokertest"
	"chat/server/internal/history"
	"chat/server/internal/sqlite"
)

// opener returns a brokertest.Opener for Local stores over logs from open.
func opener(open func(t *testing.T, sink history.Sink) (history.Log, error)) brokertest.Opener {
	return func(t *testing.T, handlers ...broker.Handler) []broker.Broker {
		store, err := broker.NewLocal(func(sink history.Sink) (history.Log, error) { return open(t, sink) }, broker.LocalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nodes := make([]broker.Broker, len(handlers))
		for i, h := range handlers {
			nodes[i] = store.Node(h)
		}
		t.Cleanup(func() {
			for _, n := range nodes {
				n.Close()
			}
			store.Close()
		})
		return nodes
	}
}

func TestLocalOverMemory(t *testing.T) {
	brokertest.Run(t, opener(func(_ *testing.T, sink history.Sink) (history.Log, error) {
		return history.NewMemory(sink), nil
	}))
}

func TestLocalOverSQLite(t *testing.T) {
	brokertest.Run(t, opener(func(t *testing.T, sink history.Sink) (history.Log, error) {
		return sqlite.Open(filepath.Join(t.TempDir(), "chat.db"), sink, sqlite.Options{})
	}))
}

func TestLocalOverSQLiteRetention(t *testing.T) {
	brokertest.RunRetention(t, func(t *testing.T, rule history.Retention, handlers ...broker.Handler) []broker.Broker {
		return opener(func(t *testing.T, sink history.Sink) (history.Log, error) {
			// Checked every 50 ms, so the suite's expiry shows at once.
			return sqlite.Open(filepath.Join(t.TempDir(), "chat.db"), sink,
				sqlite.Options{Retention: rule, RetentionEvery: 50 * time.Millisecond})
		})(t, handlers...)
	})
}

// plainLog is a history.Log without a search of its own.
type plainLog struct{ history.Log }

// TestLocalSearchesThroughItsLog: Local's Search is its log's, and
// ErrNoSearch when the log cannot search.
func TestLocalSearchesThroughItsLog(t *testing.T) {
	ctx := t.Context()
	for _, searchable := range []bool{true, false} {
		store, err := broker.NewLocal(func(sink history.Sink) (history.Log, error) {
			if searchable {
				return history.NewMemory(sink), nil
			}
			return plainLog{history.NewMemory(sink)}, nil
		}, broker.LocalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		node := store.Node(nopHandler{})
		if err := node.Publish(&broker.Publication{Room: "r", Sender: "alice", ID: "1", Text: "findable words"}); err != nil {
			t.Fatal(err)
		}
		if err := node.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		hits, _, err := node.Search(ctx, history.Query{Rooms: []string{"r"}, Text: "findable"})
		switch {
		case searchable && (err != nil || len(hits) != 1 || hits[0].Text != "findable words"):
			t.Errorf("search through a Memory: %+v, %v", hits, err)
		case !searchable && !errors.Is(err, broker.ErrNoSearch):
			t.Errorf("search through a log without one: %+v, %v; want ErrNoSearch", hits, err)
		}
		node.Close()
		store.Close()
	}
}

type nopHandler struct{}

func (nopHandler) Published([]broker.Result)                         {}
func (nopHandler) Messages([]protocol.Msg)                           {}
func (nopHandler) PresenceChanged(string, []protocol.PresenceChange) {}
func (nopHandler) Noted(*broker.Note)                                {}
