// Command server is the chat server: it accepts chat clients over TCP and
// WebSocket, serves the web client to browsers, keeps rooms and presence,
// and stores history in SQLite under its data directory.
//
//	go run ./server -tcp :7878 -http :8080 -data ./chat-data
//
// With -nats it is a node of a cluster whose state lives in NATS
// JetStream; `chat-server migrate` copies a single server into one.
//
// Every flag has an environment variable (-tcp is CHAT_TCP); -h lists them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"chat/assets"
	"chat/server/internal/cluster"
	"chat/server/internal/hub"
	"chat/server/internal/limit"
	"chat/server/internal/metrics"
	"chat/server/internal/proxy"
	"chat/server/internal/rooms"
	"chat/server/internal/session"
	"chat/server/internal/sqlite"
	"chat/server/internal/tlsconf"
	"chat/server/internal/transport"
	"chat/server/internal/web"
)

// natsGrace is how long a cluster node waits for a lost NATS connection to
// come back before it sends its clients elsewhere: a NATS server's
// failover takes well under it.
const natsGrace = 3 * time.Second

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole server; it returns the exit code. It stops when ctx is
// cancelled (by SIGINT or SIGTERM in main).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "migrate" {
		return migrate(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "backup" {
		return backup(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "restore" {
		return restore(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "audit" {
		return audit(ctx, args[1:], getenv, stdout, stderr)
	}
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
	if cfg.releaseName != "" {
		return releaseName(cfg, stdout, stderr)
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
	key, err := cfg.accessKey()
	if err != nil {
		return err
	}
	operToken, err := cfg.operatorToken()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.data, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if cfg.nats == "" {
		// One server per database: a second one, or a restore, is refused
		// while this one runs. Released after the stores close (deferred
		// first, so it runs last).
		unlock, err := lockData(cfg.data, "chat-server")
		switch {
		case errors.Is(err, errDataLocked):
			return fmt.Errorf("another chat server or a restore is using %s (%w); stop it first", cfg.data, err)
		case err != nil:
			// A file system without flock: serve anyway; only restore's
			// check for a running server is lost.
			log.Warn("cannot lock the data directory: restore will not see that this server runs", "err", err)
		default:
			defer unlock()
		}
	}
	certs, err := tlsconf.New(tlsconf.Options{CertFile: cfg.tlsCert, KeyFile: cfg.tlsKey,
		ACMEDomains: list(cfg.acmeDomains), ACMEEmail: cfg.acmeEmail, ACMEDirectory: cfg.acmeDirectory,
		ACMECache: filepath.Join(cfg.data, "acme"), Logger: log})
	if err != nil {
		return err
	}
	st, err := openStores(ctx, cfg, log)
	if err != nil {
		return err
	}
	// The registry exists even with -metrics off: counting costs next to
	// nothing, and one code path is simpler than two.
	met := metrics.New(version)
	// The session manager counts and logs limit hits, the hub's room
	// creation limits among them; it is made after the hub, before any
	// JOIN.
	var mgr *session.Manager
	limitHit := func(kind, remote, detail string) { mgr.LimitHit(kind, remote, detail) }
	h, err := hub.New(hub.Config{History: cfg.history, MaxRooms: cfg.maxRooms, MaxName: cfg.maxName, MaxRoom: cfg.maxRoom,
		Owners: st.owners, Inbox: st.inbox, Moderation: st.moderation, OperatorToken: operToken,
		CommitLatency: met.CommitLatency, Logger: log,
		Rooms: st.rooms, RoomCreate: rooms.Policy(cfg.roomCreate), RoomCreateKey: cfg.roomCreateKey,
		MaxServerRooms: cfg.maxServerRooms, CreateLimit: roomCreateLimit(cfg),
		RingBytes: cfg.cacheBytesRoom, CacheBytes: cfg.cacheBytesServer, LimitHit: limitHit,
		TypingMaxMembers: cfg.typingMaxMembers, Files: st.files}, st.node)
	if err != nil {
		st.close()
		return err
	}
	// Closed last: after the hub (shutdown, or a failed start below).
	defer st.close()
	log.Info("serving", "key_required", key != "", "operator_token", operToken != "")
	mgr = session.NewManager(session.Config{
		ServerName:         "chat-server/" + version,
		PingInterval:       cfg.ping,
		HandshakeTimeout:   cfg.handshake,
		QueueFrames:        cfg.queue,
		MaxFrame:           cfg.maxFrame,
		MaxText:            cfg.maxText,
		MaxName:            cfg.maxName,
		MaxRoom:            cfg.maxRoom,
		MaxRooms:           cfg.maxRooms,
		History:            cfg.history,
		Key:                key,
		RoomCreateKey:      cfg.roomCreateKey,
		MsgRate:            cfg.msgRate,
		MsgBurst:           cfg.msgBurst,
		FloodAfter:         cfg.floodAfter,
		IdleTimeout:        cfg.idleTimeout,
		Files:              st.files != nil,
		MaxUpload:          int64(cfg.maxUpload),
		FileRate:           float64(cfg.fileRate),
		MaxListed:          h.Config().MaxListed,
		PresenceBatchAbove: h.Config().PresenceBatchAbove,
		Poller:             newPoller(log),
		Logger:             log,
	}, func(m session.Member) session.Rooms { return h.Connect(m) })

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go st.refuseWhileUnhealthy(watchCtx, mgr, natsGrace)

	met.Watch(metrics.Sources{Hub: h.Stats, Queues: mgr.Queues, Limits: mgr.LimitHits, SlowCuts: mgr.SlowConsumerCuts,
		Store: st.storeSize(), NATS: st.natsStatus()})
	l, err := listen(cfg, log, mgr, certs, st, met)
	if err != nil {
		_ = h.Close()
		return err
	}
	if cfg.pprof != "" {
		if err := servePprof(cfg.pprof, log); err != nil {
			l.close()
			_ = h.Close()
			return err
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return shutdown(cfg, log, l, h, mgr)
		case err := <-l.failed:
			log.Error("listener failed", "err", err)
			return errors.Join(err, shutdown(cfg, log, l, h, mgr))
		case <-hup:
			// New certificate files take effect for new connections; the
			// ones open keep theirs.
			if certs == nil {
				log.Info("SIGHUP: no TLS certificate files to reload")
			} else if err := certs.Reload(); err != nil {
				log.Error("SIGHUP: keeping the old certificate", "err", err)
			}
		}
	}
}

// releaseName is -release-name: it frees a claimed name and exits. With
// -nats it frees it in the cluster.
func releaseName(cfg *config, stdout, stderr io.Writer) int {
	var release func(ctx context.Context, name string) (bool, error)
	if cfg.nats != "" {
		tlsConf, err := natsTLS(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "chat-server: %v\n", err)
			return 1
		}
		conn, err := cluster.Dial(context.Background(), cluster.Options{URLs: list(cfg.nats), Creds: cfg.natsCreds,
			TLS: tlsConf, Replicas: cfg.natsReplicas, Name: "chat-server -release-name"})
		if err != nil {
			fmt.Fprintf(stderr, "chat-server: %v\n", err)
			return 1
		}
		defer conn.Close()
		release = conn.Names().Release
	} else {
		path := filepath.Join(cfg.data, "chat.db")
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(stderr, "chat-server: no chat database in %s (use -data)\n", cfg.data)
			return 1
		}
		names, err := sqlite.OpenNames(path)
		if err != nil {
			fmt.Fprintf(stderr, "chat-server: %v\n", err)
			return 1
		}
		defer names.Close()
		release = names.Release
	}
	released, err := release(context.Background(), cfg.releaseName)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "chat-server: %v\n", err)
		return 1
	case !released:
		fmt.Fprintf(stderr, "chat-server: nobody has claimed the name %q\n", cfg.releaseName)
		return 1
	}
	fmt.Fprintf(stdout, "released the name %q: the next person to join with it claims it\n", cfg.releaseName)
	return 0
}

// listeners are the server's open ports.
type listeners struct {
	tcp      net.Listener // nil if disabled
	http     *http.Server // nil if disabled
	acme     *http.Server // ACME http-01 challenges; nil if disabled
	metrics  *http.Server // Prometheus /metrics; nil if disabled
	failed   chan error
	draining atomic.Bool
}

func listen(cfg *config, log *slog.Logger, mgr *session.Manager, certs *tlsconf.Source, st *stores, met *metrics.Metrics) (*listeners, error) {
	l := &listeners{failed: make(chan error, 4)}
	limits := limit.NewAddresses(cfg.connsPerIP, cfg.newConnsPerMin, !cfg.limitLoopback).WithMaxTracked(cfg.maxTracked)
	var files fs.FS = assets.Web()
	if cfg.webDir != "" {
		files = os.DirFS(cfg.webDir)
	}
	if cfg.trusted.Any() {
		log.Info("client addresses from trusted proxies", "trusted_proxies", cfg.trusted.String())
	}
	fail := func(err error) (*listeners, error) {
		l.close()
		return nil, err
	}
	healthFrom, err := cfg.healthzPrefixes()
	if err != nil {
		return fail(err)
	}
	if cfg.http != "" {
		handler, err := web.New(web.Options{
			Files:     files,
			Icon:      assets.Icon(),
			WebSocket: transport.WebSocketHandler(met.Start(metrics.WebSocket, mgr.Start), list(cfg.allowedOrigins), limits, mgr.LimitHit, log),
			Health: func() web.Health {
				return web.Health{Version: version, Connections: mgr.Count(), Draining: l.draining.Load(), NATS: st.natsHealth()}
			},
			HealthFrom: healthFrom,
			Logger:     log,
		})
		if err != nil {
			return fail(err)
		}
		ln, err := net.Listen("tcp", cfg.http)
		if err != nil {
			return fail(err)
		}
		l.http = &http.Server{Handler: proxy.Handler(cfg.trusted, handler), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
		scheme := "http"
		if certs != nil {
			l.http.TLSConfig = certs.Config("h2", "http/1.1")
			scheme = "https"
		}
		log.Info("listening", "transport", scheme, "addr", ln.Addr().String())
		go func() {
			var err error
			if certs != nil {
				err = l.http.ServeTLS(ln, "", "")
			} else {
				err = l.http.Serve(ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				l.failed <- err
			}
		}()
	}
	if cfg.acmeHTTP != "" {
		ln, err := net.Listen("tcp", cfg.acmeHTTP)
		if err != nil {
			return fail(err)
		}
		l.acme = &http.Server{Handler: certs.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
		log.Info("listening", "transport", "acme-http", "addr", ln.Addr().String())
		go func() {
			if err := l.acme.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				l.failed <- err
			}
		}()
	}
	if cfg.tcp != "" {
		ln, err := net.Listen("tcp", cfg.tcp)
		if err != nil {
			return fail(err)
		}
		l.tcp = ln
		opts := transport.TCPOptions{Limits: limits, HandshakeTimeout: cfg.handshake, Refused: mgr.LimitHit, Logger: log,
			Trusted: cfg.trusted}
		name := metrics.TCP
		if certs != nil {
			opts.TLS = certs.Config()
			name = metrics.TLS
		}
		log.Info("listening", "transport", name, "addr", ln.Addr().String())
		start := met.Start(name, mgr.Start)
		go func() {
			if err := transport.ServeTCP(ln, start, opts); err != nil {
				l.failed <- err
			}
		}()
	}
	if cfg.metrics != "" {
		ln, err := net.Listen("tcp", cfg.metrics)
		if err != nil {
			return fail(fmt.Errorf("-metrics: %w", err))
		}
		l.metrics = &http.Server{Handler: met.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
		log.Info("listening", "transport", "metrics", "addr", ln.Addr().String())
		go func() {
			if err := l.metrics.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				l.failed <- err
			}
		}()
	}
	return l, nil
}

// close stops accepting new connections on every listener.
func (l *listeners) close() {
	l.draining.Store(true)
	if l.tcp != nil {
		_ = l.tcp.Close()
	}
	for _, srv := range []*http.Server{l.http, l.acme, l.metrics} {
		if srv != nil {
			// Sessions upgraded to WebSocket are not the HTTP server's any
			// more: the session manager tells and closes them.
			_ = srv.Close()
		}
	}
}

// shutdown stops accepting, stores and acknowledges every message already
// accepted, tells each client the server is restarting, and closes the
// database. It takes at most cfg.shutdownTimeout plus the final flush.
func shutdown(cfg *config, log *slog.Logger, l *listeners, h *hub.Hub, mgr *session.Manager) error {
	start := time.Now()
	log.Info("shutting down", "connections", mgr.Count())
	l.close()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		log.Error("flushing history", "err", err)
	}
	if err := mgr.Shutdown(ctx); err != nil {
		log.Warn("clients still connected at the deadline were cut off", "err", err)
	}
	if err := h.Close(); err != nil {
		return fmt.Errorf("closing the hub: %w", err)
	}
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// servePprof serves the runtime profiles on a loopback address only: they
// reveal the program's internals and cost CPU when asked for.
func servePprof(addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("listening", "transport", "pprof", "addr", ln.Addr().String())
	go func() { _ = http.Serve(ln, mux) }()
	return nil
}

// newPoller returns the poller that holds idle connections without a
// goroutine each, or nil where there is none (then they keep one).
func newPoller(log *slog.Logger) session.Poller {
	p, err := transport.NewPoller()
	if err != nil {
		log.Info("idle connections keep a goroutine each", "reason", err)
		return nil
	}
	return p
}
