//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile is the file in the data directory that a single server holds
// an exclusive flock on while it runs, and a restore while it works: the
// kernel releases it when the process ends, however it ends, so a crash
// leaves no stale lock.
const lockFile = "chat.lock"

// errDataLocked: another process holds the data directory.
var errDataLocked = errors.New("the data directory is in use")

// lockData takes the data directory's lock without waiting. It fails
// with errDataLocked (and the holder's process id, if it wrote one) when
// a server or a restore holds it. The returned function releases it.
func lockData(dir, holder string) (unlock func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := strings.TrimSpace(string(b))
			if who == "" {
				who = "another process"
			}
			return nil, fmt.Errorf("%w: %s holds %s", errDataLocked, who, path)
		}
		return nil, fmt.Errorf("data directory lock %s: %w", path, err)
	}
	// Who holds it, for the message above (the lock is the flock, not
	// this text).
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(holder+" (pid "+strconv.Itoa(os.Getpid())+")\n"), 0)
	return func() {
		_ = f.Truncate(0)
		_ = f.Close()
	}, nil
}
