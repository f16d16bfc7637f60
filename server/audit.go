package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"chat/protocol"
	"chat/server/internal/sqlite"
)

// audit is `chat-server audit [-room R] [-n N]`: it prints the newest
// entries of the moderation audit log of the server's database (-data, or
// CHAT_DATA), oldest first, one a line. It reads while a server runs.
func audit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chat-server audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "chat-data", "the server's data `directory` (env CHAT_DATA)")
	room := fs.String("room", "", "only this `room`'s entries")
	n := fs.Int("n", 100, "print the newest `N` entries")
	nats := fs.String("nats", "", "cluster mode: NATS server `URLs` (env CHAT_NATS)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chat-server audit [-data DIR] [-room ROOM] [-n N]\n\n"+
			"Prints the newest entries of the moderation audit log: who did what to whom, when (never message texts).\n\n")
		fs.PrintDefaults()
	}
	if v := getenv("CHAT_DATA"); v != "" {
		*data = v
	}
	if v := getenv("CHAT_NATS"); v != "" {
		*nats = v
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *n <= 0 {
		fmt.Fprintln(stderr, "chat-server audit: takes only -data, -room, -n (positive) and -nats")
		return 2
	}
	if *nats != "" {
		fmt.Fprintln(stderr, "chat-server audit: cluster mode keeps the audit log per node in memory in this version; read the servers' logs (msg=moderation)")
		return 1
	}
	path := filepath.Join(*data, "chat.db")
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(stderr, "chat-server audit: no chat database in %s (use -data)\n", *data)
		return 1
	}
	store, err := sqlite.OpenModeration(path, sqlite.ModerationOptions{})
	if err != nil {
		fmt.Fprintf(stderr, "chat-server audit: %v\n", err)
		return 1
	}
	defer store.Close()
	key := ""
	if *room != "" {
		key = protocol.Key(*room)
	}
	entries, err := store.AuditLog(ctx, key, *n)
	if err != nil {
		fmt.Fprintf(stderr, "chat-server audit: %v\n", err)
		return 1
	}
	for _, e := range entries {
		var b strings.Builder
		fmt.Fprintf(&b, "%s", time.UnixMilli(e.Time).UTC().Format(time.RFC3339))
		if e.Room != "" {
			fmt.Fprintf(&b, " room=%q", e.Room)
		}
		fmt.Fprintf(&b, " actor=%q remote=%s action=%s", e.Actor, e.Addr, e.Action)
		if e.Target != "" {
			fmt.Fprintf(&b, " target=%q", e.Target)
		}
		if e.Seq != 0 {
			fmt.Fprintf(&b, " seq=%d", e.Seq)
		}
		if e.Until != 0 {
			fmt.Fprintf(&b, " until=%s", time.UnixMilli(e.Until).UTC().Format(time.RFC3339))
		}
		if e.Detail != "" {
			fmt.Fprintf(&b, " detail=%q", e.Detail)
		}
		fmt.Fprintln(stdout, b.String())
	}
	if len(entries) == 0 {
		fmt.Fprintln(stderr, "chat-server audit: no entries")
	}
	return 0
}
