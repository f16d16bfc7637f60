//go:build !linux

package transport

import (
	"errors"
	"syscall"
)

// Poller is Linux-only; elsewhere each connection keeps its goroutine.
type Poller struct{}

// NewPoller fails outside Linux.
func NewPoller() (*Poller, error) { return nil, errors.New("transport: no poller on this system") }

// Arm is never called: NewPoller fails.
func (p *Poller) Arm(syscall.RawConn, uint64, func()) error { return errors.New("no poller") }

// Forget is never called: NewPoller fails.
func (p *Poller) Forget(syscall.RawConn, uint64) {}
