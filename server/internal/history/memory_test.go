package history_test

import (
	"testing"

	"chat/server/internal/history"
	"chat/server/internal/history/historytest"
)

func TestMemoryConformance(t *testing.T) {
	historytest.Run(t, func(t *testing.T, sink history.Sink) history.Log {
		m := history.NewMemory(sink)
		t.Cleanup(func() { _ = m.Close() })
		return m
	})
}
