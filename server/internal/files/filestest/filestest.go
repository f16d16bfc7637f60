// Package filestest is the conformance suite of files.Store: every
// implementation (the single server's in package sqlite, the cluster's)
// must pass Run, with messages posted and deleted through its real
// history, so that the rules that tie files to messages (who may read,
// when content goes) are tested as the server runs them.
package filestest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"chat/protocol"
	"chat/server/internal/files"
)

// Harness is a store under test with the history it reads messages
// from. Its methods fail the test (the t given to Run's open) on error.
type Harness interface {
	// Store is the store, as opened last (Reopen opens it again).
	Store() files.Store
	// Post publishes a message of sender in room carrying f through the
	// real history (broker or log) and returns its sequence number once
	// it is stored.
	Post(ctx context.Context, room, sender string, f *protocol.File) (seq uint64)
	// Delete deletes message seq of room (a CHANGE delete by its
	// sender, or an operator's) and returns once it is stored.
	Delete(ctx context.Context, room string, seq uint64)
	// Retain makes history retention remove every message of room, and
	// returns once it did; it returns a reason when the harness cannot
	// (the case is then skipped).
	Retain(ctx context.Context, room string) (cannot string)
	// Reopen closes the store and opens it again on the same data, as a
	// restarted server does.
	Reopen()
}

// Disk is implemented by a harness whose store keeps content in files:
// Stored reports whether content id is there.
type Disk interface {
	Stored(id string) bool
}

// Run runs the suite. open makes a new, empty store with lim (zero
// fields: the defaults) for the test t; it cleans up with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T, lim files.Limits) Harness) {
	ctx := context.Background()

	t.Run("BeginWriteFinish", func(t *testing.T) {
		h := open(t, files.Limits{})
		data := Text(100_000, 1)
		f := Upload(t, h.Store(), "alice", "r", "up1", "notes.txt", data)
		if f.ID != Hash(data) || f.Size != uint64(len(data)) || f.Name != "notes.txt" || !strings.HasPrefix(f.Type, "text/plain") ||
			f.Thumb != "" || f.Width != 0 {
			t.Fatalf("finished: %+v, want the SHA-256 of the content, its size, name and sniffed type", f)
		}
		if got, err := h.Store().Held(ctx, "alice", f.ID); err != nil || got != f {
			t.Fatalf("Held: %+v, %v; want %+v", got, err, f)
		}
		if n, _, err := h.Store().Usage(ctx, "alice"); err != nil || n != int64(len(data)) {
			t.Fatalf("Usage: %d, %v; want %d (the held file)", n, err, len(data))
		}
		h.Post(ctx, "r", "Alice", &f)
		if got := Read(t, h.Store(), "r", f.ID); !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, not what was uploaded", len(got))
		}
	})

	t.Run("NamesAreCleaned", func(t *testing.T) {
		h := open(t, files.Limits{})
		f := Upload(t, h.Store(), "alice", "r", "up1", `C:\Users\alice/../secret/report.pdf`, Text(10, 2))
		if f.Name != "report.pdf" {
			t.Fatalf("name %q, want the base name report.pdf", f.Name)
		}
	})

	t.Run("ResumeAfterReopen", func(t *testing.T) {
		h := open(t, files.Limits{})
		data := Text(200_000, 3)
		u := files.Upload{Owner: "alice", ID: "up1", Room: "r", Name: "big.txt", Size: int64(len(data))}
		if got, err := h.Store().Begin(ctx, u); err != nil || got != 0 {
			t.Fatalf("Begin: %d, %v", got, err)
		}
		half := int64(len(data) / 2)
		WriteAll(t, h.Store(), "alice", "up1", 0, data[:half])
		h.Reopen() // a restart between two chunks
		got, err := h.Store().Begin(ctx, u)
		if err != nil || got != half {
			t.Fatalf("Begin after a restart: %d, %v; want %d (the bytes stored)", got, err, half)
		}
		// A chunk at 0 again is refused with where to go on.
		var off *files.OffsetError
		if _, err := h.Store().Write(ctx, "alice", "up1", 0, data[:100]); !errors.As(err, &off) || off.Have != half {
			t.Fatalf("Write at 0 after resuming: %v, want an OffsetError at %d", err, half)
		}
		WriteAll(t, h.Store(), "alice", "up1", half, data[half:])
		f, err := h.Store().Finish(ctx, "alice", "up1")
		if err != nil || f.ID != Hash(data) {
			t.Fatalf("Finish: %+v, %v; want the whole content's hash", f, err)
		}
		h.Post(ctx, "r", "alice", &f)
		if !bytes.Equal(Read(t, h.Store(), "r", f.ID), data) {
			t.Fatal("the resumed upload reads back different")
		}
	})

	t.Run("WrongOffsetStoresNothing", func(t *testing.T) {
		h := open(t, files.Limits{})
		s := h.Store()
		u := files.Upload{Owner: "alice", ID: "up1", Room: "r", Name: "a.txt", Size: 1000}
		if _, err := s.Begin(ctx, u); err != nil {
			t.Fatal(err)
		}
		WriteAll(t, s, "alice", "up1", 0, Text(300, 4))
		for _, at := range []int64{0, 200, 301, 900} {
			var off *files.OffsetError
			if n, err := s.Write(ctx, "alice", "up1", at, []byte("xx")); !errors.As(err, &off) || off.Have != 300 {
				t.Fatalf("Write at %d: %d, %v; want an OffsetError at 300", at, n, err)
			}
		}
		if got, err := s.Begin(ctx, u); err != nil || got != 300 {
			t.Fatalf("Begin after the wrong chunks: %d, %v; want 300", got, err)
		}
		// Past the size: refused, nothing written.
		if _, err := s.Write(ctx, "alice", "up1", 300, make([]byte, 701)); code(err) != protocol.CodeInvalid {
			t.Fatalf("Write past the size: %v, want invalid", err)
		}
		if got, _ := s.Begin(ctx, u); got != 300 {
			t.Fatalf("after a chunk past the size the store has %d, want 300", got)
		}
		// Another owner's upload of that id is not alice's.
		if _, err := s.Write(ctx, "bob", "up1", 300, []byte("x")); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("bob writes alice's upload: %v, want ErrNotFound", err)
		}
		if _, err := s.Finish(ctx, "bob", "up1"); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("bob finishes alice's upload: %v, want ErrNotFound", err)
		}
		if _, err := s.Finish(ctx, "alice", "up1"); code(err) != protocol.CodeInvalid {
			t.Fatalf("Finish of an incomplete upload: %v, want invalid", err)
		}
	})

	t.Run("RefusedAtBegin", func(t *testing.T) {
		h := open(t, files.Limits{MaxFile: 1000, Pending: 2})
		s := h.Store()
		for _, c := range []struct {
			size int64
			want protocol.ErrorCode
		}{{1001, protocol.CodeTooBig}, {0, protocol.CodeInvalid}, {-1, protocol.CodeInvalid}} {
			if _, err := s.Begin(ctx, files.Upload{Owner: "alice", ID: "x", Room: "r", Name: "a", Size: c.size}); code(err) != c.want {
				t.Fatalf("Begin of %d bytes: %v, want %v", c.size, err, c.want)
			}
		}
		if _, err := s.Write(ctx, "alice", "x", 0, []byte("a")); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("Write to a refused upload: %v, want ErrNotFound (nothing kept)", err)
		}
		for i := range 2 {
			if _, err := s.Begin(ctx, files.Upload{Owner: "alice", ID: fmt.Sprint("p", i), Room: "r", Name: "a", Size: 10}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Begin(ctx, files.Upload{Owner: "alice", ID: "p2", Room: "r", Name: "a", Size: 10}); code(err) != protocol.CodeInvalid {
			t.Fatalf("a third unfinished upload: %v, want invalid", err)
		}
		if _, err := s.Begin(ctx, files.Upload{Owner: "bob", ID: "p2", Room: "r", Name: "a", Size: 10}); err != nil {
			t.Fatalf("bob's first upload: %v", err)
		}
		ExpectUsage(t, s, "alice", 20, 30)
	})

	t.Run("Quotas", func(t *testing.T) {
		h := open(t, files.Limits{PerName: 1000, Total: 1500})
		s := h.Store()
		begin := func(owner, id string, size int64) error {
			_, err := s.Begin(ctx, files.Upload{Owner: owner, ID: id, Room: "r", Name: "a.bin", Size: size})
			return err
		}
		if err := begin("alice", "a1", 600); err != nil {
			t.Fatal(err)
		}
		// Unfinished, a1 counts at its full size.
		if err := begin("alice", "a2", 401); code(err) != protocol.CodeQuota {
			t.Fatalf("alice over her quota: %v, want quota", err)
		}
		if err := begin("alice", "a2", 400); err != nil {
			t.Fatalf("alice up to her quota: %v", err)
		}
		if err := begin("bob", "b1", 501); code(err) != protocol.CodeQuota {
			t.Fatalf("bob over the server's total: %v, want quota", err)
		}
		if _, err := s.Write(ctx, "bob", "b1", 0, []byte("x")); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("Write to a refused upload: %v, want ErrNotFound", err)
		}
		ExpectUsage(t, s, "alice", 1000, 1000)
		ExpectUsage(t, s, "bob", 0, 1000)
		// Finished and sent, a file still counts; the same file twice
		// counts once.
		data := Text(600, 5)
		WriteAll(t, s, "alice", "a1", 0, data)
		f, err := s.Finish(ctx, "alice", "a1")
		if err != nil {
			t.Fatal(err)
		}
		h.Post(ctx, "r", "alice", &f)
		h.Post(ctx, "other", "alice", &f)
		ExpectUsage(t, s, "alice", 1000, 1000)
		if err := begin("alice", "a3", 1); code(err) != protocol.CodeQuota {
			t.Fatalf("alice's quota taken by a sent file and an upload: %v, want quota", err)
		}
	})

	t.Run("SameContentStoredOnce", func(t *testing.T) {
		h := open(t, files.Limits{})
		s := h.Store()
		data := Text(5000, 6)
		fa := Upload(t, s, "alice", "r", "up1", "a.txt", data)
		fb := Upload(t, s, "bob", "r", "up9", "b.txt", data)
		if fa.ID != fb.ID || fa.Name != "a.txt" || fb.Name != "b.txt" {
			t.Fatalf("the same content: %+v and %+v, want one id, each its name", fa, fb)
		}
		for owner, want := range map[string]protocol.File{"alice": fa, "bob": fb} {
			if got, err := s.Held(ctx, owner, fa.ID); err != nil || got != want {
				t.Fatalf("Held(%s): %+v, %v; want %+v", owner, got, err, want)
			}
		}
		ExpectUsage(t, s, "alice", 5000, 5000)
		ExpectUsage(t, s, "bob", 5000, 5000)
		if d, ok := h.(Disk); ok && !d.Stored(fa.ID) {
			t.Fatal("the content is not on disk")
		}
	})

	t.Run("HeldOnlyByTheOwnerWithinHoldFor", func(t *testing.T) {
		hold := 1500 * time.Millisecond
		h := open(t, files.Limits{HoldFor: hold})
		s := h.Store()
		start := time.Now()
		f := Upload(t, s, "alice", "r", "up1", "a.txt", Text(100, 7))
		// The hold begins at the latest when Upload returns (a store may
		// start it at Begin or at Finish).
		uploaded := time.Now()
		if _, err := s.Held(ctx, "bob", f.ID); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("Held by bob: %v, want ErrNotFound", err)
		}
		if _, err := s.Held(ctx, "alice", Hash([]byte("other"))); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("Held of another id: %v, want ErrNotFound", err)
		}
		if _, err := s.Held(ctx, "alice", f.ID); err != nil {
			if time.Since(start) < hold {
				t.Fatalf("Held by alice: %v", err)
			}
			t.Skip("the machine took longer than the hold to upload 100 bytes")
		}
		// Time passing is what is tested: the hold ends.
		time.Sleep(hold - time.Since(uploaded) + 100*time.Millisecond)
		if _, err := s.Held(ctx, "alice", f.ID); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("Held after HoldFor: %v, want ErrNotFound", err)
		}
		if err := s.Collect(ctx); err != nil {
			t.Fatal(err)
		}
		ExpectUsage(t, s, "alice", 0, 0)
	})

	t.Run("OpenOnlyWhereAMessageCarriesIt", func(t *testing.T) {
		h := open(t, files.Limits{})
		s := h.Store()
		data := Text(3000, 8)
		f := Upload(t, s, "alice", "a", "up1", "a.txt", data)
		if _, err := s.Open(ctx, "a", f.ID); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("Open before any message carries it: %v, want ErrNotFound", err)
		}
		h.Post(ctx, "a", "alice", &f)
		b, err := s.Open(ctx, "a", f.ID)
		if err != nil {
			t.Fatal(err)
		}
		if b.Size() != int64(len(data)) || !strings.HasPrefix(b.Type(), "text/plain") {
			t.Fatalf("blob of %d bytes, %q", b.Size(), b.Type())
		}
		part := make([]byte, 100)
		if n, err := b.ReadAt(part, 1000); n != 100 || err != nil && err != io.EOF || !bytes.Equal(part, data[1000:1100]) {
			t.Fatalf("ReadAt: %d, %v", n, err)
		}
		b.Close()
		for _, c := range []struct{ room, id string }{
			{"b", f.ID},               // another room, with the id
			{"a", Hash([]byte("no"))}, // no such file
			{"a", "../../etc/passwd"}, // not an id
			{"a", strings.ToUpper(f.ID)},
		} {
			if _, err := s.Open(ctx, c.room, c.id); !errors.Is(err, files.ErrNotFound) {
				t.Fatalf("Open(%q, %q): %v, want ErrNotFound", c.room, c.id, err)
			}
		}
	})

	gone := func(t *testing.T, h Harness, room string, f protocol.File, owner string) {
		t.Helper()
		s := h.Store()
		for _, id := range []string{f.ID, f.Thumb} {
			if id == "" {
				continue
			}
			if _, err := s.Open(ctx, room, id); !errors.Is(err, files.ErrNotFound) {
				t.Fatalf("Open of %s after its message went: %v, want ErrNotFound", id, err)
			}
		}
		if err := s.Collect(ctx); err != nil {
			t.Fatal(err)
		}
		ExpectUsage(t, s, owner, 0, 0)
		if d, ok := h.(Disk); ok {
			for _, id := range []string{f.ID, f.Thumb} {
				if id != "" && d.Stored(id) {
					t.Fatalf("content %s is still on disk after Collect", id)
				}
			}
		}
	}

	t.Run("DeleteRemovesTheFile", func(t *testing.T) {
		h := open(t, files.Limits{})
		s := h.Store()
		f := Upload(t, s, "alice", "r", "up1", "photo.png", PNG(t, 64, 48, nil))
		seq := h.Post(ctx, "r", "alice", &f)
		if err := s.Collect(ctx); err != nil {
			t.Fatal(err)
		}
		Read(t, s, "r", f.ID) // a message keeps it
		Read(t, s, "r", f.Thumb)
		h.Delete(ctx, "r", seq)
		gone(t, h, "r", f, "alice")
		// Its upload, begun again, is a new one: the content is gone.
		if got, err := s.Begin(ctx, files.Upload{Owner: "alice", ID: "up1", Room: "r", Name: "photo.png", Size: int64(f.Size)}); err != nil || got != 0 {
			t.Fatalf("Begin of the deleted file's upload: %d, %v; want a new upload", got, err)
		}
		if _, err := s.Held(ctx, "alice", f.ID); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("Held of the deleted file: %v, want ErrNotFound", err)
		}
		// The same content uploaded again is stored again.
		g := Upload(t, s, "alice", "r", "up2", "again.png", PNG(t, 64, 48, nil))
		h.Post(ctx, "r", "alice", &g)
		if g.ID != f.ID {
			t.Fatalf("the same image again: %s, want %s", g.ID, f.ID)
		}
		Read(t, s, "r", g.ID)
		Read(t, s, "r", g.Thumb)
	})

	t.Run("ContentStaysWhileAnotherMessageCarriesIt", func(t *testing.T) {
		h := open(t, files.Limits{})
		s := h.Store()
		data := Text(2000, 9)
		fa := Upload(t, s, "alice", "r", "up1", "a.txt", data)
		seqA := h.Post(ctx, "r", "alice", &fa)
		fb := Upload(t, s, "bob", "r", "up1", "b.txt", data)
		h.Post(ctx, "r", "bob", &fb)
		h.Delete(ctx, "r", seqA)
		if err := s.Collect(ctx); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(Read(t, s, "r", fa.ID), data) {
			t.Fatal("bob's message lost its content when alice's was deleted")
		}
		ExpectUsage(t, s, "alice", 0, 2000)
		ExpectUsage(t, s, "bob", 2000, 2000)
	})

	t.Run("RetentionRemovesTheFile", func(t *testing.T) {
		h := open(t, files.Limits{})
		s := h.Store()
		f := Upload(t, s, "alice", "r", "up1", "a.txt", Text(4000, 10))
		h.Post(ctx, "r", "alice", &f)
		h.Post(ctx, "r", "alice", nil)
		if why := h.Retain(ctx, "r"); why != "" {
			t.Skip(why)
		}
		gone(t, h, "r", f, "alice")
	})

	t.Run("ImageIsCleanedAndPreviewed", func(t *testing.T) {
		h := open(t, files.Limits{})
		s := h.Store()
		const secret = "GPS 48N 2E home of alice"
		img := PNG(t, 800, 600, map[string][]byte{"eXIf": ExifWithGPS(secret), "tEXt": []byte("Comment\x00" + secret)})
		f := Upload(t, s, "alice", "r", "up1", "holiday.png", img)
		if f.Type != "image/png" || f.Width != 800 || f.Height != 600 || f.Thumb == "" ||
			f.ThumbWidth == 0 || f.ThumbWidth > 320 || f.ThumbHeight == 0 || f.ThumbHeight > 320 || !f.IsImage() {
			t.Fatalf("image file %+v: want image/png 800×600 with a preview that fits 320×320", f)
		}
		h.Post(ctx, "r", "alice", &f)
		stored := Read(t, s, "r", f.ID)
		if bytes.Contains(stored, []byte(secret)) || bytes.Contains(stored, []byte("eXIf")) {
			t.Fatal("the stored image still carries its metadata")
		}
		if f.ID != Hash(stored) || f.Size != uint64(len(stored)) {
			t.Fatalf("the file's id and size are not those of the stored bytes")
		}
		if _, err := png.Decode(bytes.NewReader(stored)); err != nil {
			t.Fatalf("the stored image does not decode: %v", err)
		}
		thumb := Read(t, s, "r", f.Thumb)
		cfg, _, err := image.DecodeConfig(bytes.NewReader(thumb))
		if err != nil || cfg.Width != int(f.ThumbWidth) || cfg.Height != int(f.ThumbHeight) {
			t.Fatalf("preview: %+v, %v; want %d×%d", cfg, err, f.ThumbWidth, f.ThumbHeight)
		}
		if b, err := s.Open(ctx, "r", f.Thumb); err != nil || !strings.HasPrefix(b.Type(), "image/") {
			t.Fatalf("preview blob: %v", err)
		} else {
			b.Close()
		}
	})

	t.Run("DamagedImageLeavesNothing", func(t *testing.T) {
		h := open(t, files.Limits{MaxPixels: 1_000_000})
		s := h.Store()
		whole := PNG(t, 300, 200, nil)
		for name, data := range map[string][]byte{
			"truncated.png": whole[:len(whole)*2/3],
			"bomb.png":      PNG(t, 2000, 1000, nil), // 2 megapixels over a limit of 1
		} {
			owner := "alice-" + name
			u := files.Upload{Owner: owner, ID: name, Room: "r", Name: name, Size: int64(len(data))}
			if _, err := s.Begin(ctx, u); err != nil {
				t.Fatal(err)
			}
			WriteAll(t, s, owner, name, 0, data)
			_, err := s.Finish(ctx, owner, name)
			var e *files.Error
			if !errors.As(err, &e) || e.Code != protocol.CodeInvalid || e.Text == "" {
				t.Fatalf("Finish of %s: %v, want invalid with a sentence", name, err)
			}
			ExpectUsage(t, s, owner, 0, 0)
			if _, err := s.Write(ctx, owner, name, 0, data[:1]); !errors.Is(err, files.ErrNotFound) {
				t.Fatalf("after the refusal of %s the upload is still there: %v", name, err)
			}
			if got, err := s.Begin(ctx, u); err != nil || got != 0 {
				t.Fatalf("Begin again after the refusal of %s: %d, %v; want a new upload", name, got, err)
			}
			ExpectUsage(t, s, owner, u.Size, u.Size) // only the new, empty upload
			WriteAll(t, s, owner, name, 0, data)
			if _, err := s.Finish(ctx, owner, name); code(err) != protocol.CodeInvalid {
				t.Fatalf("Finish of %s again: %v, want invalid", name, err)
			}
			ExpectUsage(t, s, owner, 0, 0)
			if d, ok := h.(Disk); ok && d.Stored(Hash(data)) {
				t.Fatalf("%s is stored", name)
			}
			if err := s.Collect(ctx); err != nil {
				t.Fatal(err)
			}
			h.Reopen()
			s = h.Store()
		}
	})

	t.Run("FinishTwice", func(t *testing.T) {
		h := open(t, files.Limits{})
		s := h.Store()
		data := PNG(t, 40, 30, nil)
		f := Upload(t, s, "alice", "r", "up1", "a.png", data)
		again, err := s.Finish(ctx, "alice", "up1")
		if err != nil || again != f {
			t.Fatalf("Finish again: %+v, %v; want %+v", again, err, f)
		}
		// A client that lost the last UPLOADED begins again: all there.
		if got, err := s.Begin(ctx, files.Upload{Owner: "alice", ID: "up1", Room: "r", Name: "a.png", Size: int64(len(data))}); err != nil || got != int64(len(data)) {
			t.Fatalf("Begin of a finished upload: %d, %v; want %d", got, err, len(data))
		}
		h.Reopen()
		if again, err := h.Store().Finish(ctx, "alice", "up1"); err != nil || again != f {
			t.Fatalf("Finish again after a restart: %+v, %v", again, err)
		}
		if _, err := h.Store().Finish(ctx, "bob", "up1"); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("bob finishes alice's upload: %v, want ErrNotFound", err)
		}
	})

	t.Run("ConcurrentUploads", func(t *testing.T) {
		h := open(t, files.Limits{})
		s := h.Store()
		const n = 8
		var wg sync.WaitGroup
		got := make([]protocol.File, n)
		errs := make(chan error, n)
		for i := range n {
			data := Text(50_000+i, byte(i))
			if i%4 == 0 {
				data = PNG(t, 100+i, 80, nil)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := []string{"alice", "bob"}[i%2]
				id := fmt.Sprint("up", i)
				f, err := upload(ctx, s, files.Upload{Owner: owner, ID: id, Room: "r", Name: id, Size: int64(len(data))}, data)
				if err == nil && f.ID != Hash(data) && f.Thumb == "" {
					err = fmt.Errorf("upload %d: id %s is not the content's hash", i, f.ID)
				}
				got[i] = f
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i, f := range got {
			owner := []string{"alice", "bob"}[i%2]
			if held, err := s.Held(ctx, owner, f.ID); err != nil || held != f {
				t.Fatalf("upload %d: Held %+v, %v", i, held, err)
			}
		}
	})
}

// code returns the protocol code of a *files.Error, or 0.
func code(err error) protocol.ErrorCode {
	var e *files.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// Hash is a file id: the lowercase hex SHA-256 of data.
func Hash(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Text returns n bytes of readable text, different for each seed.
func Text(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte((i*7+int(seed)*13+i/26)%26)
		if i%60 == 59 {
			b[i] = '\n'
		}
	}
	return b
}

// upload begins, writes in 16 KiB chunks and finishes.
func upload(ctx context.Context, s files.Store, u files.Upload, data []byte) (protocol.File, error) {
	got, err := s.Begin(ctx, u)
	if err != nil {
		return protocol.File{}, err
	}
	for off := got; off < int64(len(data)); {
		end := min(off+16<<10, int64(len(data)))
		if off, err = s.Write(ctx, u.Owner, u.ID, off, data[off:end]); err != nil {
			return protocol.File{}, err
		}
	}
	return s.Finish(ctx, u.Owner, u.ID)
}

// Upload stores data as owner's upload id and returns the file.
func Upload(t *testing.T, s files.Store, owner, room, id, name string, data []byte) protocol.File {
	t.Helper()
	f, err := upload(context.Background(), s, files.Upload{Owner: owner, ID: id, Room: room, Name: name, Size: int64(len(data))}, data)
	if err != nil {
		t.Fatalf("upload %s: %v", id, err)
	}
	return f
}

// WriteAll writes data at offset in 16 KiB chunks.
func WriteAll(t *testing.T, s files.Store, owner, id string, offset int64, data []byte) {
	t.Helper()
	for i := 0; i < len(data); i += 16 << 10 {
		chunk := data[i:min(i+16<<10, len(data))]
		got, err := s.Write(context.Background(), owner, id, offset+int64(i), chunk)
		if err != nil || got != offset+int64(i+len(chunk)) {
			t.Fatalf("Write at %d: %d, %v", offset+int64(i), got, err)
		}
	}
}

// Read returns the whole content of file id as room reads it.
func Read(t *testing.T, s files.Store, room, id string) []byte {
	t.Helper()
	b, err := s.Open(context.Background(), room, id)
	if err != nil {
		t.Fatalf("Open(%q, %s): %v", room, id, err)
	}
	defer b.Close()
	data := make([]byte, b.Size())
	if n, err := b.ReadAt(data, 0); n != len(data) {
		t.Fatalf("read %d of %d bytes: %v", n, len(data), err)
	}
	return data
}

// ExpectUsage checks owner's usage and the total.
func ExpectUsage(t *testing.T, s files.Store, owner string, name, total int64) {
	t.Helper()
	n, tot, err := s.Usage(context.Background(), owner)
	if err != nil || n != name || tot != total {
		t.Fatalf("Usage(%s): %d of %d, %v; want %d of %d", owner, n, tot, err, name, total)
	}
}

// PNG returns a w×h PNG image (opaque, with a pattern) with extra
// chunks (type → data) after its header.
func PNG(t *testing.T, w, h int, chunks map[string][]byte) []byte {
	t.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetNRGBA(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: uint8(x ^ y), A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	p := b.Bytes()
	out := append([]byte(nil), p[:33]...) // signature and IHDR
	for typ, data := range chunks {
		c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		c = append(c, typ...)
		c = append(c, data...)
		out = append(out, binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))...)
	}
	return append(out, p[33:]...)
}

// ExifWithGPS returns a little-endian Exif (TIFF) block whose IFD0
// points to a GPS IFD, with secret in an ASCII tag (ImageDescription).
func ExifWithGPS(secret string) []byte {
	le := binary.LittleEndian
	b := []byte("II*\x00")
	b = le.AppendUint32(b, 8) // IFD0 at 8
	// IFD0: 2 entries: ImageDescription (ASCII, at an offset), GPS IFD pointer.
	desc := append([]byte(secret), 0)
	ifd0End := 8 + 2 + 2*12 + 4
	gpsAt := ifd0End + len(desc)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 0x010e)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint32(b, uint32(len(desc)))
	b = le.AppendUint32(b, uint32(ifd0End))
	b = le.AppendUint16(b, 0x8825)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 1)
	b = le.AppendUint32(b, uint32(gpsAt))
	b = le.AppendUint32(b, 0) // no next IFD
	b = append(b, desc...)
	// GPS IFD: GPSLatitudeRef "N".
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 0x0001)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint32(b, 2)
	b = append(b, 'N', 0, 0, 0)
	return le.AppendUint32(b, 0)
}
