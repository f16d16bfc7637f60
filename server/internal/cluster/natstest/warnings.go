package natstest

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// maxWarnings bounds what a long test keeps of the servers' logs.
const maxWarnings = 200

// warnings keeps the servers' warnings and errors (the last
// maxWarnings), so that a failing test shows what NATS said — an API
// error such as "error creating store for stream" carries its cause
// only in the server's log. They are kept rather than given to t.Log
// at once because servers log after a test has ended.
type warnings struct {
	mu      sync.Mutex
	lines   []string
	dropped int
}

func (w *warnings) add(server int, level, format string, v ...any) {
	line := fmt.Sprintf("%s nats-%d %s: %s", time.Now().Format("15:04:05.000"), server, level, fmt.Sprintf(format, v...))
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.lines) == maxWarnings {
		w.lines = w.lines[1:]
		w.dropped++
	}
	w.lines = append(w.lines, line)
}

func (w *warnings) dump(t testing.TB) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.lines) == 0 {
		return
	}
	t.Logf("NATS servers' warnings and errors (%d earlier ones left out):", w.dropped)
	for _, l := range w.lines {
		t.Log(l)
	}
}

// server returns the logger of server i.
func (w *warnings) server(i int) serverLog { return serverLog{w, i} }

// serverLog is a server.Logger keeping warnings and errors; notices,
// debug and trace lines are left out.
type serverLog struct {
	w *warnings
	i int
}

func (l serverLog) Noticef(string, ...any)         {}
func (l serverLog) Debugf(string, ...any)          {}
func (l serverLog) Tracef(string, ...any)          {}
func (l serverLog) Warnf(format string, v ...any)  { l.w.add(l.i, "warning", format, v...) }
func (l serverLog) Errorf(format string, v ...any) { l.w.add(l.i, "error", format, v...) }
func (l serverLog) Fatalf(format string, v ...any) { l.w.add(l.i, "fatal", format, v...) }
