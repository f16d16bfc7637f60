package sqlite

import (
	"path/filepath"
	"testing"

	"chat/server/internal/history"
	"chat/server/internal/inbox"
	"chat/server/internal/inbox/inboxtest"
)

func TestInboxConformance(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, maxMentions int) (inbox.Store, history.Log) {
		path := filepath.Join(t.TempDir(), "chat.db")
		log, err := Open(path, func([]history.Result) {}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { log.Close() })
		x, err := OpenInbox(path, InboxOptions{MaxMentions: maxMentions})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Close() })
		return x, log
	})
}
