package platform

import (
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestShortenCutsAtACharacter(t *testing.T) {
	if got := shorten("short"); got != "short" {
		t.Fatalf("shorten(short) = %q", got)
	}
	long := strings.Repeat("é", maxBody) // two bytes each
	got := shorten(long)
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || len(got) > maxBody+len("…") {
		t.Fatalf("shorten gave %d bytes, valid %v: %q", len(got), utf8.ValidString(got), got)
	}
}

// TestNotifyNeverBlocks: a notification service that hangs holds up
// neither the caller nor, past the backlog, memory.
func TestNotifyNeverBlocks(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	shown := make(chan string, 1)
	b := newBackground(slog.New(slog.DiscardHandler), func(title, body string) error {
		shown <- title
		<-stuck
		return nil
	})
	for i := range 10 * notifyBacklog {
		b.Notify("n", string(rune('a'+i%26)))
	}
	if got := <-shown; got != "n" {
		t.Fatalf("shown %q", got)
	}
	for range notifyBacklog { // the service holds one: fill its place
		b.Notify("m", "x")
	}
	if n := len(b.queue); n != notifyBacklog {
		t.Fatalf("%d waiting, want the backlog's %d", n, notifyBacklog)
	}
}
