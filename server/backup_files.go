package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Shared files (issue 16) are not in chat.db: their content is under
// DATA/files, one file per SHA-256 (xx/<sha256>). A backup copies it
// into FILE.files beside the backup FILE, and restore copies it back.
// Content never changes once stored (its name is its hash), so a copy
// that is there already is skipped, and a hard link stands for a copy
// where the file system allows.

// filesDirOf is the content directory beside a backup file.
func filesDirOf(backupFile string) string { return backupFile + ".files" }

// contentStats counts what copyContent did.
type contentStats struct {
	Files, Skipped int
	Bytes          int64
}

func (s contentStats) String() string {
	return fmt.Sprintf("%d files (%d bytes) copied, %d there already", s.Files, s.Bytes, s.Skipped)
}

// copyContent copies the stored content under src (DATA/files, or a
// backup's FILE.files) into dst, leaving out unfinished uploads (tmp)
// and anything that is not a content file. A missing src is no content.
func copyContent(src, dst string) (contentStats, error) {
	var st contentStats
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == src && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel == "tmp" {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !isContentPath(rel) {
			return nil
		}
		to := filepath.Join(dst, rel)
		if _, err := os.Lstat(to); err == nil {
			st.Skipped++
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return err
		}
		n, err := copyFile(p, to)
		if err != nil {
			return fmt.Errorf("copying %s: %w", p, err)
		}
		st.Files++
		st.Bytes += n
		return nil
	})
	return st, err
}

// isContentPath reports whether rel is xx/<64 hex digits> with xx its
// first two.
func isContentPath(rel string) bool {
	dir, name := filepath.Split(rel)
	if len(name) != 64 || filepath.Clean(dir) != name[:2] {
		return false
	}
	for _, c := range name {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// copyFile links or copies from to to (through a temporary file, so that
// a copy cut short never stands under the content's name) and returns
// its size.
func copyFile(from, to string) (int64, error) {
	info, err := os.Stat(from)
	if err != nil {
		return 0, err
	}
	if os.Link(from, to) == nil {
		return info.Size(), nil
	}
	in, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(to), ".copy-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, in)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), to)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	return n, nil
}
