package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"chat/protocol"
	"chat/server/internal/files"
	"chat/server/internal/history"
	"chat/server/internal/proxy"
	"chat/server/internal/session"
)

// config is everything the server can be told, by flag or environment.
type config struct {
	tcp             string
	http            string
	allowedOrigins  string
	webDir          string
	pprof           string
	metrics         string
	healthzAllow    string
	tlsCert         string
	tlsKey          string
	acmeDomains     string
	acmeEmail       string
	acmeDirectory   string
	acmeHTTP        string
	key             string
	keyFile         string
	operToken       string
	operTokenFile   string
	auditMax        int
	msgRate         float64
	msgBurst        int
	floodAfter      time.Duration
	connsPerIP      int
	newConnsPerMin  int
	limitLoopback   bool
	trustedProxies  string
	trusted         *proxy.Trusted // parsed from trustedProxies by check
	idleTimeout     time.Duration
	releaseName     string
	data            string
	sync            string
	history         int
	retainMessages  int
	retainAge       time.Duration
	maxText         int
	maxName         int
	maxRoom         int
	maxRooms        int
	maxFrame        int
	queue           int
	ping            time.Duration
	handshake       time.Duration
	shutdownTimeout time.Duration
	logFormat       string
	logLevel        string
	version         bool

	// Cluster mode: the shared state lives in NATS JetStream.
	nats         string
	natsCreds    string
	natsCA       string
	natsCert     string
	natsKey      string
	natsReplicas int
	natsDedup    time.Duration
	node         string

	// Quotas.
	roomCreate       string
	roomCreateKey    string
	maxServerRooms   int
	newRoomsPerHour  int
	nameExpiry       time.Duration
	maxTracked       int
	cacheBytesRoom   int
	cacheBytesServer int

	// Acting on messages.
	typingMaxMembers int

	// Files (issue 16).
	maxUpload   byteSize
	uploadQuota byteSize
	uploadTotal byteSize
	fileRate    byteSize
	// collectGrace: how long content no message refers to stays (a backup
	// of the running server may still copy it); 0: none.
	collectGrace time.Duration
}

// byteSize is a flag of bytes: a number with an optional unit, 25MiB,
// 1GiB, 500MB, 64KB, or plain bytes (1048576).
type byteSize int64

func (b *byteSize) String() string {
	v := int64(*b)
	for _, u := range []struct {
		name string
		n    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v != 0 && v%u.n == 0 {
			return fmt.Sprintf("%d%s", v/u.n, u.name)
		}
	}
	return fmt.Sprint(v)
}

func (b *byteSize) Set(s string) error {
	v, err := parseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(v)
	return nil
}

// sizeUnits are the units parseSize knows: binary (KiB, MiB, GiB, TiB)
// and decimal (KB, MB, GB, TB), case-insensitive.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"k": 1000, "kb": 1000, "m": 1000_000, "mb": 1000_000, "g": 1000_000_000, "gb": 1000_000_000, "t": 1000_000_000_000, "tb": 1000_000_000_000,
}

// parseSize reads a size in bytes: a whole number and an optional unit.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if i == 0 || !ok {
		return 0, fmt.Errorf("%q is not a size: give bytes, or a number with KiB, MiB, GiB, KB, MB or GB (25MiB, 1GiB, 500MB)", s)
	}
	var n int64
	for _, c := range t[:i] {
		if n > (1<<62)/10 {
			return 0, fmt.Errorf("%q is too large", s)
		}
		n = n*10 + int64(c-'0')
	}
	if n > (1<<62)/unit {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * unit, nil
}

// actionFlags do one thing and exit instead of configuring the server. They
// are read from the command line only: a CHAT_VERSION left in the
// environment (a deployment's own version variable, say) must not turn a
// server start into "print the version", nor stop it with a parse error.
var actionFlags = map[string]bool{"version": true, "release-name": true}

// envName is the environment variable for a flag: -max-text is CHAT_MAX_TEXT.
func envName(flagName string) string {
	return "CHAT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags and, for flags not given, CHAT_* variables.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("chat-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.tcp, "tcp", ":7878", "TCP listen `address` for the apps; empty disables it")
	fs.StringVar(&c.http, "http", ":8080", "HTTP listen `address` for browsers (web client, WebSocket at /ws, /healthz); empty disables it")
	fs.StringVar(&c.allowedOrigins, "allowed-origins", "", "other web `origins` allowed to open WebSockets, comma-separated (host patterns like chat.example.com or *.example.com); the server's own origin is always allowed")
	fs.StringVar(&c.pprof, "pprof", "", "serve Go profiling (net/http/pprof) on this loopback `address`, e.g. 127.0.0.1:6060; off when empty")
	fs.StringVar(&c.metrics, "metrics", "", "serve Prometheus metrics at /metrics on this `address` (e.g. 127.0.0.1:9100, or :9100 behind a firewall); off when empty")
	fs.StringVar(&c.healthzAllow, "healthz-allow", "127.0.0.0/8,::1/128", "`addresses` (CIDR or single IP, comma-separated) that /healthz tells the version, connection count and NATS state; others get only the status")
	fs.StringVar(&c.webDir, "web", "", "serve the web client from this `directory` instead of the files built into the binary (for development)")
	fs.StringVar(&c.data, "data", "chat-data", "data `directory` (created if missing); history is in chat.db there")
	fs.StringVar(&c.sync, "sync", "full", "disk sync: full (an acknowledged message survives power loss) or normal (survives a crash, faster)")
	fs.IntVar(&c.history, "history", 100, "messages a client gets when it joins without a resume point")
	fs.IntVar(&c.retainMessages, "retain-messages", 0, "history retention: each room keeps at most its `N` newest messages, older ones are removed; 0: keep all")
	fs.DurationVar(&c.retainAge, "retain-age", 0, "history retention: messages older than this are removed (at least 1s); 0: keep them forever")
	fs.IntVar(&c.maxText, "max-text", protocol.DefaultMaxText, "longest message, in `bytes`")
	fs.IntVar(&c.maxName, "max-name", protocol.DefaultMaxName, "longest member name, in `bytes`")
	fs.IntVar(&c.maxRoom, "max-room", protocol.DefaultMaxRoom, "longest room name, in `bytes`")
	fs.IntVar(&c.maxRooms, "max-rooms", protocol.DefaultMaxRooms, "rooms one connection may be in")
	fs.IntVar(&c.maxFrame, "max-frame", protocol.DefaultMaxClientFrame, "longest frame accepted from clients, in `bytes`")
	fs.IntVar(&c.queue, "send-queue", 4096, "frames queued for a client before it is cut off as too slow")
	fs.DurationVar(&c.ping, "ping", 30*time.Second, "keepalive interval; silent connections are dropped after 1.5x this")
	fs.DurationVar(&c.handshake, "handshake-timeout", 10*time.Second, "time a new connection has to say HELLO")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "time given to clients to be told and disconnected on shutdown")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate `file` (PEM, full chain) for both listeners; re-read on SIGHUP")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS private key `file` (PEM) for -tls-cert")
	fs.StringVar(&c.acmeDomains, "acme-domain", "", "get certificates automatically (Let's Encrypt) for these `domains`, comma-separated; the HTTPS listener should be on port 443, or set -acme-http :80")
	fs.StringVar(&c.acmeEmail, "acme-email", "", "contact `address` for the ACME account (expiry warnings)")
	fs.StringVar(&c.acmeDirectory, "acme-directory", "", "ACME directory `URL` (default Let's Encrypt production)")
	fs.StringVar(&c.acmeHTTP, "acme-http", "", "also listen on this `address` (usually :80) for ACME http-01 challenges and redirects to https")
	fs.StringVar(&c.key, "key", "", "access `key` every client must present to join; empty: anyone may join")
	fs.StringVar(&c.keyFile, "key-file", "", "read the access key from this `file` instead (keeps it out of the process list)")
	fs.StringVar(&c.operToken, "operator-token", "", "`token` that makes a client a server operator (MODERATE oper, /oper in the apps): it may moderate every room; empty: nobody can become one")
	fs.StringVar(&c.operTokenFile, "operator-token-file", "", "read the operator token from this `file` instead (keeps it out of the process list)")
	fs.IntVar(&c.auditMax, "audit-max", 100000, "moderation audit log entries kept; the oldest are dropped")
	fs.Float64Var(&c.msgRate, "msg-rate", 5, "messages a second one connection may send after its burst; faster clients are slowed down; 0: no limit")
	fs.IntVar(&c.msgBurst, "msg-burst", 20, "messages one connection may send at once before -msg-rate applies")
	fs.DurationVar(&c.floodAfter, "flood-after", 10*time.Second, "a connection over -msg-rate for this long is disconnected")
	fs.IntVar(&c.connsPerIP, "max-conns-per-ip", 20, "connections at once from one address (IPv6: one /64); 0: no limit")
	fs.IntVar(&c.newConnsPerMin, "new-conns-per-minute", 60, "new connections a minute from one address; 0: no limit")
	fs.BoolVar(&c.limitLoopback, "limit-loopback", false, "apply the per-address limits to 127.0.0.1 and ::1 too (leave off behind a local reverse proxy, unless -trusted-proxies names it)")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "reverse proxies to believe about the client's address, comma-separated `CIDRs` or addresses (e.g. 127.0.0.1,10.0.0.0/8): on the TCP port each connection from them must begin with a PROXY protocol v1/v2 header; on HTTP their X-Forwarded-For or Forwarded header gives it; empty: none")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", 2*time.Minute, "close connections that are in no room for this long")
	fs.StringVar(&c.roomCreate, "room-create", "anyone", "who may create a room (the first JOIN of a room that does not exist): anyone, key (JOINs carrying -room-create-key) or operators (server operators)")
	fs.StringVar(&c.roomCreateKey, "room-create-key", "", "the `key` that creates rooms under -room-create key; it also works as the access key")
	fs.IntVar(&c.maxServerRooms, "max-server-rooms", 10000, "rooms the server may have; a JOIN that would create more is refused; 0: no limit")
	fs.IntVar(&c.newRoomsPerHour, "new-rooms-per-hour", 20, "rooms one address (IPv6: one /64) may create an hour, all at once or spread out; 0: no limit")
	fs.DurationVar(&c.nameExpiry, "name-expiry", 0, "a name claim nobody uses (JOIN or IDENTIFY) for this long is released, e.g. 8760h; 0: claims last for good (the default: the next owner of a name can read its direct messages)")
	fs.IntVar(&c.maxTracked, "max-tracked-addresses", 100000, "addresses (IPv6: /64s) the per-address limits remember at once; when full, the one that used least of its allowance is forgotten")
	fs.IntVar(&c.cacheBytesRoom, "history-cache-room", 1<<20, "`bytes` of recent messages kept in memory per room for fast joins; older ones are read from storage")
	fs.IntVar(&c.cacheBytesServer, "history-cache", 256<<20, "`bytes` of recent messages kept in memory for all rooms together; rooms share it equally when it is full")
	fs.IntVar(&c.typingMaxMembers, "typing-max-members", 100, "rooms with more members than this get no typing indicators (\"alice is typing…\")")
	c.maxUpload, c.uploadQuota, c.uploadTotal, c.fileRate = files.DefaultMaxFile, files.DefaultPerName, files.DefaultTotal, session.DefaultFileRate
	fs.Var(&c.maxUpload, "max-upload", "largest file a client may upload (`size`: 25MiB, 500MB, bytes); 0: the server takes no files")
	fs.Var(&c.uploadQuota, "upload-quota", "`size` of the files one name may hold (the files its messages carry, and unfinished uploads)")
	fs.Var(&c.uploadTotal, "upload-total", "`size` of the files the server holds in all; uploads beyond it are refused")
	fs.DurationVar(&c.collectGrace, "files-grace", 10*time.Minute, "how long a shared file no message carries any more is kept before it is removed (a backup taken meanwhile still gets it); 0: removed at once")
	fs.Var(&c.fileRate, "file-rate", "file bytes a second one connection may upload and download (`size`), besides -msg-rate; faster clients are slowed down")
	fs.StringVar(&c.releaseName, "release-name", "", "release the claim on this `name` (it may be claimed anew by its next user) and exit; works while a server runs on -data (with -nats: in the cluster)")
	fs.StringVar(&c.nats, "nats", "", "cluster mode: NATS server `URLs`, comma-separated (nats://host:4222 or tls://host:4222); rooms, history, names and presence then live in NATS JetStream, shared by every chat server given the same NATS, and -data holds nothing")
	fs.StringVar(&c.natsCreds, "nats-creds", "", "NATS credentials `file` (user JWT and NKey seed)")
	fs.StringVar(&c.natsCA, "nats-ca", "", "CA certificate `file` (PEM) that signed the NATS servers' certificates; implies TLS to NATS")
	fs.StringVar(&c.natsCert, "nats-cert", "", "client certificate `file` (PEM) for NATS servers that require one")
	fs.StringVar(&c.natsKey, "nats-key", "", "private key `file` (PEM) for -nats-cert")
	fs.IntVar(&c.natsReplicas, "nats-replicas", 0, "copies JetStream keeps of every message and record; 0: 3 when the NATS cluster has 3 or more servers, else 1")
	fs.DurationVar(&c.natsDedup, "nats-dedup", 24*time.Hour, "how long a client's re-send of a stored message is recognised in cluster mode (a single server recognises it forever)")
	fs.StringVar(&c.node, "node", "", "this chat server's `name` in the cluster, for logs and NATS (default: the host name)")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chat-server [flags]\n\nRuns the chat server. Every flag can also be set by the environment variable shown.\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			if actionFlags[f.Name] {
				fmt.Fprintf(fs.Output(), "  -%s %s\n    \t%s (flag only)\n", f.Name, name, usage)
				return
			}
			fmt.Fprintf(fs.Output(), "  -%s %s\n    \t%s (env %s", f.Name, name, usage, envName(f.Name))
			if f.DefValue != "" && f.DefValue != "false" {
				fmt.Fprintf(fs.Output(), ", default %q", f.DefValue)
			}
			fmt.Fprintln(fs.Output(), ")")
		})
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if actionFlags[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = errors.Join(envErr, fmt.Errorf("%s=%q: %v", envName(f.Name), v, err))
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	return c, c.check()
}

func (c *config) check() error {
	var errs []error
	positive := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("-%s must be positive, not %d", name, v))
		}
	}
	positive("history", c.history)
	if c.retainMessages < 0 {
		errs = append(errs, fmt.Errorf("-retain-messages must be 0 (keep all) or positive, not %d", c.retainMessages))
	}
	if c.retainAge < 0 || (c.retainAge > 0 && c.retainAge < time.Second) {
		errs = append(errs, fmt.Errorf("-retain-age must be 0 (keep forever) or at least 1s, not %v", c.retainAge))
	}
	positive("max-text", c.maxText)
	positive("max-name", c.maxName)
	positive("max-room", c.maxRoom)
	positive("max-rooms", c.maxRooms)
	if c.queue < session.MinQueue {
		errs = append(errs, fmt.Errorf("-send-queue must be at least %d, not %d", session.MinQueue, c.queue))
	}
	if c.maxFrame < 64 || c.maxFrame > protocol.MaxFrame {
		errs = append(errs, fmt.Errorf("-max-frame must be between 64 and %d, not %d", protocol.MaxFrame, c.maxFrame))
	} else if need := c.maxText + c.maxRoom + protocol.MaxIDLen + 16; c.maxFrame < need {
		errs = append(errs, fmt.Errorf("-max-frame %d cannot carry a message of -max-text %d: make it at least %d", c.maxFrame, c.maxText, need))
	}
	if c.ping < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("-ping must be at least 100ms, not %v", c.ping))
	}
	if c.handshake <= 0 || c.shutdownTimeout <= 0 {
		errs = append(errs, errors.New("-handshake-timeout and -shutdown-timeout must be positive"))
	}
	switch c.sync {
	case "full", "normal":
	default:
		errs = append(errs, fmt.Errorf("-sync must be full or normal, not %q", c.sync))
	}
	switch c.logFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("-log-format must be text or json, not %q", c.logFormat))
	}
	if c.tcp == "" && c.http == "" {
		errs = append(errs, errors.New("-tcp and -http are both empty: there would be nothing to listen on"))
	}
	if c.key != "" && c.keyFile != "" {
		errs = append(errs, errors.New("give -key or -key-file, not both"))
	}
	if c.operToken != "" && c.operTokenFile != "" {
		errs = append(errs, errors.New("give -operator-token or -operator-token-file, not both"))
	}
	positive("audit-max", c.auditMax)
	if c.msgRate < 0 || c.msgBurst < 1 || c.floodAfter <= 0 || c.connsPerIP < 0 || c.newConnsPerMin < 0 || c.idleTimeout <= 0 {
		errs = append(errs, errors.New("-msg-rate, -max-conns-per-ip and -new-conns-per-minute must not be negative; -msg-burst, -flood-after and -idle-timeout must be positive"))
	}
	switch c.roomCreate {
	case "anyone", "operators":
	case "key":
		if c.roomCreateKey == "" {
			errs = append(errs, errors.New("-room-create key needs -room-create-key"))
		}
	default:
		errs = append(errs, fmt.Errorf("-room-create must be anyone, key or operators, not %q", c.roomCreate))
	}
	if c.maxServerRooms < 0 || c.newRoomsPerHour < 0 || c.nameExpiry < 0 {
		errs = append(errs, errors.New("-max-server-rooms, -new-rooms-per-hour and -name-expiry must not be negative"))
	}
	if c.nameExpiry > 0 && c.nameExpiry < time.Minute {
		errs = append(errs, fmt.Errorf("-name-expiry must be 0 or at least 1m, not %v", c.nameExpiry))
	}
	positive("max-tracked-addresses", c.maxTracked)
	positive("history-cache-room", c.cacheBytesRoom)
	positive("history-cache", c.cacheBytesServer)
	positive("typing-max-members", c.typingMaxMembers)
	if c.maxUpload < 0 || c.uploadQuota <= 0 || c.uploadTotal <= 0 || c.fileRate < 1024 {
		errs = append(errs, errors.New("-max-upload must not be negative, -upload-quota and -upload-total must be positive, -file-rate at least 1KiB"))
	} else if c.maxUpload > c.uploadQuota || c.uploadQuota > c.uploadTotal {
		errs = append(errs, fmt.Errorf("-max-upload %s, -upload-quota %s and -upload-total %s must not decrease: no file could be stored", &c.maxUpload, &c.uploadQuota, &c.uploadTotal))
	}
	if (c.tlsCert != "") != (c.tlsKey != "") {
		errs = append(errs, errors.New("-tls-cert and -tls-key go together"))
	}
	if c.tlsCert != "" && c.acmeDomains != "" {
		errs = append(errs, errors.New("give -tls-cert/-tls-key or -acme-domain, not both"))
	}
	if c.acmeHTTP != "" && c.acmeDomains == "" {
		errs = append(errs, errors.New("-acme-http needs -acme-domain"))
	}
	if c.pprof != "" {
		host, _, err := net.SplitHostPort(c.pprof)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			errs = append(errs, fmt.Errorf("-pprof %s: profiling is only served on a loopback address such as 127.0.0.1:6060", c.pprof))
		}
	}
	if _, err := c.healthzPrefixes(); err != nil {
		errs = append(errs, err)
	}
	if c.metrics != "" {
		if _, port, err := net.SplitHostPort(c.metrics); err != nil {
			errs = append(errs, fmt.Errorf("-metrics %s: not a listen address such as 127.0.0.1:9100 (%v)", c.metrics, err))
		} else if port != "0" && (c.metrics == c.http || c.metrics == c.tcp) {
			errs = append(errs, fmt.Errorf("-metrics %s: metrics need their own address, not that of -http or -tcp", c.metrics))
		}
	}
	if c.nats == "" {
		for name, v := range map[string]string{"nats-creds": c.natsCreds, "nats-ca": c.natsCA, "nats-cert": c.natsCert, "nats-key": c.natsKey} {
			if v != "" {
				errs = append(errs, fmt.Errorf("-%s is for cluster mode: give -nats too", name))
			}
		}
	}
	if (c.natsCert != "") != (c.natsKey != "") {
		errs = append(errs, errors.New("-nats-cert and -nats-key go together"))
	}
	if c.natsReplicas < 0 || c.natsReplicas > 5 {
		errs = append(errs, fmt.Errorf("-nats-replicas must be between 0 (automatic) and 5, not %d", c.natsReplicas))
	}
	if c.natsDedup < time.Minute {
		errs = append(errs, fmt.Errorf("-nats-dedup must be at least 1m, not %v", c.natsDedup))
	}
	if t, err := proxy.ParseTrusted(c.trustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("-trusted-proxies: %v", err))
	} else {
		c.trusted = t
	}
	if c.webDir != "" {
		if st, err := os.Stat(c.webDir); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("-web %s: not a directory", c.webDir))
		}
	}
	return errors.Join(errs...)
}

// retention is the history every room keeps, from -retain-messages and
// -retain-age.
func (c *config) retention() history.Retention {
	return history.Retention{Messages: c.retainMessages, Age: c.retainAge}
}

// fileLimits is what the files store holds, from -max-upload,
// -upload-quota and -upload-total.
func (c *config) fileLimits() files.Limits {
	return files.Limits{MaxFile: int64(c.maxUpload), PerName: int64(c.uploadQuota), Total: int64(c.uploadTotal)}.WithDefaults()
}

// filesGrace is FilesOptions.CollectGrace from -files-grace (0: none).
func (c *config) filesGrace() time.Duration {
	if c.collectGrace <= 0 {
		return -1
	}
	return c.collectGrace
}

// list splits a comma-separated flag.
func list(v string) []string {
	var out []string
	for o := range strings.SplitSeq(v, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// healthzPrefixes parses -healthz-allow: CIDR prefixes or single
// addresses.
func (c *config) healthzPrefixes() ([]netip.Prefix, error) {
	out := []netip.Prefix{} // not nil: an empty list allows nobody
	for _, v := range list(c.healthzAllow) {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("-healthz-allow: %q is neither a CIDR prefix (10.0.0.0/8) nor an address", v)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// accessKey returns the key from -key or -key-file.
func (c *config) accessKey() (string, error) {
	if c.keyFile == "" {
		return c.key, nil
	}
	b, err := os.ReadFile(c.keyFile)
	if err != nil {
		return "", fmt.Errorf("-key-file: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("-key-file %s is empty", c.keyFile)
	}
	return key, nil
}

// operatorToken returns the token from -operator-token or
// -operator-token-file ("": none).
func (c *config) operatorToken() (string, error) {
	if c.operTokenFile == "" {
		return c.operToken, nil
	}
	b, err := os.ReadFile(c.operTokenFile)
	if err != nil {
		return "", fmt.Errorf("-operator-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("-operator-token-file %s is empty", c.operTokenFile)
	}
	return token, nil
}
