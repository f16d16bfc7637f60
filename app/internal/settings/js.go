//go:build js

package settings

import (
	"errors"
	"syscall/js"
)

// storageKey is where the browser build keeps its settings. localStorage
// is per site, so each chat server has its own.
const storageKey = "chat.settings"

// Path returns "": in the browser settings live in localStorage.
func (s *Store) Path() string { return "" }

func (s *Store) where() string { return "localStorage[" + storageKey + "]" }

func storage() (js.Value, error) {
	ls := js.Global().Get("localStorage")
	if ls.IsUndefined() || ls.IsNull() {
		return js.Value{}, errors.New("this browser has no localStorage (private mode?)")
	}
	return ls, nil
}

func (s *Store) read() ([]byte, error) {
	ls, err := storage()
	if err != nil {
		return nil, err
	}
	v := ls.Call("getItem", storageKey)
	if v.IsNull() {
		return nil, nil
	}
	return []byte(v.String()), nil
}

func (s *Store) write(b []byte) (err error) {
	ls, err := storage()
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil { // a full or disabled storage throws
			err = errors.New("the browser refused to store the settings")
		}
	}()
	ls.Call("setItem", storageKey, string(b))
	return nil
}

func (s *Store) setAside() (to string, err error) {
	b, err := s.read()
	if err != nil || b == nil {
		return "", err
	}
	ls, _ := storage()
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("the browser refused to store the settings")
		}
	}()
	ls.Call("setItem", storageKey+".unreadable", string(b))
	ls.Call("removeItem", storageKey)
	return "localStorage[" + storageKey + ".unreadable]", nil
}
