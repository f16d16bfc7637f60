package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"chat/client"
)

// state is what the terminal client remembers between runs, in
// $XDG_CONFIG_HOME/chat/terminal.json (or the platform's config dir).
type state struct {
	// NameKey is the secret that owns the names used from this computer.
	// Copy it to another device to use the same names there.
	NameKey string `json:"name_key"`
	// Pins maps a server address to the certificate fingerprint trusted
	// for it (self-signed servers).
	Pins map[string]string `json:"pins,omitempty"`

	path string
}

// loadState reads the state file, creating a name key on first use. A
// computer without a config directory gets a state that is not saved.
func loadState() (*state, error) {
	st := &state{Pins: map[string]string{}}
	dir, err := os.UserConfigDir()
	if err == nil {
		st.path = filepath.Join(dir, "chat", "terminal.json")
		b, err := os.ReadFile(st.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			if err := json.Unmarshal(b, st); err != nil {
				return nil, fmt.Errorf("%s: %w", st.path, err)
			}
			if st.Pins == nil {
				st.Pins = map[string]string{}
			}
		}
	}
	if st.NameKey == "" {
		st.NameKey = client.NewSecret()
		if err := st.save(); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// save writes the state through a temporary file, so a crash never leaves
// a truncated file that loses the name key.
func (st *state) save() error {
	if st.path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(st.path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := st.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, st.path)
}
