package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
	"chat/server/internal/files"
	"chat/server/internal/files/media"
	"chat/server/internal/sqlite"
)

// Names of the file store's object store, bucket and stream (DESIGN.md,
// "Files").
const (
	// BucketFiles is the object store of the files' content, object name
	// = File.ID (or File.Thumb), the hex SHA-256 of the content.
	BucketFiles = "chat-files"
	// BucketUploads holds the uploads, holds, blobs and quota counters:
	// keys u.<owner>.<id>, h.<owner>.<file id>, b.<file id>, q.<owner>,
	// and t (the server's total).
	BucketUploads = "chat-uploads"
	// UploadStream holds unfinished uploads' bytes: one subject per
	// upload, chat.up.<Token(owner)>.<Token(id)>, one message per chunk
	// with its offset in header Chat-Offset.
	UploadStream  = "CHAT_UPLOADS"
	UploadSubject = "chat.up."
	// headerOffset is a chunk's offset in its upload.
	headerOffset = "Chat-Offset"
	// headerType is an object's MIME type.
	headerType = "Chat-Type"
)

// Defaults of FilesOptions.
const (
	DefaultFileCache    = 256 << 20
	DefaultCollectEvery = time.Hour
	// maxChunk bounds one chunk message of an upload (a Write of more is
	// stored as several).
	maxChunk = 256 << 10
	// maxHolds bounds the finished, unsent files one name holds at once
	// (the quota counter of a name is one KV value, under NATS's 1 MB).
	maxHolds = 4096
	// indexCatchUp bounds Open's wait for the node's index to catch up
	// with the stream before it answers not found.
	indexCatchUp = 2 * time.Second
	// maxInspect bounds the uploads a node inspects at once (package
	// media: an image is decoded whole, 4–16 bytes a pixel).
	maxInspect = 2
	// maxSends bounds the sends waiting to mark their holds used.
	maxSends = 4096
	// maxSeen bounds the uploads whose last chunk a node remembers.
	maxSeen = 4096
	// collectPause is the least time between two collections started by
	// deletes (retention and deletes come in bursts).
	collectPause = time.Minute
)

// FilesOptions configure a node's file store.
type FilesOptions struct {
	Limits files.Limits
	// CacheDir holds the node's local copies of files being read ("": a
	// temporary directory, removed at Close); CacheBytes bounds them
	// (default DefaultFileCache; files open for reading stay beyond it
	// until closed).
	CacheDir   string
	CacheBytes int64
	// CollectEvery is how often the store collects on its own (default
	// an hour), besides soon after deletes and retention.
	CollectEvery time.Duration
	// Inspect examines a finished upload (default media.Inspect).
	Inspect func(r io.ReaderAt, size int64, lim media.Limits) (*media.Result, error)
	// CollectGrace is how long content stays unreferenced before this
	// node's Collect removes it (0 or less: none; the server passes
	// -files-grace). A backup of the running cluster copies the messages
	// first and the content after: content a message of the copy
	// carries, deleted meanwhile, must still be there when the copy
	// reaches it.
	CollectGrace time.Duration
}

// FileStore is a node's files.Store on the cluster (DESIGN.md, "Files"):
// content in the object store chat-files (any node serves any file),
// unfinished uploads in stream CHAT_UPLOADS (a client resumes through
// any node), metadata and quota counters in bucket chat-uploads (updated
// by compare-and-set), and the references — which room's live messages
// carry which file — from the node's own index.
type FileStore struct {
	c       *Conn
	opts    FilesOptions
	lim     files.Limits
	obj     jetstream.ObjectStore
	kv      jetstream.KeyValue
	uploads jetstream.Stream
	cache   *fileCache
	// inspecting bounds the Finishes inspecting at once (an image is
	// read whole and decoded: memory).
	inspecting chan struct{}

	// sends are the file messages this node published, for marker to
	// mark their holds used (bounded; beyond it a hold counts until it
	// ends, as if unused).
	sends chan protocol.Msg

	// beforeUnregister, if set (tests), runs in Collect between deleting
	// an object and deleting its registration.
	beforeUnregister func(id string)
	// grace keeps unreferenced content CollectGrace long, as this node
	// saw it; now is its clock (tests move it).
	grace *files.Grace
	now   func() time.Time

	// seen is, per upload this node began or wrote (key u.<owner>.<id>),
	// the stream seq of the last chunk or fence it wrote: its next chunk
	// is published expecting it, so a chunk of a dead connection after
	// another node's Begin fenced the upload is refused (bounded by
	// maxSeen; an upload missing here is checked against the stream's
	// last chunk, as before).
	seenMu sync.Mutex
	seen   map[string]uint64

	mu sync.Mutex
	// collected, if set (tests, through notifyCollect), is told each
	// background collection's result.
	collected chan<- error
	n         *Node              // the node whose index tells the references; nil until it starts
	stop      context.CancelFunc // stops the collector (with the node)
	done      chan struct{}      // closed when the collector returns
}

// errNoNode answers calls before the node using the store started.
var errNoNode = errors.New("cluster: the file store's node has not started (NodeOptions.Files)")

var _ files.Store = (*FileStore)(nil)

// Files opens a file store on the cluster, creating the object store,
// bucket and stream if needed. It serves once a node started with it
// (NodeOptions.Files): the references come from that node's index, and
// it collects while the node runs. Close removes its local cache.
func (c *Conn) Files(ctx context.Context, opts FilesOptions) (*FileStore, error) {
	opts.Limits = opts.Limits.WithDefaults()
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = DefaultFileCache
	}
	if opts.CollectEvery <= 0 {
		opts.CollectEvery = DefaultCollectEvery
	}
	if opts.Inspect == nil {
		opts.Inspect = media.Inspect
	}
	r := c.replicas()
	s := &FileStore{c: c, opts: opts, lim: opts.Limits,
		inspecting: make(chan struct{}, maxInspect), sends: make(chan protocol.Msg, maxSends),
		seen: map[string]uint64{}, grace: files.NewGrace(opts.CollectGrace), now: time.Now}
	err := retry(ctx, func(ctx context.Context) error {
		var err error
		s.obj, err = c.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: BucketFiles,
			Description: "shared files' content by SHA-256", Storage: jetstream.FileStorage, Replicas: r})
		if err != nil {
			return err
		}
		s.kv, err = c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: BucketUploads,
			Description: "uploads, holds, stored files and quota counters", Storage: jetstream.FileStorage, Replicas: r})
		if err != nil {
			return err
		}
		// Parts outlive an abandoned upload by at most a day more than
		// Collect takes to remove it.
		s.uploads, err = c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: UploadStream,
			Description: "unfinished uploads' bytes", Subjects: []string{UploadSubject + ">"},
			Storage: jetstream.FileStorage, Replicas: r, MaxAge: opts.Limits.HoldFor + 24*time.Hour,
			AllowDirect: true})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: file store: %w", err)
	}
	if s.cache, err = newFileCache(opts.CacheDir, opts.CacheBytes); err != nil {
		return nil, err
	}
	return s, nil
}

// attach makes n the store's node and starts the collector.
func (s *FileStore) attach(n *Node) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n != nil {
		return errors.New("cluster: a file store serves one node")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.n, s.stop, s.done = n, cancel, make(chan struct{})
	marked := make(chan struct{})
	go s.marker(ctx, marked)
	go func() {
		s.collector(ctx, n)
		<-marked
		close(s.done)
	}()
	return nil
}

// sent is told of each file message this node stored (not re-sends),
// before its Result goes out.
func (s *FileStore) sent(m protocol.Msg) {
	select {
	case s.sends <- m:
	default:
		s.c.opts.Logger.Warn("cluster: file store: too many sends to mark; the hold counts until it ends", "file", m.File.ID)
	}
}

// marker marks the holds of the files this node's messages carried as
// used: from then on the messages keep the content (DESIGN.md, "Files").
// When the node stops it marks what is queued (each within the publish
// timeout) before it returns.
func (s *FileStore) marker(ctx context.Context, done chan struct{}) {
	defer close(done)
	mark := func(m protocol.Msg) {
		mctx, cancel := context.WithTimeout(context.Background(), s.c.opts.PublishTimeout)
		defer cancel()
		if err := s.markUsed(mctx, protocol.Key(m.Sender), m.File.ID, int64(m.Time)); err != nil {
			s.c.opts.Logger.Warn("cluster: file store: marking a hold used failed; it counts until it ends", "file", m.File.ID, "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case m := <-s.sends:
					mark(m)
				default:
					return
				}
			}
		case m := <-s.sends:
			mark(m)
		}
	}
}

// markUsed notes that a message of owner sent at time at carried fileID.
func (s *FileStore) markUsed(ctx context.Context, owner, fileID string, at int64) error {
	err := casJSON(ctx, s, holdKey(owner, fileID), func(h *holdRec) (bool, error) {
		if h.File.ID == "" || h.Used >= at {
			return false, nil // no hold (the file came otherwise), or marked
		}
		h.Used = at
		return true, nil
	})
	if err != nil {
		return err
	}
	return casJSON(ctx, s, ownerKey(owner), func(o *ownerRec) (bool, error) {
		h, ok := o.Held[fileID]
		if !ok || h.Used >= at {
			return false, nil
		}
		h.Used = at
		o.Held[fileID] = h
		return true, nil
	})
}

// notifyCollect makes the collector send each collection's result to ch
// (if ch has room): tests wait for a background collection with it.
func (s *FileStore) notifyCollect(ch chan<- error) {
	s.mu.Lock()
	s.collected = ch
	s.mu.Unlock()
}

// detach stops the collector (the node stops).
func (s *FileStore) detach() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// node returns the node, or errNoNode.
func (s *FileStore) node() (*Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		return nil, errNoNode
	}
	if err := s.n.errClosed(); err != nil {
		return nil, err
	}
	return s.n, nil
}

// Close removes the local cache's copies (the node stops the collector).
func (s *FileStore) Close() error {
	s.detach()
	return s.cache.close()
}

// collector collects every CollectEvery, and soon after the node's index
// dropped file references (at most once per collectPause).
func (s *FileStore) collector(ctx context.Context, n *Node) {
	tick := time.NewTicker(s.opts.CollectEvery)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.search.filesGone:
			if wait := collectPause - time.Since(last); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return
				}
			}
		}
		last = time.Now()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err := s.Collect(cctx)
		if err != nil && ctx.Err() == nil {
			s.c.opts.Logger.Warn("cluster: collecting files failed; tried again later", "err", err)
		}
		cancel()
		s.mu.Lock()
		ch := s.collected
		s.mu.Unlock()
		if ch != nil {
			select {
			case ch <- err:
			default:
			}
		}
	}
}

// Records in chat-uploads.
type (
	// uploadRec is key u.<owner>.<id>.
	uploadRec struct {
		Room    string `json:"room"`
		Name    string `json:"name"`
		Size    int64  `json:"size"`
		Created int64  `json:"created"` // Unix ms
		// File is set once finished: a Finish again answers the hold.
		File string `json:"file,omitempty"`
		// Finishing is set (Unix ms: the deadline) by the Finish that
		// claimed the upload: another Finish waits for the file until
		// then, and takes over after.
		Finishing int64 `json:"finishing,omitempty"`
	}
	// holdRec is key h.<owner>.<file id>.
	holdRec struct {
		File  protocol.File `json:"file"`
		From  int64         `json:"from"`  // Unix ms: finished
		Until int64         `json:"until"` // Unix ms
		// Used is the time of the last message of the owner that
		// carried the file (0: none): from then on the messages keep
		// the content, not the hold.
		Used int64 `json:"used,omitempty"`
	}
	// blobRec is key b.<file id>: the object is stored and counted.
	blobRec struct {
		Size int64  `json:"size"`
		Type string `json:"type"`
		// Deleting (Unix ms: when marked) is set by the Collect that
		// deletes the object: then the key goes at the marked revision.
		// A Finish that finds the mark waits for the key to go (or the
		// mark to be a finishFor old) and stores the content again.
		Deleting int64 `json:"deleting,omitempty"`
	}
	// ownerRec is key q.<owner>: what counts against the name's quota
	// besides the files its messages carry.
	ownerRec struct {
		Pending map[string]int64 `json:"pending,omitempty"` // upload id → size
		// PendingAt is when each pending upload began (Unix ms): one
		// older than HoldFor is dropped when the record is next
		// updated (a Begin that failed midway leaks none for longer).
		PendingAt map[string]int64    `json:"pending_at,omitempty"`
		Held      map[string]heldSize `json:"held,omitempty"` // file id → size and end
	}
	heldSize struct {
		Size  int64 `json:"size"`
		From  int64 `json:"from"` // Unix ms: finished
		Until int64 `json:"until"`
		Used  int64 `json:"used,omitempty"` // as holdRec.Used
	}
	// totalRec is key t: the bytes of every stored object and unfinished
	// upload.
	totalRec struct {
		Bytes int64 `json:"bytes"`
	}
)

func uploadKey(owner, id string) string { return "u." + Token(owner) + "." + Token(id) }
func holdKey(owner, fileID string) string {
	return "h." + Token(owner) + "." + fileID
}
func blobKey(fileID string) string { return "b." + fileID }
func ownerKey(owner string) string { return "q." + Token(owner) }
func partsSubject(owner, id string) string {
	return UploadSubject + Token(owner) + "." + Token(id)
}

const totalKey = "t"

// validID reports whether id is a file id (lowercase hex SHA-256): only
// such ids become keys and object names.
func validID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for _, r := range id {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// getJSON reads key from the bucket's leader into v; rev 0: absent.
func (s *FileStore) getJSON(ctx context.Context, key string, v any) (uint64, error) {
	b, rev, err := s.c.leaderGet(ctx, s.kv, key)
	if err != nil || rev == 0 {
		return 0, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return 0, fmt.Errorf("cluster: file store: key %s: %w", key, err)
	}
	return rev, nil
}

// casJSON updates the JSON value of key by f (compare-and-set, retried):
// f gets the current value (zero if absent) and returns false to leave it.
func casJSON[T any](ctx context.Context, s *FileStore, key string, f func(v *T) (bool, error)) error {
	_, err := s.c.kvCAS(ctx, s.kv, key, func(cur []byte) ([]byte, bool, error) {
		var v T
		if len(cur) > 0 {
			if err := json.Unmarshal(cur, &v); err != nil {
				return nil, false, fmt.Errorf("cluster: file store: key %s: %w", key, err)
			}
		}
		write, err := f(&v)
		if err != nil || !write {
			return nil, false, err
		}
		b, err := json.Marshal(v)
		return b, true, err
	})
	return err
}

// ctxTimeout bounds a call by the publish timeout (reads of a whole
// upload get more).
func (s *FileStore) ctxTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d*s.c.opts.PublishTimeout)
}

// Begin implements files.Store.
func (s *FileStore) Begin(ctx context.Context, u files.Upload) (int64, error) {
	if u.Size <= 0 {
		return 0, files.Refuse(protocol.CodeInvalid, "An empty file cannot be sent.")
	}
	if u.Size > s.lim.MaxFile {
		return 0, files.Refuse(protocol.CodeTooBig, "The file is larger than this server takes (%s).", sizeText(s.lim.MaxFile))
	}
	ctx, cancel := s.ctxTimeout(ctx, 2)
	defer cancel()
	key := uploadKey(u.Owner, u.ID)
	var rec uploadRec
	rev, err := s.getJSON(ctx, key, &rec)
	if err != nil {
		return 0, err
	}
	if rev != 0 && rec.Size == u.Size {
		if rec.File != "" {
			if _, err := s.Held(ctx, u.Owner, rec.File); err == nil {
				return u.Size, nil // finished: Finish answers its file again
			}
		} else {
			return s.fence(ctx, u.Owner, u.ID)
		}
	}
	if rev != 0 {
		// Another size under the same id (or a finished upload whose
		// hold ended): the old one goes, this one starts afresh.
		if err := s.drop(ctx, u.Owner, u.ID, &rec); err != nil {
			return 0, err
		}
	}
	carried, used, err := s.carried(ctx, u.Owner)
	if err != nil {
		return 0, err
	}
	now := time.Now().UnixMilli()
	already := false
	err = casJSON(ctx, s, ownerKey(u.Owner), func(o *ownerRec) (bool, error) {
		o.prune(now, s.lim.HoldFor)
		if _, ok := o.Pending[u.ID]; ok {
			already = true
			return false, nil // a Begin racing with this one counted it
		}
		already = false
		if len(o.Pending) >= s.lim.Pending {
			return false, files.Refuse(protocol.CodeInvalid, "Too many unfinished uploads: finish or cancel some first.")
		}
		if o.usage(carried, used)+u.Size > s.lim.PerName {
			return false, files.Refuse(protocol.CodeQuota, "This would take you over your storage quota of %s.", sizeText(s.lim.PerName))
		}
		if o.Pending == nil {
			o.Pending = map[string]int64{}
		}
		if o.PendingAt == nil {
			o.PendingAt = map[string]int64{}
		}
		o.Pending[u.ID], o.PendingAt[u.ID] = u.Size, now
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	if already {
		// The racing Begin counts it in the total and writes the
		// upload's record.
		return 0, nil
	}
	// A failure from here on is undone whatever the caller's context
	// does (else the reservation would stay).
	undo, cancelUndo := context.WithTimeout(context.WithoutCancel(ctx), 2*s.c.opts.PublishTimeout)
	defer cancelUndo()
	err = casJSON(ctx, s, totalKey, func(t *totalRec) (bool, error) {
		if t.Bytes+u.Size > s.lim.Total {
			return false, files.Refuse(protocol.CodeQuota, "The server's storage for files is full.")
		}
		t.Bytes += u.Size
		return true, nil
	})
	if err != nil {
		if uerr := s.unpend(undo, u.Owner, u.ID); uerr != nil {
			s.c.opts.Logger.Warn("cluster: file store: undoing a refused upload's reservation failed; it expires", "err", uerr)
		}
		return 0, err
	}
	b, _ := json.Marshal(uploadRec{Room: u.Room, Name: sqlite.CleanName(u.Name), Size: u.Size, Created: now})
	if _, err := s.kv.Put(ctx, key, b); err != nil {
		if uerr := s.release(undo, u.Owner, u.ID, u.Size); uerr != nil {
			s.c.opts.Logger.Warn("cluster: file store: undoing an upload's reservation failed; it expires", "err", uerr)
		}
		return 0, err
	}
	s.saw(key, 0) // no chunk yet: this node's first chunk expects none
	return 0, nil
}

// fence answers a Begin that resumes: it publishes an empty chunk at the
// end of the upload's chunks, expecting the last one it read, and
// remembers it as this node's last. A node that still writes a dead
// connection's chunks expects its own last chunk and is refused from
// then on, so the bytes answered here stay the upload's.
func (s *FileStore) fence(ctx context.Context, owner, id string) (int64, error) {
	for {
		seq, have, err := s.lastPart(ctx, owner, id)
		if err != nil {
			return 0, err
		}
		m := &nats.Msg{Subject: partsSubject(owner, id), Header: nats.Header{headerOffset: []string{strconv.FormatInt(have, 10)}}}
		ack, err := s.c.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(seq))
		if isConflict(err) {
			continue // a chunk landed meanwhile: fence after it
		}
		if err != nil {
			return 0, fmt.Errorf("cluster: file store: fencing an upload: %w", err)
		}
		s.saw(uploadKey(owner, id), ack.Sequence)
		return have, nil
	}
}

// saw remembers seq as the last chunk this node wrote of upload key.
func (s *FileStore) saw(key string, seq uint64) {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	if _, ok := s.seen[key]; !ok && len(s.seen) >= maxSeen {
		for k := range s.seen {
			delete(s.seen, k) // any one: it falls back to the stream's last chunk
			break
		}
	}
	s.seen[key] = seq
}

// lastSeen returns the last chunk this node wrote of upload key.
func (s *FileStore) lastSeen(key string) (uint64, bool) {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	seq, ok := s.seen[key]
	return seq, ok
}

// forgetSeen forgets upload key (finished or dropped).
func (s *FileStore) forgetSeen(key string) {
	s.seenMu.Lock()
	delete(s.seen, key)
	s.seenMu.Unlock()
}

// prune forgets holds that ended, and pending uploads begun more than
// holdFor ago (Collect drops such uploads; one whose Begin failed midway
// has nothing else to drop it).
func (o *ownerRec) prune(now int64, holdFor time.Duration) {
	for id, h := range o.Held {
		if h.Until <= now {
			delete(o.Held, id)
		}
	}
	for id, at := range o.PendingAt {
		if at <= now-holdFor.Milliseconds() {
			o.unpend(id)
		}
	}
}

// unpend forgets pending upload id.
func (o *ownerRec) unpend(id string) {
	delete(o.Pending, id)
	delete(o.PendingAt, id)
}

// usage is the bytes counted against the name: unfinished uploads at
// their full size, held files no message of the name carried since they
// were finished (used: file id → the last such message's time), and the
// files its messages carry (carried: file id → size): once per file.
func (o *ownerRec) usage(carried, used map[string]int64) int64 {
	var n int64
	for _, sz := range o.Pending {
		n += sz
	}
	for id, h := range o.Held {
		if _, ok := carried[id]; !ok && max(used[id], h.Used) < h.From {
			n += h.Size
		}
	}
	for _, sz := range carried {
		n += sz
	}
	return n
}

// carried returns the files the owner's live messages carry, and when
// the owner last sent each file it sent (used), from the node's index
// (caught up first, as far as it gets in indexCatchUp).
func (s *FileStore) carried(ctx context.Context, owner string) (carried, used map[string]int64, err error) {
	n, err := s.node()
	if err != nil {
		return nil, nil, err
	}
	_ = s.indexCaughtUp(ctx)
	carried, used = map[string]int64{}, map[string]int64{}
	for _, q := range []struct {
		sql string
		out map[string]int64
	}{
		{`SELECT id, max(size) FROM files WHERE owner = ? GROUP BY id`, carried},
		{`SELECT id, time FROM used WHERE owner = ?`, used},
	} {
		rows, err := n.search.db.QueryContext(ctx, q.sql, owner)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: file store: %w", err)
		}
		for rows.Next() {
			var id string
			var v int64
			if err := rows.Scan(&id, &v); err != nil {
				rows.Close()
				return nil, nil, err
			}
			q.out[id] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	return carried, used, nil
}

// indexCaughtUp waits, at most indexCatchUp, until the node's index has
// applied the stream's last chat message.
func (s *FileStore) indexCaughtUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, indexCatchUp)
	defer cancel()
	n, err := s.node()
	if err != nil {
		return err
	}
	return n.SearchSynced(ctx)
}

// unpend removes an upload from its owner's pending uploads.
func (s *FileStore) unpend(ctx context.Context, owner, id string) error {
	return casJSON(ctx, s, ownerKey(owner), func(o *ownerRec) (bool, error) {
		if _, ok := o.Pending[id]; !ok {
			return false, nil
		}
		o.unpend(id)
		return true, nil
	})
}

// addTotal moves the server's total by delta.
func (s *FileStore) addTotal(ctx context.Context, delta int64) error {
	if delta == 0 {
		return nil
	}
	return casJSON(ctx, s, totalKey, func(t *totalRec) (bool, error) {
		t.Bytes = max(0, t.Bytes+delta)
		return true, nil
	})
}

// release gives an unfinished upload's reservation back.
func (s *FileStore) release(ctx context.Context, owner, id string, size int64) error {
	if err := s.unpend(ctx, owner, id); err != nil {
		return err
	}
	return s.addTotal(ctx, -size)
}

// drop removes an upload: its bytes, its key and, if unfinished, its
// reservation.
func (s *FileStore) drop(ctx context.Context, owner, id string, rec *uploadRec) error {
	s.forgetSeen(uploadKey(owner, id))
	if err := s.uploads.Purge(ctx, jetstream.WithPurgeSubject(partsSubject(owner, id))); err != nil {
		return fmt.Errorf("cluster: file store: dropping upload bytes: %w", err)
	}
	if err := s.kv.Delete(ctx, uploadKey(owner, id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	if rec.File == "" {
		return s.release(ctx, owner, id, rec.Size)
	}
	return nil
}

// lastPart returns the stream seq of the upload's last chunk (0: none)
// and the bytes stored.
func (s *FileStore) lastPart(ctx context.Context, owner, id string) (seq uint64, have int64, err error) {
	m, err := s.c.leaderMsg(ctx, UploadStream, getReq{LastBySubj: partsSubject(owner, id)})
	if err != nil || m == nil {
		return 0, 0, err
	}
	off, err := strconv.ParseInt(m.headers().Get(headerOffset), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("cluster: file store: a chunk without its offset")
	}
	return m.Seq, off + int64(len(m.Data)), nil
}

// Write implements files.Store. Chunks are published with the upload's
// last chunk as the expected last message of its subject: two nodes
// writing one upload (a client reconnected elsewhere while its old
// connection still wrote) cannot both append at one offset.
func (s *FileStore) Write(ctx context.Context, owner, id string, offset int64, data []byte) (int64, error) {
	ctx, cancel := s.ctxTimeout(ctx, 2)
	defer cancel()
	var rec uploadRec
	rev, err := s.getJSON(ctx, uploadKey(owner, id), &rec)
	if err != nil {
		return 0, err
	}
	if rev == 0 || rec.File != "" {
		return 0, files.ErrNotFound
	}
	seq, have, err := s.lastPart(ctx, owner, id)
	if err != nil {
		return 0, err
	}
	if offset != have {
		return 0, &files.OffsetError{Have: have}
	}
	if mine, ok := s.lastSeen(uploadKey(owner, id)); ok && mine != seq {
		// Another node began (fenced) or wrote this upload since this
		// node last did: this is a dead connection's chunk.
		return 0, &files.OffsetError{Have: have}
	}
	if offset+int64(len(data)) > rec.Size {
		return 0, files.Refuse(protocol.CodeInvalid, "The upload is longer than its announced size.")
	}
	subj := partsSubject(owner, id)
	for len(data) > 0 {
		chunk := data[:min(len(data), maxChunk)]
		m := &nats.Msg{Subject: subj, Data: chunk, Header: nats.Header{headerOffset: []string{strconv.FormatInt(have, 10)}}}
		ack, err := s.c.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(seq))
		if isConflict(err) {
			// Another connection wrote meanwhile: the client goes on
			// from what is there now.
			_, now, err := s.lastPart(ctx, owner, id)
			if err != nil {
				return 0, err
			}
			return 0, &files.OffsetError{Have: now}
		}
		if err != nil {
			return 0, fmt.Errorf("cluster: file store: storing a chunk: %w", err)
		}
		seq, have = ack.Sequence, have+int64(len(chunk))
		s.saw(uploadKey(owner, id), seq)
		data = data[len(chunk):]
	}
	return have, nil
}

// finishWait is how often a Finish waiting for another node's Finish of
// the same upload (or for a Collect deleting the same content) looks
// again.
const finishWait = 50 * time.Millisecond

// finishFor bounds one Finish: past it, a "finishing" claim is stale (its
// node died) and another Finish takes the upload over.
func (s *FileStore) finishFor() time.Duration { return 12 * s.c.opts.PublishTimeout }

// Finish implements files.Store. It claims the upload first (a
// compare-and-set of its record to "finishing" with a deadline): a
// second Finish of it — the client resumed on another node while the
// first ran — waits for the file instead of running again, or takes over
// once the deadline passed. The state-changing steps run detached from
// the caller's context (a client that drops midway does not leave them
// half done), bounded by finishFor.
func (s *FileStore) Finish(ctx context.Context, owner, id string) (protocol.File, error) {
	started := time.Now() // the hold's start: when the client finished
	key := uploadKey(owner, id)
	var rec uploadRec
	var claimed uint64
	for claimed == 0 {
		rctx, cancel := s.ctxTimeout(ctx, 1)
		rec = uploadRec{}
		rev, err := s.getJSON(rctx, key, &rec)
		cancel()
		if err != nil {
			return protocol.File{}, err
		}
		if rev == 0 {
			return protocol.File{}, files.ErrNotFound
		}
		if rec.File != "" {
			return s.Held(ctx, owner, rec.File)
		}
		now := time.Now()
		if rec.Finishing > now.UnixMilli() {
			// Another Finish runs: wait for its file (or its end).
			select {
			case <-time.After(finishWait):
				continue
			case <-ctx.Done():
				return protocol.File{}, ctx.Err()
			}
		}
		rec.Finishing = now.Add(s.finishFor()).UnixMilli()
		b, _ := json.Marshal(rec)
		wctx, cancel := s.ctxTimeout(ctx, 1)
		claimed, err = s.kv.Update(wctx, key, b, rev)
		cancel()
		if err != nil && !isConflict(err) {
			return protocol.File{}, err
		}
	}
	// Claimed: from here on the steps finish whatever the caller does.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.finishFor())
	defer cancel()
	orig := rec
	f, err := s.finish(ctx, owner, id, &rec, claimed, started)
	if err != nil {
		rec = orig
		// Give the claim back (unless the upload was dropped or taken
		// over: then the revision moved): the client's next Finish
		// tries again at once.
		rec.Finishing = 0
		b, _ := json.Marshal(rec)
		_, _ = s.kv.Update(ctx, key, b, claimed)
	}
	return f, err
}

// finish stores the claimed upload rec (its record at revision claimed).
func (s *FileStore) finish(ctx context.Context, owner, id string, rec *uploadRec, claimed uint64, started time.Time) (protocol.File, error) {
	tmp, err := s.cache.temp()
	if err != nil {
		return protocol.File{}, err
	}
	defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	got, err := s.readParts(ctx, owner, id, rec.Size, tmp)
	if err != nil {
		return protocol.File{}, err
	}
	if got != rec.Size {
		return protocol.File{}, files.Refuse(protocol.CodeInvalid, "The upload is not complete (%d of %d bytes).", got, rec.Size)
	}
	select {
	case s.inspecting <- struct{}{}:
	case <-ctx.Done():
		return protocol.File{}, ctx.Err()
	}
	// The slot is kept until the content is stored: the cleaned image
	// and the preview are in memory until then.
	defer func() { <-s.inspecting }()
	res, err := s.opts.Inspect(tmp, rec.Size, media.Limits{MaxPixels: s.lim.MaxPixels})
	if err != nil {
		// A damaged image or one over the pixel budget: nothing of it
		// stays. The record is deleted at the claimed revision, so the
		// reservation is returned once.
		if derr := s.dropClaimed(ctx, owner, id, rec, claimed); derr != nil {
			s.c.opts.Logger.Warn("cluster: dropping a refused upload failed; Collect removes it", "err", derr)
		}
		if errors.Is(err, media.ErrDamaged) || errors.Is(err, media.ErrTooLarge) {
			return protocol.File{}, files.Refuse(protocol.CodeInvalid, "%s", sentence(err))
		}
		return protocol.File{}, err
	}
	var content io.ReadSeeker = io.NewSectionReader(tmp, 0, rec.Size)
	size := rec.Size
	if res.Clean != nil {
		content, size = bytes.NewReader(res.Clean), int64(len(res.Clean))
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, content); err != nil {
		return protocol.File{}, err
	}
	f := protocol.File{ID: hex.EncodeToString(sum.Sum(nil)), Name: rec.Name, Type: res.Type, Size: uint64(size),
		Width: uint64(res.Width), Height: uint64(res.Height)}
	if res.Thumb != nil {
		ts := sha256.Sum256(res.Thumb)
		f.Thumb, f.ThumbWidth, f.ThumbHeight = hex.EncodeToString(ts[:]), uint64(res.ThumbWidth), uint64(res.ThumbHeight)
	}
	until := started.Add(s.lim.HoldFor).UnixMilli()
	from := until - s.lim.HoldFor.Milliseconds()
	// The name's holds are checked before the hold is written: a
	// Finish refused here leaves no usable hold.
	err = casJSON(ctx, s, ownerKey(owner), func(o *ownerRec) (bool, error) {
		o.prune(time.Now().UnixMilli(), s.lim.HoldFor)
		_, again := o.Held[f.ID]
		if len(o.Held) >= maxHolds && !again {
			return false, files.Refuse(protocol.CodeQuota, "Too many files uploaded and not sent yet.")
		}
		o.unpend(id)
		if o.Held == nil {
			o.Held = map[string]heldSize{}
		}
		o.Held[f.ID] = heldSize{Size: int64(f.Size), From: from, Until: until}
		return true, nil
	})
	if err != nil {
		return protocol.File{}, err
	}
	// The hold before the blobs' registration: Collect lists blobs, then
	// holds, so a blob it lists has its hold listed (DESIGN.md, "Files").
	hb, _ := json.Marshal(holdRec{File: f, From: from, Until: until})
	if _, err := s.kv.Put(ctx, holdKey(owner, f.ID), hb); err != nil {
		return protocol.File{}, err
	}
	if _, err := content.Seek(0, io.SeekStart); err != nil {
		return protocol.File{}, err
	}
	if err := s.store(ctx, f.ID, f.Type, int64(f.Size), content); err != nil {
		return protocol.File{}, err
	}
	if f.Thumb != "" {
		if err := s.store(ctx, f.Thumb, res.ThumbType, int64(len(res.Thumb)), bytes.NewReader(res.Thumb)); err != nil {
			return protocol.File{}, err
		}
	}
	// The upload becomes its file at the claimed revision: only the
	// Finish that does so returns the reservation (each registration
	// counted its object when it created it, in store).
	rec.File, rec.Finishing = f.ID, 0
	b, _ := json.Marshal(rec)
	if _, err := s.kv.Update(ctx, uploadKey(owner, id), b, claimed); err != nil {
		if !isConflict(err) {
			return protocol.File{}, err
		}
		// Taken over (this Finish outlived its deadline): the other
		// one answers for the upload.
		var now uploadRec
		if _, err := s.getJSON(ctx, uploadKey(owner, id), &now); err != nil {
			return protocol.File{}, err
		}
		if now.File == "" {
			return protocol.File{}, fmt.Errorf("cluster: file store: upload %s was taken over by another Finish", id)
		}
		return s.Held(ctx, owner, now.File)
	}
	if err := s.addTotal(ctx, -rec.Size); err != nil {
		s.c.opts.Logger.Warn("cluster: file store: returning an upload's reservation failed", "err", err)
	}
	s.forgetSeen(uploadKey(owner, id))
	if err := s.uploads.Purge(ctx, jetstream.WithPurgeSubject(partsSubject(owner, id))); err != nil {
		s.c.opts.Logger.Warn("cluster: file store: purging a finished upload's bytes failed; they expire", "err", err)
	}
	return f, nil
}

// dropClaimed removes an upload whose record is at revision claimed: its
// bytes, its record and its reservation, once.
func (s *FileStore) dropClaimed(ctx context.Context, owner, id string, rec *uploadRec, claimed uint64) error {
	if err := s.uploads.Purge(ctx, jetstream.WithPurgeSubject(partsSubject(owner, id))); err != nil {
		return fmt.Errorf("cluster: file store: dropping upload bytes: %w", err)
	}
	if err := s.kv.Delete(ctx, uploadKey(owner, id), jetstream.LastRevision(claimed)); err != nil {
		if isConflict(err) {
			return nil // another Finish took over and answers for it
		}
		return err
	}
	return s.release(ctx, owner, id, rec.Size)
}

// sentence is err's text as a sentence for the user.
func sentence(err error) string {
	t := err.Error()
	if t == "" {
		return t
	}
	t = strings.ToUpper(t[:1]) + t[1:]
	if !strings.HasSuffix(t, ".") {
		t += "."
	}
	return t
}

// readParts copies the upload's chunks in order to w, checking each is
// at the offset the previous ended; it returns the bytes copied.
func (s *FileStore) readParts(ctx context.Context, owner, id string, size int64, w io.Writer) (int64, error) {
	lastSeq, have, err := s.lastPart(ctx, owner, id)
	if err != nil || lastSeq == 0 {
		return 0, err
	}
	if have != size {
		return have, nil
	}
	cons, err := s.uploads.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{partsSubject(owner, id)}})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages()
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	var got int64
	for {
		type next struct {
			m   jetstream.Msg
			err error
		}
		ch := make(chan next, 1)
		go func() { m, err := it.Next(); ch <- next{m, err} }()
		var n next
		select {
		case n = <-ch:
		case <-ctx.Done():
			it.Stop()
			return got, ctx.Err()
		}
		if n.err != nil {
			return got, n.err
		}
		meta, err := n.m.Metadata()
		if err != nil {
			return got, err
		}
		off, err := strconv.ParseInt(n.m.Headers().Get(headerOffset), 10, 64)
		if err != nil || off != got {
			return got, fmt.Errorf("cluster: file store: upload %s has a chunk at %d, expected %d", id, off, got)
		}
		if _, err := w.Write(n.m.Data()); err != nil {
			return got, err
		}
		got += int64(len(n.m.Data()))
		if meta.Sequence.Stream >= lastSeq {
			return got, nil
		}
	}
}

// putObject stores content as object id unless it is there.
func (s *FileStore) putObject(ctx context.Context, id, typ string, content io.Reader) error {
	if _, err := s.obj.GetInfo(ctx, id); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return err
	}
	_, err := s.obj.Put(ctx, jetstream.ObjectMeta{Name: id, Headers: nats.Header{headerType: []string{typ}}}, content)
	if err != nil {
		return fmt.Errorf("cluster: file store: storing %s: %w", id, err)
	}
	return nil
}

// store puts content as object id unless it is there, and registers it
// (key b.<id>); a registration it creates counts the object in the
// server's total. A registration already there is written again, so a
// Collect that listed it before this upload's hold existed cannot mark
// or delete it (it expects the revision it listed). One that a Collect
// marked deleting is waited for (the object goes): then the content is
// stored again. Whenever this creates the registration, the object is
// checked and put again if a Collect deleted it meanwhile.
func (s *FileStore) store(ctx context.Context, id, typ string, size int64, content io.ReadSeeker) error {
	if err := s.putObject(ctx, id, typ, content); err != nil {
		return err
	}
	val, _ := json.Marshal(blobRec{Size: size, Type: typ})
	for {
		var created, recheck, deleting bool
		_, err := s.c.kvCAS(ctx, s.kv, blobKey(id), func(cur []byte) ([]byte, bool, error) {
			created, recheck, deleting = cur == nil, cur == nil, false
			if cur != nil {
				var b blobRec
				if json.Unmarshal(cur, &b) == nil && b.Deleting != 0 &&
					time.Since(time.UnixMilli(b.Deleting)) < s.finishFor() {
					deleting = true
					return nil, false, nil
				}
				// A mark older than finishFor: its Collect died (it
				// had not subtracted the object); this takes over
				// (the object is checked below).
				recheck = b.Deleting != 0
			}
			return val, true, nil
		})
		if err != nil {
			return err
		}
		if deleting {
			select {
			case <-time.After(finishWait):
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !recheck {
			return nil
		}
		if _, err := content.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := s.putObject(ctx, id, typ, content); err != nil {
			return err
		}
		if !created {
			return nil
		}
		return s.addTotal(ctx, size)
	}
}

// Held implements files.Store.
func (s *FileStore) Held(ctx context.Context, owner, fileID string) (protocol.File, error) {
	if !validID(fileID) {
		return protocol.File{}, files.ErrNotFound
	}
	ctx, cancel := s.ctxTimeout(ctx, 1)
	defer cancel()
	var h holdRec
	rev, err := s.getJSON(ctx, holdKey(owner, fileID), &h)
	if err != nil {
		return protocol.File{}, err
	}
	if rev == 0 || h.Until <= time.Now().UnixMilli() {
		return protocol.File{}, files.ErrNotFound
	}
	// A used hold outlives its content once the messages that carried
	// it are gone and Collect removed it: nothing to send any more.
	// Nor while a Collect deletes it (the registration marked).
	var b blobRec
	if rev, err := s.getJSON(ctx, blobKey(fileID), &b); err != nil || rev == 0 || b.Deleting != 0 {
		if err == nil {
			err = files.ErrNotFound
		}
		return protocol.File{}, err
	}
	return h.File, nil
}

// refers reports whether a live message of room carries fileID,
// according to the node's index.
func (s *FileStore) refers(ctx context.Context, room, fileID string) (bool, error) {
	n, err := s.node()
	if err != nil {
		return false, err
	}
	var one int
	err = n.search.db.QueryRowContext(ctx, `SELECT 1 FROM files WHERE room = ?1 AND (id = ?2 OR thumb = ?2) LIMIT 1`, room, fileID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Open implements files.Store. Before it looks, it waits (at most
// indexCatchUp) for the node's index to apply the stream's last message:
// a message stored through another node a moment ago carries its file on
// this node too (a FETCH right after the MESSAGE), and one deleted a
// moment ago no longer does. The wait is one leader read when the index
// is current; past the bound (NATS unreachable) the index answers as it
// is.
func (s *FileStore) Open(ctx context.Context, room, fileID string) (files.Blob, error) {
	if !validID(fileID) {
		return nil, files.ErrNotFound
	}
	if err := s.indexCaughtUp(ctx); err != nil && ctx.Err() != nil {
		return nil, err
	}
	ok, err := s.refers(ctx, room, fileID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, files.ErrNotFound
	}
	ctx, cancel := s.ctxTimeout(ctx, 6)
	defer cancel()
	return s.cache.open(ctx, s.obj, fileID)
}

// Usage implements files.Store.
func (s *FileStore) Usage(ctx context.Context, owner string) (name, total int64, err error) {
	ctx, cancel := s.ctxTimeout(ctx, 1)
	defer cancel()
	carried, used, err := s.carried(ctx, owner)
	if err != nil {
		return 0, 0, err
	}
	var o ownerRec
	if _, err := s.getJSON(ctx, ownerKey(owner), &o); err != nil {
		return 0, 0, err
	}
	o.prune(time.Now().UnixMilli(), s.lim.HoldFor)
	var t totalRec
	if _, err := s.getJSON(ctx, totalKey, &t); err != nil {
		return 0, 0, err
	}
	return o.usage(carried, used), t.Bytes, nil
}

// listKeys lists the bucket's keys matching filter.
func (s *FileStore) listKeys(ctx context.Context, filter string) ([]string, error) {
	l, err := s.kv.ListKeysFiltered(ctx, filter)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer l.Stop()
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

// Collect implements files.Store: unfinished uploads older than HoldFor
// and ended holds go; then the stored files no hold and no live message
// refers to, only once the node's index has caught up with the stream
// (else it could miss a reference) and once this node has seen them so
// for CollectGrace. Every node may collect at once: each
// deletion is a compare-and-set.
func (s *FileStore) Collect(ctx context.Context) error {
	now := time.Now().UnixMilli()
	cutoff := time.Now().Add(-s.lim.HoldFor).UnixMilli()
	// Uploads.
	ukeys, err := s.listKeys(ctx, "u.>")
	if err != nil {
		return err
	}
	for _, k := range ukeys {
		parts := strings.Split(k, ".")
		if len(parts) != 3 {
			continue
		}
		owner, err1 := FromToken(parts[1])
		id, err2 := FromToken(parts[2])
		var rec uploadRec
		rev, err := s.getJSON(ctx, k, &rec)
		if err != nil || err1 != nil || err2 != nil || rev == 0 {
			continue
		}
		if rec.Created < cutoff {
			if err := s.drop(ctx, owner, id, &rec); err != nil {
				return err
			}
		}
	}
	// Holds: listed before the blobs are read below, keys b listed
	// first (the order Finish writes them in reverse).
	bkeys, err := s.listKeys(ctx, "b.*")
	if err != nil {
		return err
	}
	type blob struct {
		rev  uint64
		size int64
		typ  string
	}
	blobs := map[string]blob{}
	for _, k := range bkeys {
		var b blobRec
		rev, err := s.getJSON(ctx, k, &b)
		if err != nil {
			return err
		}
		if rev != 0 {
			blobs[strings.TrimPrefix(k, "b.")] = blob{rev, b.Size, b.Type}
		}
	}
	keep := map[string]bool{}
	type hold struct {
		owner string
		rec   holdRec
	}
	var holds []hold
	hkeys, err := s.listKeys(ctx, "h.>")
	if err != nil {
		return err
	}
	for _, k := range hkeys {
		var h holdRec
		rev, err := s.getJSON(ctx, k, &h)
		if err != nil {
			return err
		}
		if rev == 0 {
			continue
		}
		if h.Until > now {
			if parts := strings.Split(k, "."); len(parts) == 3 {
				if owner, err := FromToken(parts[1]); err == nil {
					holds = append(holds, hold{owner, h})
				}
			}
			continue
		}
		if err := s.kv.Delete(ctx, k, jetstream.LastRevision(rev)); err != nil && !isConflict(err) {
			return err
		}
	}
	n, err := s.node()
	if err != nil {
		return err
	}
	// Sends older than any hold tell nothing any more.
	if _, err := n.search.db.ExecContext(ctx, `DELETE FROM used WHERE time < ?`, now-s.lim.HoldFor.Milliseconds()); err != nil {
		return err
	}
	if len(blobs) == 0 {
		s.grace.Ripe(nil, s.now()) // nothing stored: nothing to remember
		return nil
	}
	// References: only from an index that has everything stored so far.
	if err := s.indexCaughtUp(ctx); err != nil {
		return fmt.Errorf("cluster: file store: the index is behind; files not collected: %w", err)
	}
	// A hold keeps its content until a message of its owner carried it
	// (then the messages keep it; deleting them frees it).
	for _, h := range holds {
		var at int64
		err := n.search.db.QueryRowContext(ctx, `SELECT time FROM used WHERE owner = ? AND id = ?`, h.owner, h.rec.File.ID).Scan(&at)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if max(at, h.rec.Used) < h.rec.From {
			keep[h.rec.File.ID], keep[h.rec.File.Thumb] = true, true
		}
	}
	rows, err := n.search.db.QueryContext(ctx, `SELECT id FROM files UNION SELECT thumb FROM files WHERE thumb != ''`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		keep[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// When a message last carried each: the index's sends (any node's)
	// for files, the holds' for files and previews. A send restarts
	// the grace.
	sent := map[string]int64{}
	for _, h := range holds {
		for _, id := range []string{h.rec.File.ID, h.rec.File.Thumb} {
			if id != "" {
				sent[id] = max(sent[id], h.rec.Used)
			}
		}
	}
	var unreferenced []files.Unreferenced
	for id, b := range blobs {
		if keep[id] {
			continue
		}
		var at sql.NullInt64
		if err := n.search.db.QueryRowContext(ctx, `SELECT max(time) FROM used WHERE id = ?`, id).Scan(&at); err != nil {
			return err
		}
		u := files.Unreferenced{ID: id, Version: b.rev}
		if last := max(sent[id], at.Int64); last > 0 {
			u.Sent = time.UnixMilli(last)
		}
		unreferenced = append(unreferenced, u)
	}
	for _, id := range s.grace.Ripe(unreferenced, s.now()) {
		b := blobs[id]
		// Two phases: the registration is marked deleting at the
		// revision listed (a Finish re-registering meanwhile wins),
		// the object goes, then the key at the marked revision. A
		// Finish of the same content that finds the mark waits and
		// stores it again; Held answers not found from the mark on.
		mark, _ := json.Marshal(blobRec{Size: b.size, Type: b.typ, Deleting: time.Now().UnixMilli()})
		marked, err := s.kv.Update(ctx, blobKey(id), mark, b.rev)
		if isConflict(err) {
			continue // registered again meanwhile: someone uploaded it
		}
		if err != nil {
			return err
		}
		if err := s.obj.Delete(ctx, id); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return err
		}
		s.cache.forget(id)
		if s.beforeUnregister != nil {
			s.beforeUnregister(id)
		}
		err = s.kv.Delete(ctx, blobKey(id), jetstream.LastRevision(marked))
		if isConflict(err) {
			continue // a Finish took the stale mark over and counted it again
		}
		if err != nil {
			return err
		}
		// Unregistered, it no longer counts.
		if err := s.addTotal(ctx, -b.size); err != nil {
			return err
		}
	}
	return s.collectOrphans(ctx)
}

// orphanAge is how old an object without registration must be before
// Collect removes it: a Finish registers what it stored within moments.
const orphanAge = time.Hour

// collectOrphans removes objects that have no registration (a node died
// between storing and registering, or a Collect between unregistering
// and deleting), once older than orphanAge.
func (s *FileStore) collectOrphans(ctx context.Context) error {
	infos, err := s.obj.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, info := range infos {
		if info.Deleted || time.Since(info.ModTime) < orphanAge {
			continue
		}
		_, rev, err := s.c.leaderGet(ctx, s.kv, blobKey(info.Name))
		if err != nil {
			return err
		}
		if rev == 0 {
			if err := s.obj.Delete(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				return err
			}
			s.cache.forget(info.Name)
		}
	}
	return nil
}

// sizeText is n bytes for people.
func sizeText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// fileCache keeps local copies of objects being read, so a file's parts
// are read from a local file rather than by fetching the object again
// for every PART (an object's chunks are not addressable by offset). It
// is bounded in bytes: the least recently used copies not open go first.
type fileCache struct {
	dir string
	tmp bool
	max int64

	mu      sync.Mutex
	entries map[string]*cached
	size    int64
	clock   uint64
}

type cached struct {
	path  string
	size  int64
	typ   string
	refs  int
	used  uint64
	ready chan struct{} // closed when the copy is complete (or failed)
	err   error
	gone  bool // forgotten: removed when the last reader closes
}

func newFileCache(dir string, max int64) (*fileCache, error) {
	fc := &fileCache{dir: dir, max: max, entries: map[string]*cached{}}
	if dir == "" {
		d, err := os.MkdirTemp("", "chat-files-")
		if err != nil {
			return nil, fmt.Errorf("cluster: file cache: %w", err)
		}
		fc.dir, fc.tmp = d, true
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("cluster: file cache: %w", err)
		}
		// Copies of an earlier run may be stale (the files deleted since).
		old, _ := os.ReadDir(dir)
		for _, e := range old {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return fc, nil
}

// temp makes a temporary file in the cache's directory.
func (fc *fileCache) temp() (*os.File, error) { return os.CreateTemp(fc.dir, "upload-*") }

func (fc *fileCache) close() error {
	if fc.tmp {
		return os.RemoveAll(fc.dir)
	}
	return nil
}

// open returns a reader of object id, copying it first if the cache has
// no copy (one copy at a time per id, readers wait for it).
func (fc *fileCache) open(ctx context.Context, obj jetstream.ObjectStore, id string) (files.Blob, error) {
	fc.mu.Lock()
	e, ok := fc.entries[id]
	if !ok {
		e = &cached{path: filepath.Join(fc.dir, id), ready: make(chan struct{})}
		fc.entries[id] = e
		go fc.fill(obj, id, e)
	}
	e.refs++
	fc.clock++
	e.used = fc.clock
	fc.mu.Unlock()
	select {
	case <-e.ready:
	case <-ctx.Done():
		fc.release(id, e)
		return nil, ctx.Err()
	}
	if e.err != nil {
		fc.release(id, e)
		return nil, e.err
	}
	f, err := os.Open(e.path)
	if err != nil {
		fc.release(id, e)
		return nil, err
	}
	return &cachedBlob{f: f, e: e, fc: fc, id: id}, nil
}

// fill copies object id into e's file. A failure is kept for the readers
// waiting and the entry dropped, so the next open tries again.
func (fc *fileCache) fill(obj jetstream.ObjectStore, id string, e *cached) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := func() error {
		r, err := obj.Get(ctx, id)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return files.ErrNotFound
		}
		if err != nil {
			return err
		}
		defer r.Close()
		info, err := r.Info()
		if err != nil {
			return err
		}
		f, err := os.Create(e.path)
		if err != nil {
			return err
		}
		n, err := io.Copy(f, r) // the object store checks the digest at the end
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(e.path)
			return err
		}
		e.size, e.typ = n, info.Headers.Get(headerType)
		return nil
	}()
	fc.mu.Lock()
	e.err = err
	if err != nil {
		if fc.entries[id] == e {
			delete(fc.entries, id)
		}
	} else {
		fc.size += e.size
		fc.evictLocked()
	}
	fc.mu.Unlock()
	close(e.ready)
}

// evictLocked removes the least recently used copies nobody reads until
// the cache is within its bound.
func (fc *fileCache) evictLocked() {
	for fc.size > fc.max {
		var oldest *cached
		var oldID string
		for id, e := range fc.entries {
			if e.refs == 0 && e.err == nil && isReady(e) && (oldest == nil || e.used < oldest.used) {
				oldest, oldID = e, id
			}
		}
		if oldest == nil {
			return // every copy is being read: over the bound until closed
		}
		fc.removeLocked(oldID, oldest)
	}
}

func isReady(e *cached) bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

func (fc *fileCache) removeLocked(id string, e *cached) {
	if fc.entries[id] == e {
		delete(fc.entries, id)
	}
	fc.size -= e.size
	_ = os.Remove(e.path)
}

// release ends a reader of e.
func (fc *fileCache) release(id string, e *cached) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	e.refs--
	if e.refs == 0 && e.gone && isReady(e) && e.err == nil {
		fc.size -= e.size
		_ = os.Remove(e.path)
		return
	}
	fc.evictLocked()
}

// forget drops the copy of a deleted object (at once, or when its last
// reader closes).
func (fc *fileCache) forget(id string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	e, ok := fc.entries[id]
	if !ok || !isReady(e) {
		return
	}
	delete(fc.entries, id)
	if e.refs > 0 {
		e.gone = true
		return
	}
	if e.err == nil {
		fc.size -= e.size
		_ = os.Remove(e.path)
	}
}

// cachedBlob reads a cached copy.
type cachedBlob struct {
	f    *os.File
	e    *cached
	fc   *fileCache
	id   string
	once sync.Once
}

func (b *cachedBlob) ReadAt(p []byte, off int64) (int, error) { return b.f.ReadAt(p, off) }
func (b *cachedBlob) Size() int64                             { return b.e.size }
func (b *cachedBlob) Type() string                            { return b.e.typ }
func (b *cachedBlob) Close() error {
	var err error
	b.once.Do(func() {
		err = b.f.Close()
		b.fc.release(b.id, b.e)
	})
	return err
}
