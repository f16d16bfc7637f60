//go:build !linux && !darwin

package main

import (
	"errors"
	"os"
)

// rawInput: no key-by-key input on this system; chat reads whole lines
// (and sends no typing indicator).
func rawInput(*os.File, func()) (restore func(), err error) {
	return nil, errors.New("no key-by-key terminal input on this system")
}
