//go:build linux || darwin

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// rawInput turns the terminal's line editing and echo off on f, so that
// the editor gets each key as it is typed; signals (Ctrl-C) and output
// processing stay. It returns the function that turns them back on.
func rawInput(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Lflag &^= unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, ioctlSetTermios, &raw); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, ioctlSetTermios, old) }, nil
}
