// Command server is the chat server: it accepts chat clients over TCP,
// keeps rooms and presence, and stores history in SQLite under its data
// directory.
//
//	go run ./server -tcp :7878 -data ./chat-data
//
// Every flag has an environment variable (-tcp is CHAT_TCP); -h lists them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"chat/server/internal/history"
	"chat/server/internal/hub"
	"chat/server/internal/session"
	"chat/server/internal/sqlite"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], defaultGetenv, os.Stdout, os.Stderr))
}

// run is the whole server; it returns the exit code. It stops when ctx is
// cancelled (by SIGINT or SIGTERM in main).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "chat-server: %v\n", err)
		return 2
	}
	if cfg.version {
		fmt.Fprintf(stdout, "chat-server %s\n", version)
		return 0
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "chat-server: %v\n", err)
		return 2
	}
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("server stopped", "err", err)
		fmt.Fprintf(stderr, "chat-server: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(cfg *config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return nil, fmt.Errorf("-log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func serve(ctx context.Context, cfg *config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.data, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	dbPath := filepath.Join(cfg.data, "chat.db")
	h, err := hub.New(hub.Config{History: cfg.history, MaxRooms: cfg.maxRooms, Logger: log},
		func(sink history.Sink) (history.Log, error) {
			return sqlite.Open(dbPath, sink, sqlite.Options{Synchronous: cfg.sync})
		})
	if err != nil {
		return err
	}
	mgr := session.NewManager(session.Config{
		ServerName:       "chat-server/" + version,
		PingInterval:     cfg.ping,
		HandshakeTimeout: cfg.handshake,
		QueueFrames:      cfg.queue,
		MaxFrame:         cfg.maxFrame,
		MaxText:          cfg.maxText,
		MaxName:          cfg.maxName,
		MaxRoom:          cfg.maxRoom,
		MaxRooms:         cfg.maxRooms,
		History:          cfg.history,
		Logger:           log,
	}, func(m session.Member) session.Rooms { return h.Connect(m) })

	ln, err := net.Listen("tcp", cfg.tcp)
	if err != nil {
		_ = h.Close()
		return err
	}
	log.Info("listening", "transport", "tcp", "addr", ln.Addr().String(), "data", dbPath, "version", version)
	served := make(chan error, 1)
	go func() { served <- mgr.ServeTCP(ln) }()

	select {
	case <-ctx.Done():
	case err := <-served:
		log.Error("listener failed", "err", err)
	}
	return shutdown(cfg, log, ln, h, mgr)
}

// shutdown stops accepting, stores and acknowledges every message already
// accepted, tells each client the server is restarting, and closes the
// database. It takes at most cfg.shutdownTimeout plus the final flush.
func shutdown(cfg *config, log *slog.Logger, ln net.Listener, h *hub.Hub, mgr *session.Manager) error {
	start := time.Now()
	log.Info("shutting down", "connections", mgr.Count())
	_ = ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		log.Error("flushing history", "err", err)
	}
	if err := mgr.Shutdown(ctx); err != nil {
		log.Warn("clients still connected at the deadline were cut off", "err", err)
	}
	if err := h.Close(); err != nil {
		return fmt.Errorf("closing history: %w", err)
	}
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return nil
}
