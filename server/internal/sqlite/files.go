package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"chat/protocol"
	"chat/server/internal/files"
	"chat/server/internal/files/media"
)

// Files is the single server's files.Store: metadata in the chat
// database (tables blobs, holds and uploads of schemaV8; the messages'
// file columns say which room may read what), content on disk under a
// directory, each file at xx/<sha256> (xx: the hash's first two hex
// digits, so no directory grows past a few thousand entries), partial
// uploads in tmp/. Content is written to a temporary file and renamed
// into place, so a crash never leaves a half-written file under a hash.
type Files struct {
	write, read *sql.DB
	dir         string // the files directory: DIR/files
	lim         files.Limits
	sync        bool // fsync content and directories before the commit that refers to them
	now         func() time.Time
	logger      *slog.Logger

	// mu guards uploads, the locks of the uploads being worked on (each
	// upload's begin, writes and finish go one at a time), each with the
	// number of callers that use it: the last one drops it.
	mu      sync.Mutex
	uploads map[uploadKey]*uploadLock
	// blobs orders the placing of content against Collect: a Finish that
	// finds its content already stored must not see it collected before
	// its hold is committed.
	blobs sync.Mutex
	// finishing bounds the Finish calls decoding images at once (each
	// may take hundreds of megabytes: media.Inspect).
	finishing chan struct{}
	// grace keeps unreferenced content FilesOptions.CollectGrace long
	// (only Collect uses it).
	grace    *files.Grace
	maxHolds int // maxHolds; tests lower it

	kick   chan struct{} // capacity 1: Collect soon
	cancel context.CancelFunc
	done   chan struct{}
}

var _ files.Store = (*Files)(nil)

type uploadKey struct{ owner, id string }

type uploadLock struct {
	sync.Mutex
	users int // guarded by Files.mu
}

// FilesOptions tune a Files store.
type FilesOptions struct {
	Limits files.Limits
	// Synchronous is as for Options: "full" (the default) syncs stored
	// content to disk before its metadata commits; "normal" leaves it to
	// the file system.
	Synchronous string
	// Finishing is how many uploads may be finished (sniffed, images
	// decoded and previewed) at once (default 2).
	Finishing int
	// CollectEvery is how often Collect runs on its own (default an hour);
	// Kick runs it sooner.
	CollectEvery time.Duration
	// CollectGrace is how long content stays unreferenced before Collect
	// removes it (default 10 minutes; negative: none, for tests). A backup
	// of a running server copies the database first and the content
	// after: content a message of the copy carries, deleted meanwhile,
	// must still be there when the copy reaches it.
	CollectGrace time.Duration
	Logger       *slog.Logger
}

// DefaultCollectGrace is FilesOptions.CollectGrace's default.
const DefaultCollectGrace = 10 * time.Minute

// collectGrace is the grace period of FilesOptions.CollectGrace v.
func collectGrace(v time.Duration) time.Duration {
	if v == 0 {
		return DefaultCollectGrace
	}
	return v // negative: none
}

// maxHolds bounds the holds of one name (finished uploads, used or
// waiting for their SEND, until HoldFor ends them), as the cluster does:
// re-uploading the same bytes under fresh ids costs no quota but a row.
const maxHolds = 4096

// orphanAge is how old content with no blobs row must be before Collect
// removes it: a Finish places content before committing its row.
const orphanAge = time.Hour

// OpenFiles opens the files store of the chat database at path, with
// content under dir (the data directory; files go to dir/files),
// creating what is missing.
func OpenFiles(path, dir string, opts FilesOptions) (*Files, error) {
	switch opts.Synchronous {
	case "", "full", "FULL", "normal", "NORMAL":
	default:
		return nil, fmt.Errorf("sqlite: synchronous must be full or normal, not %q", opts.Synchronous)
	}
	root := filepath.Join(dir, "files")
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: files: %w", err)
	}
	write, read, err := openPair(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: files in %s: %w", path, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Files{write: write, read: read, dir: root, lim: opts.Limits.WithDefaults(),
		sync: !strings.EqualFold(opts.Synchronous, "normal"), now: time.Now, logger: opts.Logger,
		uploads: map[uploadKey]*uploadLock{}, finishing: make(chan struct{}, cmp(opts.Finishing, 2)),
		kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}),
		grace: files.NewGrace(collectGrace(opts.CollectGrace)), maxHolds: maxHolds}
	if f.logger == nil {
		f.logger = slog.New(slog.DiscardHandler)
	}
	every := opts.CollectEvery
	if every <= 0 {
		every = time.Hour
	}
	go f.collector(ctx, every)
	return f, nil
}

// Close stops collecting and closes the connections. Uploads in
// progress stay in the database and under tmp/, to be resumed.
func (f *Files) Close() error {
	f.cancel()
	<-f.done
	return errors.Join(f.read.Close(), f.write.Close())
}

// Kick asks for a Collect soon, without waiting: the Log and Moderation
// call it (Options.Removed) after removing messages.
func (f *Files) Kick() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *Files) collector(ctx context.Context, every time.Duration) {
	defer close(f.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
		}
		if err := f.Collect(ctx); err != nil && ctx.Err() == nil {
			f.logger.Warn("files: collecting unused content", "err", err)
		}
	}
}

// lock takes the lock of an upload and returns its release.
func (f *Files) lock(owner, id string) (unlock func()) {
	k := uploadKey{owner, id}
	f.mu.Lock()
	m := f.uploads[k]
	if m == nil {
		m = &uploadLock{}
		f.uploads[k] = m
	}
	m.users++
	f.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		f.mu.Lock()
		if m.users--; m.users == 0 {
			delete(f.uploads, k)
		}
		f.mu.Unlock()
	}
}

func (f *Files) millis() int64 { return int64(protocol.Millis(f.now())) }

// CleanName makes an uploaded file's name safe to show and to save: the
// base name (no directories, of either slash), without control
// characters and format characters (bidi overrides, zero-width), at most 255 bytes of valid UTF-8; "file" when nothing is
// left.
func CleanName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.ToValidUTF8(name, "\uFFFD")
	name = strings.Map(func(r rune) rune {
		// Format characters too: a bidi override (U+202E) would show
		// "invoice\u202Efdp.exe" as "invoiceexe.pdf"; zero-width ones hide
		// what a name really is.
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	for len(name) > 255 {
		_, n := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-n]
	}
	if name == "" || name == "." || name == ".." {
		return "file"
	}
	return name
}

// tmpPath is where the upload (owner, id) is written, relative to the
// files directory: ids are any bytes, so the name is a hash of both.
func tmpPath(owner, id string) string {
	h := sha256.Sum256([]byte(owner + "\x00" + id))
	return filepath.Join("tmp", hex.EncodeToString(h[:16]))
}

// blobPath is where content id is stored, relative to the files
// directory.
func blobPath(id string) string { return filepath.Join(id[:2], id) }

// usage returns the bytes owner holds and the server's total, in q's
// snapshot: the files the owner's live messages carry and the files it
// holds, each once, plus its unfinished uploads at their full size; the
// total is every stored content plus every unfinished upload.
func (f *Files) usage(ctx context.Context, q queryer, owner string) (name, total int64, err error) {
	err = q.QueryRowContext(ctx, `SELECT
		coalesce((SELECT sum(b.size) FROM blobs b WHERE b.id IN (
			SELECT file FROM messages WHERE sender_key = ?1 AND file IS NOT NULL
			UNION SELECT file FROM holds WHERE owner = ?1 AND until > ?2 AND used = 0)), 0)
		+ coalesce((SELECT sum(size) FROM uploads WHERE owner = ?1), 0),
		coalesce((SELECT sum(size) FROM blobs), 0) + coalesce((SELECT sum(size) FROM uploads), 0)`,
		owner, f.millis()).Scan(&name, &total)
	return name, total, err
}

// Usage implements files.Store.
func (f *Files) Usage(ctx context.Context, owner string) (name, total int64, err error) {
	return f.usage(ctx, f.read, owner)
}

// Begin implements files.Store.
func (f *Files) Begin(ctx context.Context, u files.Upload) (int64, error) {
	switch {
	case u.Size <= 0:
		return 0, files.Refuse(protocol.CodeInvalid, "an empty file cannot be sent")
	case u.Size > f.lim.MaxFile:
		return 0, files.Refuse(protocol.CodeTooBig, "the file is larger than this server takes (%s)", sizeText(f.lim.MaxFile))
	}
	defer f.lock(u.Owner, u.ID)()
	tx, err := f.write.BeginTx(ctx, nil) // immediate: the quota check and the insert are one step
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	now := f.millis()
	// Finished already (a client that lost the last UPLOADED): all there,
	// if the content still is (Finish then answers as heldUpload).
	var held int64
	switch err := tx.QueryRowContext(ctx, `SELECT size FROM holds WHERE owner = ? AND upload = ? AND until > ?
		AND EXISTS (SELECT 1 FROM blobs WHERE id = holds.file)`, u.Owner, u.ID, now).Scan(&held); {
	case err == nil && held == u.Size:
		return u.Size, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return 0, err
	}
	var size int64
	var rel string
	switch err := tx.QueryRowContext(ctx, "SELECT size, path FROM uploads WHERE owner = ? AND id = ?", u.Owner, u.ID).Scan(&size, &rel); {
	case err == nil && size == u.Size:
		// Resume: the partial file's length is what arrived.
		st, err := os.Stat(filepath.Join(f.dir, rel))
		if errors.Is(err, os.ErrNotExist) {
			// The partial file is gone (the directory was cleaned): start over.
			err = os.WriteFile(filepath.Join(f.dir, rel), nil, 0o600)
			st = nil
		}
		if err != nil {
			return 0, err
		}
		have := int64(0)
		if st != nil {
			have = min(st.Size(), size)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE uploads SET touched = ? WHERE owner = ? AND id = ?", now, u.Owner, u.ID); err != nil {
			return 0, err
		}
		return have, tx.Commit()
	case err == nil:
		// The same id with another size: a new upload replaces it.
		if _, err := tx.ExecContext(ctx, "DELETE FROM uploads WHERE owner = ? AND id = ?", u.Owner, u.ID); err != nil {
			return 0, err
		}
	case !errors.Is(err, sql.ErrNoRows):
		return 0, err
	}
	var pending int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM uploads WHERE owner = ?", u.Owner).Scan(&pending); err != nil {
		return 0, err
	}
	if pending >= f.lim.Pending {
		return 0, files.Refuse(protocol.CodeInvalid, "too many unfinished uploads (at most %d at once)", f.lim.Pending)
	}
	var holds int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM holds WHERE owner = ?", u.Owner).Scan(&holds); err != nil {
		return 0, err
	}
	if holds >= f.maxHolds {
		return 0, files.Refuse(protocol.CodeQuota, "too many uploads in the last %v (at most %d): wait before uploading more", f.lim.HoldFor, f.maxHolds)
	}
	name, total, err := f.usage(ctx, tx, u.Owner)
	if err != nil {
		return 0, err
	}
	switch {
	case name+u.Size > f.lim.PerName:
		return 0, files.Refuse(protocol.CodeQuota, "this file would take your files over your quota of %s (%s used)",
			sizeText(f.lim.PerName), sizeText(name))
	case total+u.Size > f.lim.Total:
		return 0, files.Refuse(protocol.CodeQuota, "the server has no room for this file")
	}
	rel = tmpPath(u.Owner, u.ID)
	if err := os.WriteFile(filepath.Join(f.dir, rel), nil, 0o600); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO uploads (owner, id, room, name, size, path, touched) VALUES (?, ?, ?, ?, ?, ?, ?)",
		u.Owner, u.ID, u.Room, CleanName(u.Name), u.Size, rel, now); err != nil {
		return 0, err
	}
	return 0, tx.Commit()
}

// upload is an unfinished upload's row.
type upload struct {
	room, name, path string
	size             int64
}

func (f *Files) upload(ctx context.Context, owner, id string) (upload, error) {
	var u upload
	err := f.read.QueryRowContext(ctx, "SELECT room, name, size, path FROM uploads WHERE owner = ? AND id = ?", owner, id).
		Scan(&u.room, &u.name, &u.size, &u.path)
	if errors.Is(err, sql.ErrNoRows) {
		return u, files.ErrNotFound
	}
	return u, err
}

// Write implements files.Store. The partial file's length is how much
// arrived: a chunk is appended at its end.
func (f *Files) Write(ctx context.Context, owner, id string, offset int64, data []byte) (int64, error) {
	defer f.lock(owner, id)()
	u, err := f.upload(ctx, owner, id)
	if err != nil {
		return 0, err
	}
	file, err := os.OpenFile(filepath.Join(f.dir, u.path), os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer file.Close()
	have, err := file.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	switch {
	case offset != have:
		return have, &files.OffsetError{Have: have}
	case offset+int64(len(data)) > u.size:
		return have, files.Refuse(protocol.CodeInvalid, "the upload has %d bytes, not more", u.size)
	}
	n, err := file.Write(data)
	if err != nil {
		// A short write leaves what was written: the client goes on from
		// the partial file's length.
		return have + int64(n), err
	}
	return have + int64(n), nil
}

// Finish implements files.Store.
func (f *Files) Finish(ctx context.Context, owner, id string) (protocol.File, error) {
	defer f.lock(owner, id)()
	u, err := f.upload(ctx, owner, id)
	if errors.Is(err, files.ErrNotFound) {
		return f.heldUpload(ctx, owner, id)
	}
	if err != nil {
		return protocol.File{}, err
	}
	select {
	case f.finishing <- struct{}{}:
		defer func() { <-f.finishing }()
	case <-ctx.Done():
		return protocol.File{}, ctx.Err()
	}
	tmp := filepath.Join(f.dir, u.path)
	src, err := os.Open(tmp)
	if err != nil {
		return protocol.File{}, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return protocol.File{}, err
	}
	if st.Size() != u.size {
		return protocol.File{}, files.Refuse(protocol.CodeInvalid, "the upload is not complete (%d of %d bytes)", st.Size(), u.size)
	}
	res, err := media.Inspect(src, u.size, media.Limits{MaxPixels: f.lim.MaxPixels})
	if err != nil {
		if errors.Is(err, media.ErrDamaged) || errors.Is(err, media.ErrTooLarge) {
			// Refused: nothing of it stays.
			src.Close()
			if derr := f.drop(ctx, owner, id, u.path); derr != nil {
				return protocol.File{}, derr
			}
			return protocol.File{}, files.Refuse(protocol.CodeInvalid, "%s", err.Error())
		}
		return protocol.File{}, err
	}
	file := protocol.File{Name: u.name, Type: res.Type}
	var content, thumb *staged
	if res.Clean != nil {
		content, err = f.stageBytes(res.Clean)
	} else {
		content, err = f.stageCopy(src)
	}
	if err != nil {
		return protocol.File{}, err
	}
	defer content.discard()
	file.ID, file.Size = content.id, uint64(content.size)
	if res.Thumb != nil {
		if thumb, err = f.stageBytes(res.Thumb); err != nil {
			return protocol.File{}, err
		}
		defer thumb.discard()
		file.Thumb = thumb.id
		file.Width, file.Height = uint64(res.Width), uint64(res.Height)
		file.ThumbWidth, file.ThumbHeight = uint64(res.ThumbWidth), uint64(res.ThumbHeight)
	}
	meta, err := json.Marshal(file)
	if err != nil {
		return protocol.File{}, err
	}
	// Placed content and its row go together: a client that closes
	// after its last chunk must not leave content no row counts.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	f.blobs.Lock()
	defer f.blobs.Unlock()
	for _, s := range []*staged{content, thumb} {
		if s != nil {
			if err := f.place(s); err != nil {
				return protocol.File{}, err
			}
		}
	}
	tx, err := f.write.BeginTx(ctx, nil)
	if err != nil {
		return protocol.File{}, err
	}
	defer tx.Rollback()
	now := f.millis()
	add := func(s *staged, typ string) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO blobs (id, size, type, created) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
			s.id, s.size, typ, now)
		return err
	}
	if err := add(content, res.Type); err != nil {
		return protocol.File{}, err
	}
	if thumb != nil {
		if err := add(thumb, res.ThumbType); err != nil {
			return protocol.File{}, err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO holds (owner, upload, size, file, thumb, meta, until) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (owner, upload) DO UPDATE SET size = excluded.size, file = excluded.file, thumb = excluded.thumb,
			meta = excluded.meta, until = excluded.until`,
		owner, id, u.size, file.ID, file.Thumb, meta, now+f.lim.HoldFor.Milliseconds()); err != nil {
		return protocol.File{}, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM uploads WHERE owner = ? AND id = ?", owner, id); err != nil {
		return protocol.File{}, err
	}
	if err := tx.Commit(); err != nil {
		return protocol.File{}, err
	}
	src.Close()
	_ = os.Remove(tmp)
	return file, nil
}

// heldUpload returns the file the finished upload id gave, while the
// owner holds it: Finish called twice.
func (f *Files) heldUpload(ctx context.Context, owner, id string) (protocol.File, error) {
	var meta []byte
	err := f.read.QueryRowContext(ctx, `SELECT meta FROM holds WHERE owner = ? AND upload = ? AND until > ?
		AND EXISTS (SELECT 1 FROM blobs WHERE id = holds.file)`, owner, id, f.millis()).Scan(&meta)
	return decodeHold(meta, err)
}

func decodeHold(meta []byte, err error) (protocol.File, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return protocol.File{}, files.ErrNotFound
	}
	if err != nil {
		return protocol.File{}, err
	}
	var file protocol.File
	if err := json.Unmarshal(meta, &file); err != nil {
		return protocol.File{}, fmt.Errorf("files: a hold's file: %w", err)
	}
	return file, nil
}

// drop removes an unfinished upload, row and partial file.
func (f *Files) drop(ctx context.Context, owner, id, rel string) error {
	if _, err := f.write.ExecContext(ctx, "DELETE FROM uploads WHERE owner = ? AND id = ?", owner, id); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(f.dir, rel)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// staged is content written to a temporary file, with its hash.
type staged struct {
	tmp  string // absolute path; "" once placed
	id   string
	size int64
}

func (s *staged) discard() {
	if s != nil && s.tmp != "" {
		_ = os.Remove(s.tmp)
	}
}

func (f *Files) stageBytes(data []byte) (*staged, error) {
	return f.stage(func(w io.Writer) error { _, err := w.Write(data); return err })
}

func (f *Files) stageCopy(r io.ReaderAt) (*staged, error) {
	return f.stage(func(w io.Writer) error {
		_, err := io.Copy(w, io.NewSectionReader(r, 0, 1<<62))
		return err
	})
}

// stage writes content to a new file under tmp/, hashing it.
func (f *Files) stage(write func(io.Writer) error) (*staged, error) {
	out, err := os.CreateTemp(filepath.Join(f.dir, "tmp"), "content-*")
	if err != nil {
		return nil, err
	}
	s := &staged{tmp: out.Name()}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(out, h)}
	err = write(cw)
	if err == nil && f.sync {
		err = out.Sync()
	}
	if err = errors.Join(err, out.Close()); err != nil {
		s.discard()
		return nil, err
	}
	s.id, s.size = hex.EncodeToString(h.Sum(nil)), cw.n
	return s, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// place renames staged content to its place, unless the same content is
// there already (then the staged copy goes). Callers hold f.blobs.
func (f *Files) place(s *staged) error {
	dst := filepath.Join(f.dir, blobPath(s.id))
	if _, err := os.Stat(dst); err == nil {
		return nil // stored once: discard drops the copy
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if err := os.Rename(s.tmp, dst); err != nil {
		return err
	}
	s.tmp = ""
	if f.sync {
		return syncDir(filepath.Dir(dst))
	}
	return nil
}

// Held implements files.Store.
func (f *Files) Held(ctx context.Context, owner, fileID string) (protocol.File, error) {
	var meta []byte
	// The content must be there still: a used hold outlives it once the
	// messages that carried it are gone.
	err := f.read.QueryRowContext(ctx, `SELECT meta FROM holds WHERE owner = ? AND file = ? AND until > ?
		AND EXISTS (SELECT 1 FROM blobs WHERE id = holds.file) ORDER BY until DESC LIMIT 1`,
		owner, fileID, f.millis()).Scan(&meta)
	return decodeHold(meta, err)
}

// Open implements files.Store: a live message of room must carry the
// file or its preview (the messages' file and thumb indexes).
func (f *Files) Open(ctx context.Context, room, fileID string) (files.Blob, error) {
	var size int64
	var typ string
	err := f.read.QueryRowContext(ctx, `SELECT size, type FROM blobs WHERE id = ?2 AND (
		EXISTS (SELECT 1 FROM messages WHERE file = ?2 AND room = ?1) OR
		EXISTS (SELECT 1 FROM messages WHERE thumb = ?2 AND room = ?1))`, room, fileID).Scan(&size, &typ)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !isHash(fileID) {
		return nil, files.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	file, err := os.Open(filepath.Join(f.dir, blobPath(fileID)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, files.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &blob{File: file, size: size, typ: typ}, nil
}

func isHash(id string) bool {
	if len(id) != 64 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

type blob struct {
	*os.File
	size int64
	typ  string
}

func (b *blob) Size() int64  { return b.size }
func (b *blob) Type() string { return b.typ }

// Collect implements files.Store: it ends the holds and unfinished
// uploads older than HoldFor, then removes the content that no message
// and no hold refers to, row first (in one transaction), then the file.
func (f *Files) Collect(ctx context.Context) error {
	now := f.millis()
	// Unfinished uploads not resumed within HoldFor.
	rows, err := f.read.QueryContext(ctx, "SELECT owner, id FROM uploads WHERE touched < ?", now-f.lim.HoldFor.Milliseconds())
	if err != nil {
		return err
	}
	var stale []uploadKey
	for rows.Next() {
		var k uploadKey
		if err := rows.Scan(&k.owner, &k.id); err != nil {
			rows.Close()
			return err
		}
		stale = append(stale, k)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, k := range stale {
		if err := f.dropStale(ctx, k, now); err != nil {
			return err
		}
	}
	if err := f.sweepTmp(ctx, now); err != nil {
		return err
	}
	if _, err := f.write.ExecContext(ctx, "DELETE FROM holds WHERE until <= ?", now); err != nil {
		return err
	}
	// The candidates are found on the read pool, so that the scan does
	// not hold the database's write lock (the commit loop waits on it);
	// each is checked again where it is deleted.
	// Sent: the last message that carried it, which restarts the grace.
	rows, err = f.read.QueryContext(ctx, `SELECT id, (SELECT coalesce(max(used), 0) FROM holds WHERE file = b.id OR thumb = b.id)
		FROM blobs b WHERE `+unreferenced)
	if err != nil {
		return err
	}
	var found []files.Unreferenced
	for rows.Next() {
		var u files.Unreferenced
		var sent int64
		if err := rows.Scan(&u.ID, &sent); err != nil {
			rows.Close()
			return err
		}
		if sent > 0 {
			u.Sent = time.UnixMilli(sent)
		}
		found = append(found, u)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	candidates := f.grace.Ripe(found, f.now())
	if err := f.sweepOrphans(ctx); err != nil {
		return err
	}
	if len(candidates) == 0 {
		return nil
	}
	f.blobs.Lock()
	defer f.blobs.Unlock()
	tx, err := f.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var gone []string
	for _, id := range candidates {
		res, err := tx.ExecContext(ctx, "DELETE FROM blobs AS b WHERE id = ? AND "+unreferenced, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			gone = append(gone, id)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	var errs []error
	for _, id := range gone {
		if !isHash(id) {
			continue // never a path outside the files directory
		}
		if err := os.Remove(filepath.Join(f.dir, blobPath(id))); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(gone) > 0 {
		f.logger.Info("files: removed content no message refers to", "files", len(gone))
	}
	return errors.Join(errs...)
}

// sweepOrphans removes content files that no blobs row lists, once older
// than orphanAge: what a crash between placing content and committing its
// row left, or content a restored older backup no longer refers to.
func (f *Files) sweepOrphans(ctx context.Context) error {
	dirs, err := os.ReadDir(f.dir)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if !d.IsDir() || len(d.Name()) != 2 {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(f.dir, d.Name()))
		if err != nil {
			return err
		}
		for _, e := range entries {
			id := e.Name()
			info, err := e.Info()
			if err != nil || !info.Mode().IsRegular() || !isHash(id) || id[:2] != d.Name() ||
				f.now().Sub(info.ModTime()) < orphanAge {
				continue
			}
			if err := f.removeOrphan(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeOrphan removes content id if no blobs row lists it, under the
// lock a Finish places content with.
func (f *Files) removeOrphan(ctx context.Context, id string) error {
	f.blobs.Lock()
	defer f.blobs.Unlock()
	var n int
	if err := f.write.QueryRowContext(ctx, "SELECT count(*) FROM blobs WHERE id = ?", id).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if err := os.Remove(filepath.Join(f.dir, blobPath(id))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f.logger.Info("files: removed content no database row lists", "file", id)
	return nil
}

// unreferenced is true of the content b that no message and no unused
// hold refers to.
const unreferenced = `NOT EXISTS (SELECT 1 FROM messages WHERE file = b.id) AND
	NOT EXISTS (SELECT 1 FROM messages WHERE thumb = b.id) AND
	NOT EXISTS (SELECT 1 FROM holds WHERE file = b.id AND used = 0) AND
	NOT EXISTS (SELECT 1 FROM holds WHERE thumb = b.id AND used = 0)`

// sweepTmp removes what a crash left in tmp/: staged content (a Finish
// takes minutes at most, so one older than an hour is a leftover) and
// partial files no upload lists, once older than HoldFor.
func (f *Files) sweepTmp(ctx context.Context, now int64) error {
	entries, err := os.ReadDir(filepath.Join(f.dir, "tmp"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		age := time.Duration(now-info.ModTime().UnixMilli()) * time.Millisecond
		rel := filepath.Join("tmp", e.Name())
		if strings.HasPrefix(e.Name(), "content-") {
			if age > time.Hour {
				_ = os.Remove(filepath.Join(f.dir, rel))
			}
			continue
		}
		if age <= f.lim.HoldFor {
			continue
		}
		var n int
		if err := f.read.QueryRowContext(ctx, "SELECT count(*) FROM uploads WHERE path = ?", rel).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			_ = os.Remove(filepath.Join(f.dir, rel))
		}
	}
	return nil
}

// dropStale removes an unfinished upload that was not touched since
// before HoldFor, unless a Begin resumed it meanwhile.
func (f *Files) dropStale(ctx context.Context, k uploadKey, now int64) error {
	defer f.lock(k.owner, k.id)()
	var rel string
	err := f.write.QueryRowContext(ctx, "DELETE FROM uploads WHERE owner = ? AND id = ? AND touched < ? RETURNING path",
		k.owner, k.id, now-f.lim.HoldFor.Milliseconds()).Scan(&rel)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(f.dir, rel)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// sizeText writes n bytes for people: "25 MiB", "1 GiB", "500 bytes".
func sizeText(n int64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 || v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
