package inbox_test

import (
	"testing"

	"chat/server/internal/history"
	"chat/server/internal/inbox"
	"chat/server/internal/inbox/inboxtest"
)

func TestMemoryConformance(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, maxMentions int) (inbox.Store, history.Log) {
		log := history.NewMemory(func([]history.Result) {})
		t.Cleanup(func() { log.Close() })
		return inbox.NewMemory(log.Heads, maxMentions), log
	})
}
