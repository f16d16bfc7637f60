//go:build !linux

package transport

import (
	"net"
	"syscall"
)

// Direct reports false: non-blocking socket access is implemented for
// Linux only; elsewhere sessions use a goroutine per connection.
func (t *TCP) Direct() bool { return false }

// CanPark reports false: sessions keep a reader goroutine here.
func (t *TCP) CanPark() bool { return false }

// SyscallConn is nil where CanPark is false.
func (t *TCP) SyscallConn() syscall.RawConn { return nil }

// TryReadFrame is not available here (CanPark is false).
func (t *TCP) TryReadFrame(int) ([]byte, error) { return nil, errNotDirect }

// TryWrite is not available here (Direct is false).
func (t *TCP) TryWrite([][]byte) (int, error) { return 0, errNotDirect }

// tryRead is never used: try mode is never set here.
func (s *tlsSocket) tryRead([]byte) (int, error) { return 0, errNotDirect }

// directConn is nil here: WebSockets use blocking writes and a reader
// goroutine.
func directConn(net.Conn) syscall.RawConn { return nil }

// readNow is never used: CanPark is false.
func readNow(net.Conn, syscall.RawConn, []byte) (int, error) { return 0, errNotDirect }

// writevNow is never used: Direct is false.
func writevNow(syscall.RawConn, [][]byte) (int, error) { return 0, errNotDirect }
