// Package cluster keeps a chat node's shared state in NATS JetStream, so
// that several chat servers serve one set of rooms: messages, their
// per-room sequence numbers and deduplication in one stream, and name
// ownership, read markers, mentions, room and direct-message indexes and
// presence in key-value buckets. A node keeps nothing another node needs.
//
// Layout (DESIGN.md in this directory explains the why):
//
//   - stream CHAT, subjects chat.m.<room> (one message each, its
//     per-room sequence number in the Chat-Seq header) and
//     chat.d.<room>.<dedup> (a deduplication marker, kept for the
//     deduplication window with a per-message TTL);
//   - buckets chat-names, chat-marks, chat-mentions, chat-rooms, chat-dms,
//     chat-presence, chat-nodes, chat-moderation, chat-redactions, chat-states;
//   - stream CHAT_AUDIT, subjects chat.audit.<room>: the moderation
//     audit log;
//   - core subject chat.note for notes to every node.
//
// <room> and other tokens are Token(canonical name): base64url without
// padding, so any room name is one subject token and one key token.
//
// Conn.Node is a chat node's broker.Broker on the cluster (broker.go:
// deliveries; publish.go: per-room atomic batches; read.go: history;
// presence.go; notes.go).
package cluster

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chat/server/internal/history"
)

// Names of the stream, buckets and subjects.
const (
	StreamName     = "CHAT"
	MsgSubject     = "chat.m."       // + Token(room)
	DedupSubject   = "chat.d."       // + Token(room) + "." + dedup token
	NoteSubject    = "chat.note"     // core NATS, every node subscribes
	BucketNames    = "chat-names"    // Token(name key) → owner
	BucketMarks    = "chat-marks"    // Token(name key).Token(room) → read marker
	BucketMentions = "chat-mentions" // Token(name key) → unread mentions
	BucketRooms    = "chat-rooms"    // Token(room) → head and last activity
	BucketDMs      = "chat-dms"      // Token(name key).Token(room) → last activity
	BucketPresence = "chat-presence" // Token(room).Token(name key) → who, on which nodes
	BucketNodes    = "chat-nodes"    // node id → heartbeat
	// BucketModeration holds each room's moderation state (JSON of
	// moderation.State), key Token(room).
	BucketModeration = "chat-moderation"
	// BucketRedactions holds the messages deleted by operators before
	// edits existed (bare MSG frames without text), keys
	// Token(room).<seq>, read when chat-states has no record, and the
	// erased messages without text for re-sends, keys
	// Token(room).d.<dedup token> (with a TTL).
	BucketRedactions = "chat-redactions"
	// BucketStates holds the changed messages' current states (JSON
	// records, changes.go), keys Token(room).<seq>. Its stream allows
	// deletes, unlike a bucket made as a KV bucket: a record's replaced
	// revision is erased (SecureDeleteMsg).
	BucketStates  = "chat-states"
	AuditStream   = "CHAT_AUDIT"   // the moderation audit log
	AuditSubject  = "chat.audit."  // + Token(room), or "-" for no room
	BucketRoomSet = "chat-roomset" // Token(room) → creation time: the rooms that exist
	// EpochKey is the stream metadata key holding the history epoch of
	// every room in the stream (history.NewEpoch, set when the stream is
	// created; a migration or restore makes a new stream and a new epoch).
	EpochKey = "chat_epoch"
)

// Message headers in stream CHAT.
const (
	HeaderSeq  = "Chat-Seq"  // the message's per-room sequence number
	HeaderNode = "Chat-Node" // the publishing node's id
	// HeaderRedacted marks the copy without text of a room's last
	// message that an operator deleted (moderation.go).
	HeaderRedacted = "Chat-Redacted"
)

// Token encodes a name (room, name key, node id) as one subject or key
// token.
func Token(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// FromToken decodes Token.
func FromToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	return string(b), err
}

// Options configure a connection to the cluster.
type Options struct {
	URLs  []string    // NATS server URLs
	Creds string      // NATS credentials file (JWT and NKey seed), or ""
	TLS   *tls.Config // TLS to NATS (CA, client certificate), or nil
	// Replicas is the replica count of the stream and buckets (0: 3 when
	// the NATS cluster has 3 or more servers, else 1).
	Replicas int
	// DedupWindow is how long a client's re-send of a stored message is
	// recognised (default 24h): the deduplication markers' TTL.
	DedupWindow time.Duration
	// StreamDuplicates is JetStream's own Nats-Msg-Id window (default 2
	// minutes). Tests shorten it to prove DedupWindow does not rely on it.
	StreamDuplicates time.Duration
	// PublishTimeout bounds the wait for JetStream to store a message
	// (default 5s); past it the message is not acknowledged.
	PublishTimeout time.Duration
	// Retention limits the history every room keeps (zero: everything):
	// the stream's MaxMsgsPerSubject (each room is one subject) and
	// MaxAge, set when the stream is created and updated on an existing
	// one. MaxAge also bounds the deduplication markers' life. nil leaves
	// an existing stream's limits as they are (tools, not servers).
	Retention *history.Retention
	// NameExpiry is how long a name claim lasts without being used (a
	// JOIN or IDENTIFY with the name); 0: for good. It is the TTL of
	// bucket chat-names, so every node should be given the same: the
	// last node to start sets it.
	NameExpiry time.Duration
	// Name names this node in NATS (connection name, logs).
	Name   string
	Logger *slog.Logger
	// OnDown, if set, is called when the connection to NATS is lost (or
	// closed), OnUp when it is back: the server tells its clients to
	// reconnect elsewhere while NATS is down. They run on nats.go's
	// callback goroutine and must not block.
	OnDown func(error)
	OnUp   func()
}

func (o *Options) setDefaults() {
	if o.DedupWindow <= 0 {
		o.DedupWindow = 24 * time.Hour
	}
	if o.StreamDuplicates <= 0 {
		o.StreamDuplicates = 2 * time.Minute
	}
	// JetStream's id window must not outlast the markers: a re-send it
	// still knew but whose marker had expired would be neither found
	// nor stored.
	o.StreamDuplicates = min(o.StreamDuplicates, o.DedupWindow)
	if o.Retention != nil && o.Retention.Age > 0 {
		// JetStream refuses a duplicate window longer than MaxAge.
		o.StreamDuplicates = min(o.StreamDuplicates, o.Retention.Age)
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Conn is one chat node's connection to the cluster, with the stream and
// buckets provisioned.
type Conn struct {
	opts   Options
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	epoch  uint64
	index  *indexer
	seqs   *seqCache // room seq → stream seq of recent messages

	names, marks, mentions, rooms, dms, presence, nodes, roomSet jetstream.KeyValue
	moderation, redactions                                       jetstream.KeyValue
	// states is chat-states, statesStream its stream (changes.go).
	states       jetstream.KeyValue
	statesStream jetstream.Stream

	// roomCount is Rooms' cached count of chat-roomset.
	roomCount roomCount

	// afterRecord, if set (tests only), runs after a change wrote its
	// record, before the erasures: an error fails the change there, as
	// a timeout or a dying node would.
	afterRecord func() error
	// stateReadFault, if set (tests only, before Node), runs before
	// each of the consumer's reads of a record: an error fails it.
	stateReadFault func() error
	// recordSweep is how often the search index sweeps a room's records
	// for retention (0: a minute; tests shorten it before Node).
	recordSweep time.Duration
}

// Dial connects to NATS and creates (or updates) the stream and buckets.
func Dial(ctx context.Context, opts Options) (*Conn, error) {
	opts.setDefaults()
	if len(opts.URLs) == 0 {
		return nil, errors.New("cluster: no NATS URL")
	}
	nopts := []nats.Option{
		nats.Name(opts.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil {
				err = nats.ErrDisconnected
			}
			opts.Logger.Warn("NATS connection lost", "err", err)
			if opts.OnDown != nil {
				opts.OnDown(err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			opts.Logger.Info("NATS connection restored", "url", nc.ConnectedUrlRedacted())
			if opts.OnUp != nil {
				opts.OnUp()
			}
		}),
	}
	if opts.Creds != "" {
		nopts = append(nopts, nats.UserCredentials(opts.Creds))
	}
	if opts.TLS != nil {
		nopts = append(nopts, nats.Secure(opts.TLS))
	}
	nc, err := nats.Connect(joinURLs(opts.URLs), nopts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connecting to NATS at %s: %w", joinURLs(opts.URLs), err)
	}
	c := &Conn{opts: opts, nc: nc, seqs: newSeqCache()}
	if err := c.provision(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	c.index = newIndexer(c)
	return c, nil
}

func joinURLs(urls []string) string {
	s := ""
	for i, u := range urls {
		if i > 0 {
			s += ","
		}
		s += u
	}
	return s
}

// replicas returns the replica count to use.
func (c *Conn) replicas() int {
	if c.opts.Replicas > 0 {
		return c.opts.Replicas
	}
	if len(c.nc.Servers()) >= 3 {
		return 3
	}
	return 1
}

func (c *Conn) provision(ctx context.Context) error {
	js, err := jetstream.New(c.nc)
	if err != nil {
		return err
	}
	c.js = js
	r := c.replicas()
	var keep history.Retention
	if c.opts.Retention != nil {
		keep = *c.opts.Retention
	}
	cfg := jetstream.StreamConfig{
		Name:               StreamName,
		Description:        "chat messages and deduplication markers",
		Subjects:           []string{MsgSubject + ">", DedupSubject + ">"},
		Storage:            jetstream.FileStorage,
		Replicas:           r,
		Duplicates:         c.opts.StreamDuplicates,
		AllowAtomicPublish: true,
		AllowMsgTTL:        true,
		AllowDirect:        true,
		Metadata:           map[string]string{EpochKey: strconv.FormatUint(history.NewEpoch(), 10)},
		MaxAge:             keep.Age,
		MaxMsgsPerSubject:  int64(keep.Messages),
	}
	var s jetstream.Stream
	err = retry(ctx, func(ctx context.Context) error {
		var err error
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			if s, err = js.Stream(ctx, StreamName); err == nil && c.opts.Retention != nil {
				s, err = c.applyRetention(ctx, s)
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("cluster: stream %s: %w", StreamName, err)
	}
	c.stream = s
	epoch, err := strconv.ParseUint(s.CachedInfo().Config.Metadata[EpochKey], 10, 64)
	if err != nil || epoch == 0 {
		return fmt.Errorf("cluster: stream %s has no history epoch in its metadata %q", StreamName, EpochKey)
	}
	c.epoch = epoch
	for _, b := range []struct {
		kv  *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		// A claim expires NameExpiry after it was last written: Claim
		// writes it again as it is used (see Names.Claim).
		{&c.names, jetstream.KeyValueConfig{Bucket: BucketNames, Description: "name owners", TTL: c.opts.NameExpiry}},
		{&c.marks, jetstream.KeyValueConfig{Bucket: BucketMarks, Description: "read markers"}},
		{&c.mentions, jetstream.KeyValueConfig{Bucket: BucketMentions, Description: "unread mentions"}},
		{&c.rooms, jetstream.KeyValueConfig{Bucket: BucketRooms, Description: "rooms: head and last activity"}},
		{&c.dms, jetstream.KeyValueConfig{Bucket: BucketDMs, Description: "direct-message rooms of each name"}},
		{&c.presence, jetstream.KeyValueConfig{Bucket: BucketPresence, Description: "who is in which room, through which nodes"}},
		{&c.nodes, jetstream.KeyValueConfig{Bucket: BucketNodes, Description: "chat node heartbeats"}},
		{&c.moderation, jetstream.KeyValueConfig{Bucket: BucketModeration, Description: "rooms' moderation: operators, bans, mutes, topic, invites"}},
		// Per-key TTLs: the records for re-sends expire with the
		// deduplication window.
		// Per-key TTLs: the records for re-sends expire with the
		// deduplication window.
		{&c.redactions, jetstream.KeyValueConfig{Bucket: BucketRedactions, Description: "messages deleted by operators, without their texts; erased messages for re-sends",
			LimitMarkerTTL: time.Minute}},
		{&c.roomSet, jetstream.KeyValueConfig{Bucket: BucketRoomSet, Description: "rooms that exist (room creation policy and cap)"}},
	} {
		b.cfg.Replicas = r
		b.cfg.Storage = jetstream.FileStorage
		err := retry(ctx, func(ctx context.Context) error {
			kv, err := js.CreateOrUpdateKeyValue(ctx, b.cfg)
			*b.kv = kv
			return err
		})
		if err != nil {
			return fmt.Errorf("cluster: bucket %s: %w", b.cfg.Bucket, err)
		}
	}
	return c.provisionStates(ctx, r)
}

// statesHistory is the revisions chat-states keeps per key: the last, the
// one a change just replaced until it is erased, and a few more should a
// node die before erasing (beyond them the limit drops the oldest without
// overwriting it).
const statesHistory = 8

// provisionStates creates chat-states as a stream of the KV layout that
// allows deletes (a bucket created as one denies them, for good), and
// binds it as a bucket.
func (c *Conn) provisionStates(ctx context.Context, replicas int) error {
	cfg := jetstream.StreamConfig{
		Name:              "KV_" + BucketStates,
		Description:       "changed messages' current states (edited, deleted, reacted to)",
		Subjects:          []string{"$KV." + BucketStates + ".>"},
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		MaxMsgsPerSubject: statesHistory,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxAge:            0,
		MaxMsgSize:        -1,
		Discard:           jetstream.DiscardNew,
		AllowRollup:       true,
		AllowDirect:       true,
		Duplicates:        2 * time.Minute,
	}
	return retry(ctx, func(ctx context.Context) error {
		s, err := c.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = c.js.Stream(ctx, cfg.Name)
		}
		if err != nil {
			return fmt.Errorf("cluster: bucket %s: %w", BucketStates, err)
		}
		kv, err := c.js.KeyValue(ctx, BucketStates)
		if err != nil {
			return fmt.Errorf("cluster: bucket %s: %w", BucketStates, err)
		}
		c.states, c.statesStream = kv, s
		return nil
	})
}

// applyRetention updates an existing stream's limits to Options.Retention
// (every node applies its own settings when it starts: give all nodes the
// same). Lowering them removes what they no longer keep at once.
func (c *Conn) applyRetention(ctx context.Context, s jetstream.Stream) (jetstream.Stream, error) {
	cfg := s.CachedInfo().Config
	keep := *c.opts.Retention
	perSubject := int64(keep.Messages)
	if perSubject == 0 {
		perSubject = -1 // JetStream's "unlimited"
	}
	dups := cfg.Duplicates
	if keep.Age > 0 {
		dups = min(dups, keep.Age)
	}
	if cfg.MaxAge == keep.Age && max(cfg.MaxMsgsPerSubject, -1) == perSubject && cfg.Duplicates == dups {
		return s, nil
	}
	c.opts.Logger.Info("cluster: applying history retention to the stream",
		"max_age", keep.Age, "max_msgs_per_room", keep.Messages)
	cfg.MaxAge, cfg.MaxMsgsPerSubject, cfg.Duplicates = keep.Age, perSubject, dups
	return c.js.UpdateStream(ctx, cfg)
}

// provisionAttempt bounds one JetStream API request of provision: a
// request lost while a cluster elects its leaders is sent again rather
// than waited for until ctx ends.
const provisionAttempt = 5 * time.Second

// errNoPeers is JetStream's error code for "no suitable peers for
// placement".
const errNoPeers = 10005

// retry runs f until it succeeds, fails otherwise than by getting no
// answer or finding a NATS server offline, or ctx ends.
func retry(ctx context.Context, f func(ctx context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, provisionAttempt)
		err := f(actx)
		cancel()
		var ae *jetstream.APIError
		unanswered := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) ||
			errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrTimeout) ||
			(errors.As(err, &ae) && ae.Code == 503)
		// A replicated stream or bucket cannot be placed while one of
		// its servers is offline to the meta leader — also for a moment
		// in a young cluster, or after the meta leader changed, until
		// every server's statistics reached it. That passes; the
		// caller's ctx bounds a server that stays down.
		offline := errors.As(err, &ae) && ae.ErrorCode == errNoPeers && strings.Contains(ae.Description, "peer offline")
		if err == nil || !(unanswered || offline) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// Epoch is the history epoch of every room in the cluster's stream.
func (c *Conn) Epoch() uint64 { return c.epoch }

// NATS returns the underlying connection (for health checks).
func (c *Conn) NATS() *nats.Conn { return c.nc }

// StreamSize returns the stream messages (chat messages and their
// deduplication markers) and bytes in the cluster's message stream, as
// JetStream counts them (one API request; for metrics).
func (c *Conn) StreamSize(ctx context.Context) (msgs, bytes uint64, err error) {
	info, err := c.stream.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	return info.State.Msgs, info.State.Bytes, nil
}

// HealthKey is the key in chat-nodes that Healthy writes.
const HealthKey = "_health"

// Healthy reports whether this node can serve: connected to NATS, and
// JetStream storing (a write to chat-nodes within 2 seconds, or ctx's
// deadline if sooner). Only a write proves a quorum: a server cut off
// from the others answers reads from its own state for a while. A node
// that is not healthy should tell its clients to reconnect elsewhere.
func (c *Conn) Healthy(ctx context.Context) error {
	if !c.nc.IsConnected() {
		return fmt.Errorf("cluster: not connected to NATS (%s)", c.nc.Status())
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.nodes.Put(ctx, HealthKey, []byte(c.opts.Name)); err != nil {
		return fmt.Errorf("cluster: JetStream not storing: %w", err)
	}
	return nil
}

// Close closes the NATS connection, after flushing what was sent.
func (c *Conn) Close() error {
	c.index.close()
	err := c.nc.Drain()
	if errors.Is(err, nats.ErrConnectionClosed) {
		err = nil
	}
	return err
}
