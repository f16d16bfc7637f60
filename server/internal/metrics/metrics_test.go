package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"chat/server/internal/hub"
	"chat/server/internal/session"
)

// TestRegistriesAreTheServers: two servers in one process (as in tests)
// each have their own registry, and neither touches the global one.
func TestRegistriesAreTheServers(t *testing.T) {
	a, b := New("v1"), New("v2")
	a.open[TCP].Inc()
	if got := testutil.ToFloat64(b.open[TCP]); got != 0 {
		t.Errorf("b's open TCP connections: %v", got)
	}
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "chat_") {
			t.Errorf("%s is in the global registry", f.GetName())
		}
	}
}

// TestStartCountsConnectionsByTransport: a session starter wrapped by
// Start counts the connection as accepted and open, and as closed when
// the session ends, before whoever started it hears so.
func TestStartCountsConnectionsByTransport(t *testing.T) {
	m := New("dev")
	var ended func()
	start := m.Start(TLS, func(_ session.Transport, onEnd func()) { ended = onEnd })
	var openAtEnd float64
	start(nil, func() { openAtEnd = testutil.ToFloat64(m.open[TLS]) })
	if o, a := testutil.ToFloat64(m.open[TLS]), testutil.ToFloat64(m.accepted[TLS]); o != 1 || a != 1 {
		t.Fatalf("open %v, accepted %v; want 1, 1", o, a)
	}
	ended()
	if o, a := testutil.ToFloat64(m.open[TLS]), testutil.ToFloat64(m.accepted[TLS]); o != 0 || a != 1 || openAtEnd != 0 {
		t.Fatalf("after the end: open %v (%v when told), accepted %v", o, openAtEnd, a)
	}
	// Serve waits for the session's end.
	done := make(chan struct{})
	go func() {
		m.Serve(WebSocket, func(_ session.Transport, onEnd func()) { go onEnd() })(nil)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the session ended")
	}
	if o, a := testutil.ToFloat64(m.open[WebSocket]), testutil.ToFloat64(m.accepted[WebSocket]); o != 0 || a != 1 {
		t.Fatalf("websocket: open %v, accepted %v", o, a)
	}
}

// TestScrapeReadsSources: what a scrape shows comes from the sources, the
// listed limit kinds at zero too, and a kind not listed by its name.
func TestScrapeReadsSources(t *testing.T) {
	m := New("dev")
	m.Watch(Sources{
		Hub:      func() hub.Stats { return hub.Stats{Joins: 3, Stored: 5, Deliveries: 15, CachedBytes: 999} },
		Queues:   func() session.QueueStats { return session.QueueStats{Frames: 7, MaxFrames: 4} },
		Limits:   func() map[string]int64 { return map[string]int64{session.LimitFlood: 2, "rooms": 1} },
		SlowCuts: func() int64 { return 1 },
	})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		"chat_joins_total 3", "chat_messages_stored_total 5", "chat_message_deliveries_total 15",
		"chat_history_cache_bytes 999", "chat_send_queue_frames 7", "chat_send_queue_frames_max 4",
		`chat_limit_hits_total{kind="flood"} 2`, `chat_limit_hits_total{kind="key"} 0`, `chat_limit_hits_total{kind="rooms"} 1`,
		"chat_slow_consumer_cuts_total 1", `chat_build_info{version="dev"} 1`, "go_goroutines", "process_start_time_seconds",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in /metrics", want)
		}
	}
	if strings.Contains(body, "chat_nats_connected") || strings.Contains(body, "chat_store_bytes") {
		t.Error("metrics of sources not given are shown")
	}
}
