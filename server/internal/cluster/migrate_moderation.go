package cluster

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
)

// copyModeration copies a single server's moderation (schema version 6)
// into the cluster: each room's state into chat-moderation, unless the
// cluster has one for the room already (a re-run: the same; or set
// since by a running node, which then stays), and the audit log into
// CHAT_AUDIT, oldest first, only if the cluster's log is empty (a re-run
// must not copy it twice). Deleted messages need nothing: their texts
// are empty in the source, and are copied so.
func copyModeration(ctx context.Context, tx *sql.Tx, c *Conn, st *Stats, log *slog.Logger) error {
	rows, err := tx.QueryContext(ctx, "SELECT room, state FROM moderation ORDER BY room")
	if err != nil {
		return fmt.Errorf("cluster: migrate: moderation: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var room string
		var state []byte
		if err := rows.Scan(&room, &state); err != nil {
			return fmt.Errorf("cluster: migrate: moderation: %w", err)
		}
		if _, err := c.moderation.Create(ctx, Token(room), state); err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				return fmt.Errorf("cluster: migrate: the moderation of room %q: %w", room, err)
			}
			if cur, _, err := c.leaderGet(ctx, c.moderation, Token(room)); err == nil && !bytes.Equal(cur, state) {
				log.Warn("the cluster has another moderation state for a room: kept", "room", room)
			}
			continue
		}
		st.ModeratedRooms++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cluster: migrate: moderation: %w", err)
	}

	mod, err := c.Moderation(ctx, ModerationOptions{})
	if err != nil {
		return fmt.Errorf("cluster: migrate: %w", err)
	}
	info, err := mod.audit.Info(ctx)
	if err != nil {
		return fmt.Errorf("cluster: migrate: the audit log: %w", err)
	}
	if info.State.Msgs > 0 {
		log.Info("the cluster has an audit log already: the source's is not copied", "entries", info.State.Msgs)
		return nil
	}
	arows, err := tx.QueryContext(ctx, "SELECT room, entry FROM audit ORDER BY id")
	if err != nil {
		return fmt.Errorf("cluster: migrate: the audit log: %w", err)
	}
	defer arows.Close()
	// Published without waiting for each acknowledgement, a window of
	// auditWindow at a time, each checked.
	var pending []jetstream.PubAckFuture
	settle := func() error {
		for _, f := range pending {
			select {
			case <-f.Ok():
				st.AuditEntries++
			case err := <-f.Err():
				return fmt.Errorf("cluster: migrate: the audit log: %w", err)
			case <-ctx.Done():
				return fmt.Errorf("cluster: migrate: the audit log: %w", ctx.Err())
			}
		}
		pending = pending[:0]
		return nil
	}
	for arows.Next() {
		var room string
		var entry []byte
		if err := arows.Scan(&room, &entry); err != nil {
			return fmt.Errorf("cluster: migrate: the audit log: %w", err)
		}
		f, err := c.js.PublishAsync(AuditSubject+auditToken(room), entry)
		if err != nil {
			return fmt.Errorf("cluster: migrate: the audit log: %w", err)
		}
		if pending = append(pending, f); len(pending) == auditWindow {
			if err := settle(); err != nil {
				return err
			}
		}
	}
	if err := arows.Err(); err != nil {
		return fmt.Errorf("cluster: migrate: the audit log: %w", err)
	}
	return settle()
}

// auditWindow bounds the audit entries a migration has in flight (below
// nats.go's 4000, past which publishing stalls).
const auditWindow = 1000
