//go:build !linux

package transport

import (
	"errors"
	"syscall"
)

// Direct reports false: non-blocking socket access is implemented for
// Linux only; elsewhere sessions use a goroutine per connection.
func (t *TCP) Direct() bool { return false }

// CanPark reports false: sessions keep a reader goroutine here.
func (t *TCP) CanPark() bool { return false }

// SyscallConn is nil where CanPark is false.
func (t *TCP) SyscallConn() syscall.RawConn { return nil }

var errNotDirect = errors.New("transport: non-blocking access needs Linux")

// TryReadFrame is not available here (CanPark is false).
func (t *TCP) TryReadFrame(int) ([]byte, error) { return nil, errNotDirect }

// TryWrite is not available here (Direct is false).
func (t *TCP) TryWrite([][]byte) (int, error) { return 0, errNotDirect }

// tryRead is never used: try mode is never set here.
func (s *tlsSocket) tryRead([]byte) (int, error) { return 0, errNotDirect }
