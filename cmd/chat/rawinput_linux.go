package main

import "golang.org/x/sys/unix"

const (
	ioctlGetTermios = unix.TCGETS
	ioctlSetTermios = unix.TCSETS
	// vdisable in a control character of termios turns that key off
	// (_POSIX_VDISABLE).
	vdisable = 0
)
