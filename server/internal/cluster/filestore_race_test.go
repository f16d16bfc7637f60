package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
	"chat/server/internal/cluster/natstest"
	"chat/server/internal/files"
	"chat/server/internal/files/media"
)

// total reads the server's total from the bucket.
func total(t *testing.T, ctx context.Context, fs *FileStore) int64 {
	t.Helper()
	var tr totalRec
	if _, err := fs.getJSON(ctx, totalKey, &tr); err != nil {
		t.Fatal(err)
	}
	return tr.Bytes
}

// Two Finishes of one upload on two nodes (the client dropped during a
// long Finish and resumed elsewhere; the first one's caller is gone)
// store one file, return the reservation once, and both answer the
// File.
func TestFilesFinishTwiceOnTwoNodes(t *testing.T) {
	for _, gone := range []bool{false, true} {
		t.Run(fmt.Sprint("callerGone=", gone), func(t *testing.T) { finishTwice(t, gone) })
	}
}

func finishTwice(t *testing.T, callerGone bool) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slow := func(r io.ReaderAt, size int64, lim media.Limits) (*media.Result, error) {
		once.Do(func() { close(entered); <-release })
		return media.Inspect(r, size, lim)
	}
	a := startFileNodeWith(t, nc, 0, "node-a", FilesOptions{Inspect: slow})
	b := startFileNode(t, nc, 0, "node-b", files.Limits{})
	content := randomBytes(100 << 10)
	u := files.Upload{Owner: "alice", ID: "x", Room: "room", Name: "x.bin", Size: int64(len(content))}
	if _, err := a.fs.Begin(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := a.fs.Write(ctx, "alice", "x", 0, content); err != nil {
		t.Fatal(err)
	}
	// The first Finish's caller (the connection) goes away midway.
	actx, acancel := context.WithCancel(ctx)
	type answer struct {
		f   protocol.File
		err error
	}
	first := make(chan answer, 1)
	go func() { f, err := a.fs.Finish(actx, "alice", "x"); first <- answer{f, err} }()
	<-entered
	if callerGone {
		acancel()
	}
	defer acancel()
	// The client resumes on node b: the upload is all there.
	if got, err := b.fs.Begin(ctx, u); err != nil || got != u.Size {
		t.Fatalf("begin again: %d %v", got, err)
	}
	second := make(chan answer, 1)
	go func() { f, err := b.fs.Finish(ctx, "alice", "x"); second <- answer{f, err} }()
	close(release)
	fa, fb := <-first, <-second
	if fb.err != nil {
		t.Fatalf("the second Finish: %v", fb.err)
	}
	if fa.err == nil && fa.f != fb.f {
		t.Fatalf("two files: %+v %+v", fa.f, fb.f)
	}
	if h, err := b.fs.Held(ctx, "alice", fb.f.ID); err != nil || h != fb.f {
		t.Fatalf("held: %+v %v", h, err)
	}
	if got := total(t, ctx, b.fs); got != u.Size {
		t.Fatalf("server total %d, want %d (the file once)", got, u.Size)
	}
	if name, _, err := b.fs.Usage(ctx, "alice"); err != nil || name != u.Size {
		t.Fatalf("name's usage %d %v, want %d", name, err, u.Size)
	}
	// And a third Finish, later, answers the same file.
	if f, err := a.fs.Finish(ctx, "alice", "x"); err != nil || f != fb.f {
		t.Fatalf("finish again: %+v %v", f, err)
	}
	if got := total(t, ctx, b.fs); got != u.Size {
		t.Fatalf("server total after another Finish %d, want %d", got, u.Size)
	}
}

// Begins of one upload racing on two nodes count it once; a pending
// entry older than HoldFor (a Begin that failed midway) no longer locks
// the name out.
func TestFilesBeginRacesAndStalePending(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lim := files.Limits{Pending: 2, HoldFor: time.Hour}
	a := startFileNode(t, nc, 0, "node-a", lim)
	b := startFileNode(t, nc, 0, "node-b", lim)
	u := files.Upload{Owner: "alice", ID: "x", Room: "room", Name: "x.bin", Size: 1000}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		fs := []*FileStore{a.fs, b.fs}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := fs.Begin(ctx, u); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a racing Begin: %v", err)
	}
	if got := total(t, ctx, a.fs); got != u.Size {
		t.Fatalf("server total %d after racing Begins, want %d", got, u.Size)
	}

	// Reservations left by Begins that failed midway, long ago.
	old := time.Now().Add(-2 * time.Hour).UnixMilli()
	o := ownerRec{Pending: map[string]int64{}, PendingAt: map[string]int64{}}
	for i := range 2 {
		id := fmt.Sprint("lost", i)
		o.Pending[id], o.PendingAt[id] = 10, old
	}
	raw, _ := json.Marshal(o)
	if _, err := a.fs.kv.Put(ctx, ownerKey("bob"), raw); err != nil {
		t.Fatal(err)
	}
	if _, err := a.fs.Begin(ctx, files.Upload{Owner: "bob", ID: "y", Room: "room", Name: "y", Size: 10}); err != nil {
		t.Fatalf("a name with stale reservations: %v", err)
	}
	if name, _, err := a.fs.Usage(ctx, "bob"); err != nil || name != 10 {
		t.Fatalf("bob's usage %d %v, want 10", name, err)
	}
}

// A Finish of content that a Collect is deleting (its registration
// marked, the object gone) waits for the Collect and stores the content
// again; meanwhile Held answers not found for the old hold.
func TestFilesFinishWhileCollectDeletes(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startFileNode(t, nc, 0, "node-a", files.Limits{})
	content := randomBytes(20 << 10)
	f := upload(t, ctx, a.fs, files.Upload{Owner: "alice", ID: "x", Room: "room", Name: "x", Size: int64(len(content))}, content)
	// A Collect deleting it (as if its hold were used and no message
	// carried it any more): its registration marked, the object
	// deleted; the key not yet.
	var br blobRec
	rev, err := a.fs.getJSON(ctx, blobKey(f.ID), &br)
	if err != nil || rev == 0 {
		t.Fatal(rev, err)
	}
	br.Deleting = time.Now().UnixMilli()
	mark, _ := json.Marshal(br)
	marked, err := a.fs.kv.Update(ctx, blobKey(f.ID), mark, rev)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.fs.obj.Delete(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	// bob uploads the same bytes meanwhile: his Finish waits.
	ub := files.Upload{Owner: "bob", ID: "y", Room: "room", Name: "y", Size: int64(len(content))}
	if _, err := a.fs.Begin(ctx, ub); err != nil {
		t.Fatal(err)
	}
	if _, err := a.fs.Write(ctx, "bob", "y", 0, content); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := a.fs.Finish(ctx, "bob", "y"); done <- err }()
	// alice's hold does not answer while the content is marked: a
	// SEND now would carry content about to go.
	if _, err := a.fs.Held(ctx, "alice", f.ID); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("held while marked deleting: %v", err)
	}
	// The Collect ends: the key goes at the marked revision, the object
	// no longer counts.
	if err := a.fs.kv.Delete(ctx, blobKey(f.ID), jetstream.LastRevision(marked)); err != nil {
		t.Fatal(err)
	}
	if err := a.fs.addTotal(ctx, -int64(f.Size)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("bob's Finish: %v", err)
	}
	if h, err := a.fs.Held(ctx, "bob", f.ID); err != nil || h.ID != f.ID {
		t.Fatalf("bob's hold: %v", err)
	}
	if _, err := a.fs.obj.GetInfo(ctx, f.ID); err != nil {
		t.Fatalf("the content is not stored again: %v", err)
	}
	if got := total(t, ctx, a.fs); got != int64(f.Size) {
		t.Fatalf("server total %d, want %d", got, f.Size)
	}
}

// A Collect that runs fully (with the real hook between its phases)
// leaves a re-uploaded file stored.
func TestFilesCollectTwoPhases(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startFileNode(t, nc, 0, "node-a", files.Limits{})
	content := randomBytes(20 << 10)
	f := upload(t, ctx, a.fs, files.Upload{Owner: "alice", ID: "x", Room: "room", Name: "x", Size: int64(len(content))}, content)
	if err := a.fs.kv.Delete(ctx, holdKey("alice", f.ID)); err != nil {
		t.Fatal(err)
	}
	var heldMidway error
	a.fs.beforeUnregister = func(id string) {
		_, heldMidway = a.fs.Held(ctx, "alice", id)
	}
	if err := a.fs.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if heldMidway == nil {
		t.Fatal("Collect did not reach its second phase")
	}
	if got := total(t, ctx, a.fs); got != 0 {
		t.Fatalf("server total after collecting %d", got)
	}
	g := upload(t, ctx, a.fs, files.Upload{Owner: "bob", ID: "y", Room: "room", Name: "y", Size: int64(len(content))}, content)
	if _, err := a.fs.obj.GetInfo(ctx, g.ID); err != nil {
		t.Fatalf("re-uploaded content: %v", err)
	}
	if got := total(t, ctx, a.fs); got != int64(g.Size) {
		t.Fatalf("server total %d, want %d", got, g.Size)
	}
}

// A Finish refused for too many holds leaves no hold that a SEND could
// use, even for content stored already.
func TestFilesHoldsCapLeavesNoHold(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startFileNode(t, nc, 0, "node-a", files.Limits{})
	content := randomBytes(10 << 10)
	upload(t, ctx, a.fs, files.Upload{Owner: "bob", ID: "y", Room: "room", Name: "y", Size: int64(len(content))}, content)
	o := ownerRec{Held: map[string]heldSize{}}
	until := time.Now().Add(time.Hour).UnixMilli()
	for i := range maxHolds {
		o.Held[fmt.Sprintf("%064x", i)] = heldSize{Size: 1, From: until - 1, Until: until}
	}
	raw, _ := json.Marshal(o)
	if _, err := a.fs.kv.Put(ctx, ownerKey("alice"), raw); err != nil {
		t.Fatal(err)
	}
	u := files.Upload{Owner: "alice", ID: "x", Room: "room", Name: "x", Size: int64(len(content))}
	if _, err := a.fs.Begin(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := a.fs.Write(ctx, "alice", "x", 0, content); err != nil {
		t.Fatal(err)
	}
	_, err := a.fs.Finish(ctx, "alice", "x")
	var fe *files.Error
	if !errors.As(err, &fe) || fe.Code != protocol.CodeQuota {
		t.Fatalf("finishing over the holds cap: %v", err)
	}
	sum := sha256.Sum256(content)
	f, err := a.fs.Held(ctx, "bob", hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.fs.Held(ctx, "alice", f.ID); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("a refused Finish left a usable hold: %v", err)
	}
}
