//go:build !js

package settings

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Path returns the settings file, or "" for a store that persists nothing.
func (s *Store) Path() string {
	if s.dir == "" {
		return ""
	}
	return filepath.Join(s.dir, FileName)
}

func (s *Store) where() string { return s.Path() }

// read returns the file's bytes, nil if there is none.
func (s *Store) read() ([]byte, error) {
	if s.dir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(s.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// write replaces the file through a temporary one and a rename, so a
// crash mid-write never leaves a truncated file that loses the secret.
func (s *Store) write(b []byte) error {
	if s.dir == "" {
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, FileName+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.Path())
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func (s *Store) setAside() (string, error) {
	if s.dir == "" {
		return "", nil
	}
	to := s.Path() + ".unreadable"
	return to, os.Rename(s.Path(), to)
}
