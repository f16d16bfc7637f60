package main

import (
	"context"
	"fmt"
	"io"

	"chat/protocol"
	"chat/server/internal/cluster"
)

// auditCluster is `chat-server audit -nats URLS`: it prints the newest n
// entries of the cluster's audit log (stream CHAT_AUDIT), of room only
// if room is not empty.
func auditCluster(ctx context.Context, cfg *config, room string, n int, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "chat-server audit: %v\n", err)
		return 1
	}
	tlsConf, err := natsTLS(cfg)
	if err != nil {
		return fail(err)
	}
	dialCtx, cancel := context.WithTimeout(ctx, clusterDialWait)
	defer cancel()
	conn, err := cluster.Dial(dialCtx, cluster.Options{URLs: list(cfg.nats), Creds: cfg.natsCreds, TLS: tlsConf, Name: "chat-server audit"})
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	// MaxAudit 0: read with the limit the servers set.
	store, err := conn.Moderation(dialCtx, cluster.ModerationOptions{})
	if err != nil {
		return fail(err)
	}
	key := ""
	if room != "" {
		key = protocol.Key(room)
	}
	entries, err := store.AuditLog(ctx, key, n)
	if err != nil {
		return fail(err)
	}
	printAudit(entries, stdout, stderr)
	return 0
}
