//go:build !linux

package load

import (
	"errors"
	"sync"
	"time"
)

// poller is Linux-only (epoll); elsewhere every receiver has a goroutine.
type poller struct {
	mu   sync.Mutex
	lag  *Hist
	from int64
}

func newPoller(*Worker) (*poller, error) { return nil, errors.New("epoll needs Linux") }

func (*poller) run()                              {}
func (*poller) add(*receiver) error               { return errors.New("epoll needs Linux") }
func (*poller) pong(*receiver, []byte) error      { return errors.New("epoll needs Linux") }
func (*poller) process(*receiver, time.Time) bool { return false }
func (*poller) close()                            {}
