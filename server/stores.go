package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"chat/protocol"
	"chat/server/internal/broker"
	"chat/server/internal/cluster"
	"chat/server/internal/files"
	"chat/server/internal/history"
	"chat/server/internal/hub"
	"chat/server/internal/inbox"
	"chat/server/internal/limit"
	"chat/server/internal/moderation"
	"chat/server/internal/rooms"
	"chat/server/internal/session"
	"chat/server/internal/sqlite"
)

// stores are what the hub keeps its state in: SQLite under -data on a
// single server, NATS JetStream in cluster mode.
type stores struct {
	owners hub.Owners
	rooms  rooms.Registry // which rooms exist
	inbox  inbox.Store
	// moderation keeps rooms' operators, bans, mutes, topics and the
	// audit log.
	moderation moderation.Store
	// files keeps shared files (issue 16); nil when the server takes none
	// (-max-upload 0).
	files files.Store
	// node attaches the hub to the broker.
	node func(broker.Handler) (broker.Broker, error)
	// nats is the cluster connection, nil on a single server.
	nats *cluster.Conn
	// natsState is the last health check's word on NATS (a string):
	// /healthz reads it rather than check, so that strangers polling it
	// cannot make the node write to JetStream.
	natsState atomic.Value
	// closers run in order by close, after the hub has closed.
	closers []func() error
	log     *slog.Logger
	dbPath  string // the SQLite database; "" in cluster mode
}

func (s *stores) close() {
	for _, c := range s.closers {
		if err := c(); err != nil {
			s.log.Error("closing storage", "err", err)
		}
	}
}

// openStores opens the single server's database or joins the cluster.
func openStores(ctx context.Context, cfg *config, log *slog.Logger) (*stores, error) {
	if cfg.nats != "" {
		return openCluster(ctx, cfg, log)
	}
	dbPath := filepath.Join(cfg.data, "chat.db")
	st := &stores{log: log, dbPath: dbPath}
	names, err := sqlite.OpenNamesWith(dbPath, sqlite.NamesOptions{Expiry: cfg.nameExpiry})
	if err != nil {
		return nil, err
	}
	roomSet, err := sqlite.OpenRooms(dbPath)
	if err != nil {
		names.Close()
		return nil, err
	}
	// Read markers and mentions; at most 1000 unread mentions per name.
	marks, err := sqlite.OpenInbox(dbPath, sqlite.InboxOptions{})
	if err != nil {
		names.Close()
		return nil, err
	}
	// Shared files: metadata in chat.db, content under -data/files. A
	// delete, a redaction or retention removing a message asks it to
	// collect the content no message carries any more.
	var fileStore *sqlite.Files
	kick := func() {}
	if cfg.maxUpload > 0 {
		fileStore, err = sqlite.OpenFiles(dbPath, cfg.data, sqlite.FilesOptions{Limits: cfg.fileLimits(), Synchronous: cfg.sync, CollectGrace: cfg.filesGrace(), Logger: log})
		if err != nil {
			marks.Close()
			roomSet.Close()
			names.Close()
			return nil, err
		}
		kick = fileStore.Kick
		st.files = fileStore
	}
	closeFiles := func() {
		if fileStore != nil {
			fileStore.Close()
		}
	}
	mod, err := sqlite.OpenModeration(dbPath, sqlite.ModerationOptions{MaxAudit: cfg.auditMax, Removed: kick})
	if err != nil {
		closeFiles()
		marks.Close()
		roomSet.Close()
		names.Close()
		return nil, err
	}
	// One node: the broker is the embedded store (SQLite history,
	// in-process subscriptions and presence).
	local, err := broker.NewLocal(func(sink history.Sink) (history.Log, error) {
		return sqlite.Open(dbPath, sink, sqlite.Options{Synchronous: cfg.sync, Retention: cfg.retention(), Logger: log, Removed: kick})
	}, broker.LocalOptions{})
	if err != nil {
		mod.Close()
		closeFiles()
		marks.Close()
		roomSet.Close()
		names.Close()
		return nil, err
	}
	st.owners, st.inbox, st.moderation, st.rooms = names, marks, mod, roomSet
	st.node = func(h broker.Handler) (broker.Broker, error) { return local.Node(h), nil }
	// The history last: after the hub (which closes its node) and the
	// name, room, inbox and moderation tables.
	st.closers = []func() error{names.Close, roomSet.Close, marks.Close, mod.Close, local.Close}
	if fileStore != nil {
		st.closers = append(st.closers, fileStore.Close)
	}
	log.Info("history open", "data", dbPath, "version", version)
	logRetention(log, cfg)
	return st, nil
}

// natsTLS is the TLS configuration for NATS from -nats-ca, -nats-cert
// and -nats-key (nil: none asked for; tls:// URLs still use TLS with the
// system's roots).
func natsTLS(cfg *config) (*tls.Config, error) {
	if cfg.natsCA == "" && cfg.natsCert == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.natsCA != "" {
		pem, err := os.ReadFile(cfg.natsCA)
		if err != nil {
			return nil, fmt.Errorf("-nats-ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-nats-ca %s: no PEM certificate in it", cfg.natsCA)
		}
	}
	if cfg.natsCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.natsCert, cfg.natsKey)
		if err != nil {
			return nil, fmt.Errorf("-nats-cert/-nats-key: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// nodeName is -node, or the host name.
func nodeName(cfg *config) string {
	if cfg.node != "" {
		return cfg.node
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "chat"
}

// clusterDialWait bounds how long a starting node waits for NATS (and
// JetStream's leader election) before it gives up with an error: the
// servers of a cluster start in any order.
const clusterDialWait = time.Minute

func openCluster(ctx context.Context, cfg *config, log *slog.Logger) (*stores, error) {
	tlsConf, err := natsTLS(cfg)
	if err != nil {
		return nil, err
	}
	name := nodeName(cfg)
	opts := cluster.Options{URLs: list(cfg.nats), Creds: cfg.natsCreds, TLS: tlsConf, Replicas: cfg.natsReplicas,
		DedupWindow: cfg.natsDedup, NameExpiry: cfg.nameExpiry, Name: "chat-server " + name, Logger: log}
	keep := cfg.retention()
	opts.Retention = &keep
	dialCtx, cancel := context.WithTimeout(ctx, clusterDialWait)
	defer cancel()
	var conn *cluster.Conn
	for {
		conn, err = cluster.Dial(dialCtx, opts)
		if err == nil {
			break
		}
		var unknownCA x509.UnknownAuthorityError
		var badCert *tls.CertificateVerificationError
		if errors.As(err, &unknownCA) || errors.As(err, &badCert) {
			// Waiting will not change a certificate.
			return nil, fmt.Errorf("cluster mode: NATS's TLS certificate is not trusted (give its CA with -nats-ca): %w", err)
		}
		log.Warn("waiting for NATS", "nats", cfg.nats, "err", err)
		select {
		case <-dialCtx.Done():
			return nil, fmt.Errorf("cluster mode: NATS at %s not usable within %v: %w", cfg.nats, clusterDialWait, err)
		case <-time.After(time.Second):
		}
	}
	st := &stores{log: log, nats: conn}
	st.natsState.Store("ok") // Dial just proved it
	st.owners = conn.Names()
	st.rooms = conn.Rooms()
	st.inbox = conn.Inbox(cluster.InboxOptions{})
	// Rooms' moderation in bucket chat-moderation, redactions in
	// chat-redactions, the audit log in stream CHAT_AUDIT (its limit is
	// this node's -audit-max).
	mod, err := conn.Moderation(dialCtx, cluster.ModerationOptions{MaxAudit: cfg.auditMax})
	if err != nil {
		conn.Close()
		return nil, err
	}
	st.moderation = mod
	st.closers = []func() error{conn.Close}
	searchDir := clusterSearchDir(cfg, name, log)
	if searchDir != "" {
		unlock, err := lockData(searchDir, "chat-server node "+name)
		if err != nil {
			// Another node on this host with the same -data and -node:
			// an index of its own, built again from the stream at each
			// start, rather than two writers on one file.
			log.Warn("search index directory in use; this node keeps its index in a temporary directory", "dir", searchDir, "err", err)
			searchDir = ""
		} else {
			st.closers = append(st.closers, func() error { unlock(); return nil })
		}
	}
	// Shared files: content in the object store chat-files, uploads and
	// quotas in JetStream, so any node serves any file and resumes any
	// upload; this node's copies of files being read are cached under
	// -data (a temporary directory if it cannot be made).
	var fileStore *cluster.FileStore
	if cfg.maxUpload > 0 {
		fileStore, err = conn.Files(dialCtx, cluster.FilesOptions{Limits: cfg.fileLimits(), CacheDir: clusterCacheDir(searchDir, log),
			CollectGrace: cfg.filesGrace()})
		if err != nil {
			st.close()
			return nil, err
		}
		st.files = fileStore
		st.closers = append([]func() error{fileStore.Close}, st.closers...)
	}
	st.node = func(h broker.Handler) (broker.Broker, error) {
		return conn.Node(h, cluster.NodeOptions{Logger: log.With("node", name), SearchDir: searchDir, Files: fileStore})
	}
	log.Info("cluster mode", "node", name, "nats", cfg.nats, "epoch", conn.Epoch(), "version", version)
	logRetention(log, cfg)
	return st, nil
}

// clusterSearchDir is where a cluster node keeps its search index (the
// cluster's DESIGN.md, "Search"): in the data directory, one per node
// name, so the index survives restarts and catches up from where it was;
// "" when it cannot be made (then a temporary one).
func clusterSearchDir(cfg *config, node string, log *slog.Logger) string {
	safe := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return '_'
	}, node)
	dir := filepath.Join(cfg.data, "search-"+strings.TrimLeft(safe, "."))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		log.Warn("cannot make the search index directory; this node keeps its index in a temporary directory", "dir", dir, "err", err)
		return ""
	}
	return dir
}

// clusterCacheDir is where a cluster node keeps copies of the files it
// serves: beside its search index directory (which this node has
// locked), one per node name; "" (a temporary directory) without one.
func clusterCacheDir(searchDir string, log *slog.Logger) string {
	if searchDir == "" {
		return ""
	}
	dir := filepath.Join(filepath.Dir(searchDir), "files-cache-"+strings.TrimPrefix(filepath.Base(searchDir), "search-"))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		log.Warn("cannot make the file cache directory; this node caches files in a temporary directory", "dir", dir, "err", err)
		return ""
	}
	return dir
}

// natsHealth is /healthz's word on NATS: "" on a single server, "ok", or
// what is wrong.
func (s *stores) natsHealth() string {
	if s.nats == nil {
		return ""
	}
	v, _ := s.natsState.Load().(string)
	return v
}

// storeSize returns the metrics' measure of the message store: the size
// of the SQLite files on a single server, of the message stream in
// cluster mode (one JetStream request per scrape, bounded by
// healthTimeout). Messages are not counted: SQLite would read its table,
// and the stream holds a deduplication marker beside each message.
func (s *stores) storeSize() func() (bytes int64, ok bool) {
	if s.nats != nil {
		return func() (int64, bool) {
			ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
			defer cancel()
			_, bytes, err := s.nats.StreamSize(ctx)
			return int64(bytes), err == nil
		}
	}
	path := s.dbPath
	return func() (int64, bool) {
		var n int64
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(path + suffix); err == nil {
				n += fi.Size()
			}
		}
		return n, true
	}
}

// natsStatus returns the metrics' view of NATS, nil on a single server.
func (s *stores) natsStatus() func() (connected, healthy bool) {
	if s.nats == nil {
		return nil
	}
	return func() (bool, bool) { return s.nats.NATS().IsConnected(), s.natsHealth() == "ok" }
}

// healthTimeout bounds one health check of NATS: a JetStream without a
// majority answers nothing, and that is the answer.
const healthTimeout = 2 * time.Second

// refuseWhileUnhealthy turns clients away from this node while it cannot
// store messages (cluster mode without NATS or JetStream): they get
// `unavailable` and reconnect, to another node if they know one. A NATS
// server failing over takes the connection away for a moment, so the
// node waits grace before it turns anyone away. It returns when ctx ends.
func (s *stores) refuseWhileUnhealthy(ctx context.Context, mgr *session.Manager, grace time.Duration) {
	if s.nats == nil {
		return
	}
	t := time.NewTicker(grace / 4)
	defer t.Stop()
	var badSince time.Time
	refusing := false
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			hctx, cancel := context.WithTimeout(ctx, healthTimeout)
			err := s.nats.Healthy(hctx)
			cancel()
			if err != nil {
				s.natsState.Store(err.Error())
			} else {
				s.natsState.Store("ok")
			}
			switch {
			case err == nil:
				badSince = time.Time{}
				if refusing {
					refusing = false
					mgr.Accept()
					s.log.Info("NATS is back: accepting clients again")
				}
			case badSince.IsZero():
				badSince = now
			case !refusing && now.Sub(badSince) >= grace:
				refusing = true
				s.log.Error("NATS unusable: sending clients to other nodes", "err", err)
				mgr.Refuse(protocol.NewError(protocol.CodeUnavailable, "",
					"this server lost its storage (NATS); connect to another server of the cluster"))
			}
		}
	}
}

// logRetention says how much history the rooms keep: everything unless
// -retain-messages or -retain-age say otherwise.
func logRetention(log *slog.Logger, cfg *config) {
	keep := cfg.retention()
	if !keep.Enabled() {
		log.Info("history retention: every room keeps all its messages (-retain-messages, -retain-age)")
		return
	}
	log.Info("history retention", "messages_per_room", keep.Messages, "max_age", keep.Age)
}

// roomCreateLimit is the per-address limit on room creations: a burst of
// -new-rooms-per-hour, refilled over the hour (nil: no limit).
func roomCreateLimit(cfg *config) *limit.Events {
	if cfg.newRoomsPerHour == 0 {
		return nil
	}
	return limit.NewEvents(float64(cfg.newRoomsPerHour)/3600, cfg.newRoomsPerHour, cfg.maxTracked, !cfg.limitLoopback)
}
