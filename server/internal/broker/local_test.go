package broker_test

import (
	"path/filepath"
	"testing"
	"time"

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
