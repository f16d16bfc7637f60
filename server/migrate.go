package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"chat/server/internal/cluster"
)

// migrate is `chat-server migrate -from-sqlite DIR -nats URL`: it copies a
// single server's history, names, read markers and mentions into a
// cluster's NATS JetStream. Stop the single server first (its database
// must not change meanwhile). Running it again after an interruption
// finishes the copy; rooms already copied are skipped.
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chat-server migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := &config{}
	from := fs.String("from-sqlite", "", "the single server's data `directory` (holding chat.db)")
	fs.StringVar(&cfg.nats, "nats", "", "the cluster's NATS server `URLs`, comma-separated")
	fs.StringVar(&cfg.natsCreds, "nats-creds", "", "NATS credentials `file`")
	fs.StringVar(&cfg.natsCA, "nats-ca", "", "CA certificate `file` (PEM) of the NATS servers")
	fs.StringVar(&cfg.natsCert, "nats-cert", "", "client certificate `file` (PEM) for NATS")
	fs.StringVar(&cfg.natsKey, "nats-key", "", "private key `file` (PEM) for -nats-cert")
	fs.IntVar(&cfg.natsReplicas, "nats-replicas", 0, "copies JetStream keeps (0: 3 when NATS has 3+ servers, else 1)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chat-server migrate -from-sqlite DIR -nats URL[,URL...]\n\n"+
			"Copies a single server's history, names, read markers, mentions and shared files into cluster mode's NATS JetStream.\n"+
			"Stop the single server first. Re-running it after an interruption finishes the copy.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *from == "" || cfg.nats == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "chat-server migrate: give -from-sqlite DIR and -nats URL (and nothing else)")
		return 2
	}
	db := filepath.Join(*from, "chat.db")
	if _, err := os.Stat(db); err != nil {
		fmt.Fprintf(stderr, "chat-server migrate: no chat database in %s (%v)\n", *from, err)
		return 1
	}
	// A server still writing would add messages the copy misses.
	unlock, err := lockData(*from, "chat-server migrate")
	if errors.Is(err, errDataLocked) {
		fmt.Fprintf(stderr, "chat-server migrate: a chat server is running on %s (%v); stop it first, then migrate\n", *from, err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "chat-server migrate: %v\n", err)
		return 1
	}
	defer unlock()
	tlsConf, err := natsTLS(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "chat-server migrate: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	conn, err := cluster.Dial(ctx, cluster.Options{URLs: list(cfg.nats), Creds: cfg.natsCreds, TLS: tlsConf,
		Replicas: cfg.natsReplicas, Name: "chat-server migrate", Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "chat-server migrate: %v\n", err)
		return 1
	}
	defer conn.Close()
	stats, err := cluster.Migrate(ctx, db, conn, log)
	if err != nil {
		fmt.Fprintf(stderr, "chat-server migrate: %v\n", err)
		return 1
	}
	// The shared files' content (DATA/files) into the object store; their
	// messages came with the history. Idempotent, like the rest.
	fst, err := conn.ImportFiles(ctx, filepath.Join(*from, "files"), cluster.FilesOptions{Limits: cfg.fileLimits()})
	if err != nil {
		fmt.Fprintf(stderr, "chat-server migrate: the shared files: %v (run migrate again to finish)\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "migrated %s into NATS at %s: %v\n", db, cfg.nats, stats)
	if fst.Files > 0 {
		fmt.Fprintf(stdout, "shared files: %d files (%d bytes) into the object store chat-files\n", fst.Files, fst.Bytes)
	}
	return 0
}
