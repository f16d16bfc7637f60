package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"chat/server/internal/cluster"
	"chat/server/internal/sqlite"
)

// dialCluster connects a command (backup, restore) to the cluster's NATS.
func dialCluster(ctx context.Context, cfg *config, name string, stderr io.Writer) (*cluster.Conn, error) {
	tlsConf, err := natsTLS(cfg)
	if err != nil {
		return nil, err
	}
	return cluster.Dial(ctx, cluster.Options{URLs: list(cfg.nats), Creds: cfg.natsCreds, TLS: tlsConf,
		Name: name, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
}

// backupCluster writes the cluster's rooms, messages (those operators
// deleted in place, without text), names, read markers, mentions and
// moderation (room states, the audit log) into a backup file of the
// single server's format (one SQLite file, which `restore` takes in
// either mode). The chat nodes keep serving meanwhile: the messages are
// those stored when it starts.
func backupCluster(ctx context.Context, cfg *config, file string, force bool, stdout, stderr io.Writer) int {
	if !force {
		if _, err := os.Lstat(file); err == nil {
			fmt.Fprintf(stderr, "chat-server backup: %s exists; give -force to replace it, or another file name\n", file)
			return 1
		}
	}
	start := time.Now()
	conn, err := dialCluster(ctx, cfg, "chat-server backup", stderr)
	if err != nil {
		fmt.Fprintf(stderr, "chat-server backup: %v\n", err)
		return 1
	}
	defer conn.Close()
	tmp, err := sqlite.TempFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "chat-server backup: %v\n", err)
		return 1
	}
	defer sqlite.RemoveDB(tmp) // nothing once Place renamed it
	w, err := sqlite.Create(ctx, tmp)
	if err != nil {
		fmt.Fprintf(stderr, "chat-server backup: %v\n", err)
		return 1
	}
	est, err := conn.Export(ctx, w)
	if err != nil {
		w.Abort()
		fmt.Fprintf(stderr, "chat-server backup: %v\n", err)
		return 1
	}
	// The shared files' content, beside the backup as a single server's
	// backup keeps it (FILE.files), and their records in the backup.
	fst, err := conn.ExportFiles(ctx, filesDirOf(file), w.Blob)
	if err != nil {
		w.Abort()
		fmt.Fprintf(stderr, "chat-server backup: the shared files: %v\n", err)
		return 1
	}
	if err := w.Close(); err != nil {
		fmt.Fprintf(stderr, "chat-server backup: writing %s: %v\n", tmp, err)
		return 1
	}
	st, err := sqlite.Place(ctx, tmp, file, force)
	if errors.Is(err, sqlite.ErrExists) {
		fmt.Fprintf(stderr, "chat-server backup: %s exists; give -force to replace it, or another file name\n", file)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "chat-server backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "backed up the cluster at %s to %s in %v: %s (%d unread mentions, %d deleted messages, %d moderated rooms, %d audit entries); integrity check ok\n",
		cfg.nats, file, time.Since(start).Round(time.Millisecond), st, est.Mentions, est.Deleted, est.ModeratedRooms, est.AuditEntries)
	if fst.Files > 0 {
		fmt.Fprintf(stdout, "shared files' content in %s: %d files (%d bytes)\n", filesDirOf(file), fst.Files, fst.Bytes)
	}
	return 0
}

// restoreCluster imports a backup file into a cluster whose stream holds
// no messages (a new NATS JetStream, or one whose CHAT stream was
// deleted), with a new history epoch. The chat nodes must be stopped:
// they read the epoch when they start.
func restoreCluster(ctx context.Context, cfg *config, file string, stdout, stderr io.Writer) int {
	if _, err := sqlite.Check(ctx, file); err != nil {
		fmt.Fprintf(stderr, "chat-server restore: cannot restore %s, nothing was changed: %v\n", file, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "chat-restore-")
	if err != nil {
		fmt.Fprintf(stderr, "chat-server restore: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The backup brought up to this server's schema, as Migrate reads it.
	db := filepath.Join(dir, "chat.db")
	if _, err := sqlite.Restore(ctx, file, db); err != nil {
		fmt.Fprintf(stderr, "chat-server restore: cannot restore %s, nothing was changed: %v\n", file, err)
		return 1
	}
	conn, err := dialCluster(ctx, cfg, "chat-server restore", stderr)
	if err != nil {
		fmt.Fprintf(stderr, "chat-server restore: %v\n", err)
		return 1
	}
	defer conn.Close()
	epoch, err := conn.RenewEpoch(ctx)
	if errors.Is(err, cluster.ErrNotEmpty) {
		fmt.Fprintf(stderr, "chat-server restore: the cluster at %s holds messages already; a restore goes into an empty cluster "+
			"(stop the chat servers, then delete the CHAT stream and the chat-* buckets, e.g. nats stream rm CHAT, or use a new NATS); nothing was changed\n", cfg.nats)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "chat-server restore: %v\n", err)
		return 1
	}
	stats, err := cluster.Migrate(ctx, db, conn, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintf(stderr, "chat-server restore: %v (the cluster holds part of the backup now: empty it as below and restore again)\n", err)
		return 1
	}
	fst, err := conn.ImportFiles(ctx, filesDirOf(file), cluster.FilesOptions{Limits: cfg.fileLimits()})
	if err != nil {
		fmt.Fprintf(stderr, "chat-server restore: the shared files from %s: %v (the messages are restored; run the restore's file step again by restoring into an emptied cluster)\n", filesDirOf(file), err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s into the cluster at %s: %d rooms, %d messages, %d claimed names, %d read markers, unread mentions of %d names\n",
		file, cfg.nats, stats.Rooms, stats.Messages, stats.Names, stats.Markers, stats.Mentions)
	if fst.Files > 0 {
		fmt.Fprintf(stdout, "shared files' content from %s: %d files (%d bytes)\n", filesDirOf(file), fst.Files, fst.Bytes)
	}
	fmt.Fprintf(stdout, "the cluster's history has a new epoch (%d): clients that resume reload their rooms' history\n", epoch)
	return 0
}
