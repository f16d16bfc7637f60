// Package settings remembers what the user chose last time: the server,
// name and room of the last successful join, the rooms joined and the
// conversations whose notifications are off, the name key (the secret that
// owns the user's names on servers), the certificates and access keys of
// the servers used, and the theme.
package settings

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Settings are the remembered choices. Empty fields mean "never set".
type Settings struct {
	Server string `json:"server,omitempty"`
	Name   string `json:"name,omitempty"`
	Room   string `json:"room,omitempty"`
	// Secret is this device's name key: the first join of a name with it
	// claims the name on that server, and later joins need it. Losing it
	// loses the names, hence the careful writes.
	Secret string `json:"secret,omitempty"`
	Dark   bool   `json:"dark,omitempty"`
	// Pins maps a server address, as typed, to the certificate fingerprint
	// (protocol.CertFingerprint form) the user chose to trust for it: how
	// self-signed servers are trusted.
	Pins map[string]string `json:"pins,omitempty"`
	// Keys maps a server address to the access key it accepted.
	Keys map[string]string `json:"keys,omitempty"`
	// Rooms maps a server address to the rooms joined there, in the order
	// they were joined: the app joins them all again at the next start.
	// Direct conversations are not kept: the server lists them.
	Rooms map[string][]string `json:"rooms,omitempty"`
	// Quiet maps a server address to the conversations (canonical room
	// names) whose notifications the user turned off.
	Quiet map[string][]string `json:"quiet,omitempty"`
}

// Store reads and writes Settings: as a JSON file in a directory on the
// desktop and Android, in the page's localStorage in the browser.
type Store struct {
	dir string // empty: nothing is persisted on the desktop
}

// FileName is the settings file's name inside the store's directory.
const FileName = "settings.json"

// Open returns a store for dir, which is created on the first Save. An
// empty dir gives a store that loads nothing and saves nowhere (except in
// the browser, which keeps settings per site whatever dir is).
func Open(dir string) *Store { return &Store{dir: dir} }

// Load returns the saved settings; nothing saved gives zero Settings and
// no error, so the first start looks like any other.
func (s *Store) Load() (Settings, error) {
	var st Settings
	b, err := s.read()
	if err != nil || b == nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return Settings{}, fmt.Errorf("%s: %w", s.where(), err)
	}
	return st, nil
}

// SetAside moves settings that Load could not read out of the way and
// says where they went: saving new settings would otherwise destroy what a
// person may still recover by hand (the name key above all).
func (s *Store) SetAside() (string, error) { return s.setAside() }

// Save writes st.
func (s *Store) Save(st Settings) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return s.write(append(b, '\n'))
}

// AddRoom remembers room (a canonical name) as joined on server, after
// the rooms joined before.
func (st *Settings) AddRoom(server, room string) {
	if slices.Contains(st.Rooms[server], room) {
		return
	}
	if st.Rooms == nil {
		st.Rooms = map[string][]string{}
	}
	st.Rooms[server] = append(st.Rooms[server], room)
}

// RemoveRoom forgets room on server.
func (st *Settings) RemoveRoom(server, room string) {
	st.Rooms[server] = remove(st.Rooms[server], room)
	if len(st.Rooms[server]) == 0 {
		delete(st.Rooms, server)
	}
}

// SetQuiet turns the notifications of room on server off (quiet) or on.
func (st *Settings) SetQuiet(server, room string, quiet bool) {
	switch {
	case quiet && !st.IsQuiet(server, room):
		if st.Quiet == nil {
			st.Quiet = map[string][]string{}
		}
		st.Quiet[server] = append(st.Quiet[server], room)
	case !quiet:
		st.Quiet[server] = remove(st.Quiet[server], room)
		if len(st.Quiet[server]) == 0 {
			delete(st.Quiet, server)
		}
	}
}

// IsQuiet reports whether the notifications of room on server are off.
func (st Settings) IsQuiet(server, room string) bool {
	return slices.Contains(st.Quiet[server], room)
}

func remove(list []string, s string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(x string) bool { return x == s })
}
