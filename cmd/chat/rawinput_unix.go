//go:build linux || darwin

package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// rawInput turns the terminal's line editing and echo off on f, so that
// the editor gets each key as it is typed; signals (Ctrl-C, Ctrl-Z) and
// output processing stay. It returns the function that turns them back
// on.
//
// Ctrl-\ (SIGQUIT) is turned off: its default action ends the program
// at once, leaving the terminal without echo. After Ctrl-Z and fg
// (SIGCONT) the shell may have put its own modes back: the editor's are
// applied again and redraw draws the draft again.
func rawInput(f *os.File, redraw func()) (restore func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Lflag &^= unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	raw.Cc[unix.VQUIT] = vdisable
	if err := unix.IoctlSetTermios(fd, ioctlSetTermios, &raw); err != nil {
		return nil, err
	}
	var mu sync.Mutex // restored and the modes set, against a SIGCONT at the end
	restored := false
	cont := make(chan os.Signal, 1)
	signal.Notify(cont, syscall.SIGCONT)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-cont:
				mu.Lock()
				if !restored {
					_ = unix.IoctlSetTermios(fd, ioctlSetTermios, &raw)
				}
				mu.Unlock()
				redraw()
			case <-stop:
				return
			}
		}
	}()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if restored {
			return
		}
		restored = true
		signal.Stop(cont)
		close(stop)
		_ = unix.IoctlSetTermios(fd, ioctlSetTermios, old)
	}, nil
}
