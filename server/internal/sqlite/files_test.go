package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/files"
	"chat/server/internal/files/filestest"
	"chat/server/internal/history"
)

// filesHarness runs filestest on Files with a Log on the same database,
// as the single server does: the Log's Removed kicks the store.
type filesHarness struct {
	t       *testing.T
	dir, db string
	opts    FilesOptions
	log     *Log
	files   atomic.Pointer[Files]
	mu      sync.Mutex
	results map[string]history.Result // by request id
	ids     int
	kicked  atomic.Int64
}

func openFilesHarness(t *testing.T, lim files.Limits) *filesHarness {
	h := &filesHarness{t: t, dir: t.TempDir(), results: map[string]history.Result{}}
	h.db = filepath.Join(h.dir, "chat.db")
	// No grace period: filestest expects content gone at the Collect
	// after its last message (TestCollectWaitsForGrace tests the grace).
	h.opts = FilesOptions{Limits: lim, CollectGrace: -1}
	var err error
	h.log, err = Open(h.db, h.sink, Options{Removed: func() {
		h.kicked.Add(1)
		h.files.Load().Kick()
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.open()
	t.Cleanup(func() {
		if err := h.files.Load().Close(); err != nil {
			t.Error(err)
		}
		if err := h.log.Close(); err != nil {
			t.Error(err)
		}
	})
	return h
}

func (h *filesHarness) open() {
	f, err := OpenFiles(h.db, h.dir, h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.files.Store(f)
}

func (h *filesHarness) sink(rs []history.Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range rs {
		h.results[r.Request.ID] = r
	}
}

func (h *filesHarness) Store() files.Store { return h.files.Load() }

// append stores r and returns its result.
func (h *filesHarness) append(ctx context.Context, r *history.Request) history.Result {
	h.mu.Lock()
	h.ids++
	r.ID = fmt.Sprint("m", h.ids)
	h.mu.Unlock()
	if err := h.log.Append(r); err != nil {
		h.t.Fatal(err)
	}
	if err := h.log.Flush(ctx); err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	res := h.results[r.ID]
	if res.Err != nil || res.Msg.Seq == 0 {
		h.t.Fatalf("append: %+v", res)
	}
	return res
}

func (h *filesHarness) Post(ctx context.Context, room, sender string, f *protocol.File) uint64 {
	text := ""
	if f == nil {
		text = "no file"
	}
	return h.append(ctx, &history.Request{Room: room, Sender: sender, Text: text, File: f}).Msg.Seq
}

func (h *filesHarness) Delete(ctx context.Context, room string, seq uint64) {
	h.append(ctx, &history.Request{Room: room, Sender: "operator",
		Change: &history.Change{Kind: protocol.ChangeDelete, Target: seq, Moderator: true}})
}

// Retain removes every message of room as retention does (the
// retainer's remove, which the Log's retention pass calls), then waits
// for the store to be told.
func (h *filesHarness) Retain(ctx context.Context, room string) string {
	_, head, err := h.log.Bounds(ctx, room)
	if err != nil {
		h.t.Fatal(err)
	}
	before := h.kicked.Load()
	if n, err := (&retainer{l: h.log}).remove(ctx, room, int64(head)); err != nil || n == 0 {
		h.t.Fatalf("retention removed %d messages: %v", n, err)
	}
	if h.kicked.Load() == before {
		h.t.Fatal("retention did not tell the file store")
	}
	return ""
}

func (h *filesHarness) Reopen() {
	if err := h.files.Load().Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

// Stored implements filestest.Disk.
func (h *filesHarness) Stored(id string) bool {
	_, err := os.Stat(filepath.Join(h.dir, "files", blobPath(id)))
	return err == nil
}

func TestFilesConformance(t *testing.T) {
	filestest.Run(t, func(t *testing.T, lim files.Limits) filestest.Harness {
		return openFilesHarness(t, lim)
	})
}

// TestWriterKeepsFiles: a database made by a Writer (a cluster's
// export) keeps its messages' files, and a Files store on it serves
// the content placed under files/ beside it.
func TestWriterKeepsFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "chat.db")
	w, err := Create(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	content := filestest.Text(500, 1)
	f := &protocol.File{ID: filestest.Hash(content), Name: "notes.txt", Type: "text/plain; charset=utf-8", Size: 500}
	m := protocol.Msg{Room: "general", Seq: 1, Time: 10, Sender: "alice", ID: "a1", File: f}
	if err := w.Message(m); err != nil {
		t.Fatal(err)
	}
	if err := w.Blob(f.ID, 500, f.Type); err != nil {
		t.Fatal(err)
	}
	if err := w.Blob("../../x", 1, "text/plain"); err == nil {
		t.Error("a blob id that is no hash was taken")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "files", f.ID[:2]), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "files", blobPath(f.ID)), content, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, func([]history.Result) {}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, err := l.Since(ctx, "general", 0, 10)
	if err != nil || len(got) != 1 || got[0].File == nil || *got[0].File != *f {
		t.Fatalf("read back: %+v, %v", got, err)
	}
	hits, _, err := l.Search(ctx, history.Query{Rooms: []string{"general"}, Text: "notes"})
	if err != nil || len(hits) != 1 {
		t.Fatalf("search of the file's name in an exported database: %+v, %v", hits, err)
	}
	fs, err := OpenFiles(path, dir, FilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if data := filestest.Read(t, fs, "general", f.ID); string(data) != string(content) {
		t.Fatal("the exported file reads back different")
	}
	filestest.ExpectUsage(t, fs, "alice", 500, 500)
}

// TestRedactTakesTheFile: an operator's redaction (moderation) removes
// the message's file with its text, and tells the file store, which then
// frees the content.
func TestRedactTakesTheFile(t *testing.T) {
	ctx := context.Background()
	h := openFilesHarness(t, files.Limits{})
	mod, err := OpenModeration(h.db, ModerationOptions{Removed: h.files.Load().Kick})
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close()
	f := filestest.Upload(t, h.Store(), "alice", "r", "up1", "a.txt", filestest.Text(700, 3))
	seq := h.Post(ctx, "r", "alice", &f)
	if ok, err := mod.Redact(ctx, "r", seq); !ok || err != nil {
		t.Fatalf("Redact: %v, %v", ok, err)
	}
	msgs, err := h.log.Since(ctx, "r", 0, 10)
	if err != nil || len(msgs) != 1 || msgs[0].File != nil {
		t.Fatalf("after the redaction: %+v, %v", msgs, err)
	}
	if _, err := h.Store().Open(ctx, "r", f.ID); err != files.ErrNotFound {
		t.Fatalf("Open after the redaction: %v", err)
	}
	if err := h.Store().Collect(ctx); err != nil {
		t.Fatal(err)
	}
	filestest.ExpectUsage(t, h.Store(), "alice", 0, 0)
	if h.Stored(f.ID) {
		t.Fatal("the content is still on disk")
	}
}

// TestCollectSweepsCrashLeftovers: staged content older than an hour and
// partial files no upload lists older than HoldFor are removed; an
// upload's partial file stays.
func TestCollectSweepsCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	h := openFilesHarness(t, files.Limits{HoldFor: 2 * time.Hour})
	s := h.Store()
	if _, err := s.Begin(ctx, files.Upload{Owner: "alice", ID: "up1", Room: "r", Name: "a", Size: 10}); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(h.dir, "files", "tmp")
	old := time.Now().Add(-3 * time.Hour)
	recent := time.Now().Add(-30 * time.Minute)
	for name, at := range map[string]time.Time{"content-1": old, "content-2": recent, "0123abcd": old, "4567ef": recent} {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte("left"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	listed := filepath.Join(h.dir, "files", tmpPath("alice", "up1"))
	if err := os.Chtimes(listed, old, old); err != nil {
		t.Fatal(err)
	}
	if err := s.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"content-1": false, "content-2": true, "0123abcd": false, "4567ef": true, filepath.Base(listed): true} {
		if _, err := os.Stat(filepath.Join(tmp, name)); (err == nil) != want {
			t.Errorf("tmp/%s: there %v, want %v", name, err == nil, want)
		}
	}
}

// TestCleanNameDropsFormatCharacters: a bidi override or a zero-width
// character cannot disguise a name ("invoice\u202Efdp.exe" would show
// as "invoiceexe.pdf").
func TestCleanNameDropsFormatCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"invoice\u202Efdp.exe":      "invoicefdp.exe",
		"a\u200Bb\u200Dc\uFEFF.txt": "abc.txt",
		"\u2066x\u2069.png":         "x.png",
		"\u202E":                    "file",
		"naïve café.txt":            "naïve café.txt",
	} {
		if got := CleanName(in); got != want {
			t.Errorf("CleanName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCollectWaitsForGrace: content no message refers to any more stays
// for the grace period (a backup of the running server may still copy
// it for a database snapshot that refers to it), then goes.
func TestCollectWaitsForGrace(t *testing.T) {
	ctx := context.Background()
	h := openFilesHarness(t, files.Limits{})
	h.opts.CollectGrace = time.Hour
	h.Reopen()
	var skew atomic.Int64
	fs := h.files.Load()
	fs.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	f := filestest.Upload(t, fs, "alice", "r", "up1", "a.txt", filestest.Text(300, 1))
	seq := h.Post(ctx, "r", "alice", &f)
	h.Delete(ctx, "r", seq)
	for _, advance := range []time.Duration{0, 30 * time.Minute} {
		skew.Store(int64(advance))
		if err := fs.Collect(ctx); err != nil {
			t.Fatal(err)
		}
		if !h.Stored(f.ID) {
			t.Fatalf("the content went %v after its message, within the grace period", advance)
		}
	}
	skew.Store(int64(61 * time.Minute))
	if err := fs.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if h.Stored(f.ID) {
		t.Fatal("the content stayed past the grace period")
	}
}

// TestCollectGraceStartsOverAfterASend: content sent again between two
// Collects, and deleted again before the second, was referenced until
// shortly before it: its grace starts over there, not at the first
// Collect that found it unreferenced.
func TestCollectGraceStartsOverAfterASend(t *testing.T) {
	ctx := context.Background()
	h := openFilesHarness(t, files.Limits{})
	h.opts.CollectGrace = 10 * time.Minute
	h.Reopen()
	var skew atomic.Int64
	fs := h.files.Load()
	fs.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	f := filestest.Upload(t, fs, "alice", "r", "up1", "a.txt", filestest.Text(300, 1))
	h.Delete(ctx, "r", h.Post(ctx, "r", "alice", &f))
	collectAt := func(advance time.Duration) {
		t.Helper()
		skew.Store(int64(advance))
		if err := fs.Collect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	collectAt(0) // the first to find it unreferenced
	skew.Store(int64(5 * time.Minute))
	h.Delete(ctx, "r", h.Post(ctx, "r", "alice", &f)) // alice still holds it: sent again, deleted again
	collectAt(5 * time.Minute)
	collectAt(11 * time.Minute)
	if !h.Stored(f.ID) {
		t.Fatal("the content went 6 minutes after its last message was deleted, within the 10-minute grace")
	}
	collectAt(16 * time.Minute)
	if h.Stored(f.ID) {
		t.Fatal("the content stayed past the grace period")
	}
}

// TestCollectSweepsOrphanContent: content under files/ that no blobs row
// lists (a crash between placing and committing, or an older backup
// restored) is removed once older than an hour; recent orphans and
// content a row lists stay.
func TestCollectSweepsOrphanContent(t *testing.T) {
	ctx := context.Background()
	h := openFilesHarness(t, files.Limits{})
	s := h.Store()
	kept := filestest.Upload(t, s, "alice", "r", "up1", "a.txt", filestest.Text(300, 1))
	h.Post(ctx, "r", "alice", &kept)
	old := time.Now().Add(-2 * time.Hour)
	place := func(data []byte, at time.Time) string {
		id := filestest.Hash(data)
		p := filepath.Join(h.dir, "files", blobPath(id))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
		return id
	}
	orphan := place([]byte("orphan"), old)
	recent := place([]byte("recent orphan"), time.Now())
	keptPath := filepath.Join(h.dir, "files", blobPath(kept.ID))
	if err := os.Chtimes(keptPath, old, old); err != nil {
		t.Fatal(err)
	}
	if err := s.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{orphan: false, recent: true, kept.ID: true} {
		if h.Stored(id) != want {
			t.Errorf("%s: stored %v, want %v", id, !want, want)
		}
	}
}

// TestHoldsPerNameBounded: re-uploading the same bytes under fresh ids
// costs no quota, but each is a hold: a name's holds are bounded, the
// next begin refused with quota.
func TestHoldsPerNameBounded(t *testing.T) {
	ctx := context.Background()
	h := openFilesHarness(t, files.Limits{})
	fs := h.files.Load()
	fs.maxHolds = 3
	for i := range 3 {
		filestest.Upload(t, fs, "alice", "r", fmt.Sprint("up", i), "a.txt", []byte("x"))
	}
	_, err := fs.Begin(ctx, files.Upload{Owner: "alice", ID: "up3", Room: "r", Name: "a.txt", Size: 1})
	var fe *files.Error
	if !errors.As(err, &fe) || fe.Code != protocol.CodeQuota {
		t.Fatalf("a begin past the holds' bound: %v, want a quota refusal", err)
	}
	if _, err := fs.Begin(ctx, files.Upload{Owner: "bob", ID: "up3", Room: "r", Name: "a.txt", Size: 1}); err != nil {
		t.Fatalf("another name's begin: %v", err)
	}
}
