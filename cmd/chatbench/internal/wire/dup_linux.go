package wire

import "syscall"

// dupCloexec duplicates fd, close-on-exec, keeping it non-blocking (the
// flag belongs to the shared file description).
func dupCloexec(fd int) (int, error) {
	nfd, err := syscall.Dup(fd)
	if err != nil {
		return -1, err
	}
	syscall.CloseOnExec(nfd)
	return nfd, nil
}
