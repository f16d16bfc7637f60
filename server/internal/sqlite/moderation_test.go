package sqlite

import (
	"path/filepath"
	"testing"

	"chat/server/internal/history"
	"chat/server/internal/moderation"
	"chat/server/internal/moderation/moderationtest"
)

func TestModerationConformance(t *testing.T) {
	moderationtest.Run(t, func(t *testing.T, maxAudit int) (moderation.Store, history.Log) {
		path := filepath.Join(t.TempDir(), "chat.db")
		log, err := Open(path, func([]history.Result) {}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { log.Close() })
		m, err := OpenModeration(path, ModerationOptions{MaxAudit: maxAudit})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m, log
	})
}
