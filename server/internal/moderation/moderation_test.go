package moderation_test

import (
	"testing"

	"chat/server/internal/history"
	"chat/server/internal/moderation"
	"chat/server/internal/moderation/moderationtest"
)

// TestMemoryConformance runs the suite on Memory, which redacts no
// history of its own.
func TestMemoryConformance(t *testing.T) {
	moderationtest.Run(t, func(t *testing.T, maxAudit int) (moderation.Store, history.Log) {
		return moderation.NewMemory(nil, maxAudit), nil
	})
}
