// Package settings remembers what the user chose last time: the server,
// name and room of the last successful join, the name secret that lets the
// same name take over its own stale session, and the theme.
package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Settings are the remembered choices. Empty fields mean "never set".
type Settings struct {
	Server string `json:"server,omitempty"`
	Name   string `json:"name,omitempty"`
	Room   string `json:"room,omitempty"`
	Secret string `json:"secret,omitempty"`
	Dark   bool   `json:"dark,omitempty"`
}

// Store reads and writes Settings as a JSON file in a directory.
type Store struct {
	dir string // empty: nothing is persisted (e.g. no config dir in the browser)
}

// FileName is the settings file's name inside the store's directory.
const FileName = "settings.json"

// Open returns a store for dir, which is created on the first Save. An
// empty dir gives a store that loads nothing and saves nowhere.
func Open(dir string) *Store { return &Store{dir: dir} }

// Path returns the settings file, or "" for a store that persists nothing.
func (s *Store) Path() string {
	if s.dir == "" {
		return ""
	}
	return filepath.Join(s.dir, FileName)
}

// Load returns the saved settings; a missing file gives zero Settings and
// no error, so the first start looks like any other.
func (s *Store) Load() (Settings, error) {
	var st Settings
	if s.dir == "" {
		return st, nil
	}
	b, err := os.ReadFile(s.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return Settings{}, fmt.Errorf("%s: %w", s.Path(), err)
	}
	return st, nil
}

// Save writes st. It writes a temporary file and renames it over the old
// one, so a crash mid-write never leaves a truncated file that loses the
// secret.
func (s *Store) Save(st Settings) error {
	if s.dir == "" {
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, FileName+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
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
