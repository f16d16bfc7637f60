package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"chat/server/internal/files/media"
)

// FileStats count the files ExportFiles or ImportFiles copied.
type FileStats struct {
	Files int
	Bytes int64
}

// fileBucketsIfAny binds the file store's object store and bucket if
// they exist (nil, nil: no file was ever stored).
func (c *Conn) fileBucketsIfAny(ctx context.Context) (jetstream.ObjectStore, jetstream.KeyValue, error) {
	obj, err := c.js.ObjectStore(ctx, BucketFiles)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	kv, err := c.js.KeyValue(ctx, BucketUploads)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil, nil
	}
	return obj, kv, err
}

// ExportFiles copies every stored file (content and previews) to
// dir/xx/<id>, the single server's layout (package sqlite, Files),
// where xx is the id's first two characters, and calls blob for each
// (sqlite.Writer.Blob records it in a backup's database). A file
// already there with its size is not copied again. Unfinished uploads
// and holds are not exported: a client uploads again after a restore.
func (c *Conn) ExportFiles(ctx context.Context, dir string, blob func(id string, size int64, typ string) error) (FileStats, error) {
	var st FileStats
	obj, kv, err := c.fileBucketsIfAny(ctx)
	if err != nil || obj == nil {
		return st, err
	}
	lister, err := kv.ListKeysFiltered(ctx, "b.*")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("cluster: export files: %w", err)
	}
	var ids []string
	for k := range lister.Keys() {
		ids = append(ids, strings.TrimPrefix(k, "b."))
	}
	_ = lister.Stop()
	for _, id := range ids {
		if !validID(id) {
			continue
		}
		info, err := obj.GetInfo(ctx, id)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			continue // collected meanwhile
		}
		if err != nil {
			return st, fmt.Errorf("cluster: export files: %s: %w", id, err)
		}
		path := filepath.Join(dir, id[:2], id)
		if fi, err := os.Stat(path); err != nil || fi.Size() != int64(info.Size) {
			if err := c.exportObject(ctx, obj, id, path); err != nil {
				return st, err
			}
		}
		if blob != nil {
			if err := blob(id, int64(info.Size), info.Headers.Get(headerType)); err != nil {
				return st, err
			}
		}
		st.Files++
		st.Bytes += int64(info.Size)
	}
	return st, nil
}

// exportObject writes object id to path (through a temporary file
// renamed into place once the object store checked its digest).
func (c *Conn) exportObject(ctx context.Context, obj jetstream.ObjectStore, id, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("cluster: export files: %w", err)
	}
	r, err := obj.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("cluster: export files: %s: %w", id, err)
	}
	defer r.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+id+"-*")
	if err != nil {
		return fmt.Errorf("cluster: export files: %w", err)
	}
	_, err = io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("cluster: export files: %s: %w", id, err)
	}
	return nil
}

// ImportFiles stores the files under dir (the layout ExportFiles and a
// single server's data directory use: xx/<sha256>) in the cluster's
// object store, registered for the quotas, unless stored already (a
// restore or migration run again). Each file's content must hash to its
// name, else the import stops with an error naming it. The type is
// sniffed from the content (media.Sniff, as the stores do). Files no
// imported message carries are removed by the next Collect.
func (c *Conn) ImportFiles(ctx context.Context, dir string, opts FilesOptions) (FileStats, error) {
	var st FileStats
	fs, err := c.Files(ctx, opts)
	if err != nil {
		return st, err
	}
	defer fs.Close()
	subs, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("cluster: import files: %w", err)
	}
	for _, sub := range subs {
		if !sub.IsDir() || len(sub.Name()) != 2 {
			continue // tmp/ (partial uploads) and anything else
		}
		entries, err := os.ReadDir(filepath.Join(dir, sub.Name()))
		if err != nil {
			return st, fmt.Errorf("cluster: import files: %w", err)
		}
		for _, e := range entries {
			id := e.Name()
			if !validID(id) || !strings.HasPrefix(id, sub.Name()) {
				continue
			}
			n, err := fs.importFile(ctx, filepath.Join(dir, sub.Name(), id), id)
			if err != nil {
				return st, err
			}
			st.Files++
			st.Bytes += n
		}
	}
	return st, nil
}

// importFile stores the file at path as object id and registers it.
func (s *FileStore) importFile(ctx context.Context, path, id string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("cluster: import files: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return 0, fmt.Errorf("cluster: import files: %s: %w", path, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != id {
		return 0, fmt.Errorf("cluster: import files: %s does not hash to its name: damaged", path)
	}
	head := make([]byte, 512)
	n, _ := f.ReadAt(head, 0)
	typ := media.Sniff(head[:n])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if err := s.store(ctx, id, typ, size, f); err != nil {
		return 0, fmt.Errorf("cluster: import files: %s: %w", id, err)
	}
	return size, nil
}
