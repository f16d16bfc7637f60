package main

import "golang.org/x/sys/unix"

const (
	ioctlGetTermios = unix.TIOCGETA
	ioctlSetTermios = unix.TIOCSETA
	// vdisable in a control character of termios turns that key off
	// (_POSIX_VDISABLE).
	vdisable = 0xff
)
