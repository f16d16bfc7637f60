// Package metrics exposes the chat server's inside to Prometheus: a
// registry of the server's own (never the global default one, so two
// servers in one process, as in tests, do not mix), served as /metrics in
// the Prometheus text format.
//
// Counting costs the hot path no lock: the hub and the sessions keep
// atomic counters, connections are counted by transport as they open and
// close, and the commit latency histogram is lock-free. Everything else
// (queue depths, cache sizes) is measured when Prometheus scrapes, by
// reading the parts of the server listed in Sources.
//
// Labels have a fixed, small set of values: transports, and limit kinds
// (constants of the code). No room name, member name or address is ever a
// label.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"chat/server/internal/hub"
	"chat/server/internal/session"
)

// Transports are the values of the transport label.
const (
	TCP       = "tcp"
	TLS       = "tls"
	WebSocket = "websocket"
)

var transports = []string{TCP, TLS, WebSocket}

// Sources are the parts of the server read at each scrape. A nil func is
// left out (Store and NATS on the kinds of server that have none).
type Sources struct {
	Hub      func() hub.Stats
	Queues   func() session.QueueStats
	Limits   func() map[string]int64 // hits by kind
	SlowCuts func() int64
	// Store returns the bytes the message store holds (SQLite's files,
	// or JetStream's stream); ok false: not known now.
	Store func() (bytes int64, ok bool)
	// NATS reports whether the cluster connection is up, and whether the
	// last health check found JetStream storing.
	NATS func() (connected, healthy bool)
}

// Metrics is one server's registry and its instruments.
type Metrics struct {
	reg      *prometheus.Registry
	open     map[string]prometheus.Gauge
	accepted map[string]prometheus.Counter
	// CommitLatency is the seconds from a SEND's arrival to its ACK; give
	// it to the hub (hub.Config.CommitLatency).
	CommitLatency prometheus.Histogram
	src           *collector
}

// New makes a server's registry, with the Go runtime and process
// collectors. version goes into chat_build_info.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), open: map[string]prometheus.Gauge{},
		accepted: map[string]prometheus.Counter{}}
	open := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "chat_connections_open",
		Help: "Client connections open now, by transport."}, []string{"transport"})
	accepted := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chat_connections_accepted_total",
		Help: "Client connections accepted (after the per-address limits), by transport."}, []string{"transport"})
	for _, t := range transports {
		// Made once: WithLabelValues looks a child up under a lock, which
		// the hot path must not take.
		m.open[t], m.accepted[t] = open.WithLabelValues(t), accepted.WithLabelValues(t)
	}
	m.CommitLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "chat_commit_latency_seconds",
		Help:    "Time from a SEND arriving to its message being stored and acknowledged.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}})
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "chat_build_info",
		Help: "Always 1; the label says the server's version.", ConstLabels: prometheus.Labels{"version": version}})
	info.Set(1)
	m.src = &collector{}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		open, accepted, m.CommitLatency, info, m.src)
	return m
}

// Watch sets what scrapes read. Call it once, before serving.
func (m *Metrics) Watch(src Sources) { m.src.src = src }

// Registry is the server's registry.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus formats. At most a few
// scrapes run at once: each visits every connection and room.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("chat server metrics: see /metrics\n"))
	})
	return mux
}

// Start wraps a session starter (session.Manager.Start) to count the
// connections it starts as of transport.
func (m *Metrics) Start(transport string, start func(session.Transport, func())) func(session.Transport, func()) {
	open, accepted := m.open[transport], m.accepted[transport]
	return func(t session.Transport, onEnd func()) {
		accepted.Inc()
		open.Inc()
		start(t, func() {
			open.Dec()
			if onEnd != nil {
				onEnd()
			}
		})
	}
}

// Serve is Start for a caller that waits for each session to end (the
// WebSocket handler): like session.Manager.Serve, it returns when the
// session has ended.
func (m *Metrics) Serve(transport string, start func(session.Transport, func())) func(session.Transport) {
	counted := m.Start(transport, start)
	return func(t session.Transport) {
		done := make(chan struct{})
		counted(t, func() { close(done) })
		<-done
	}
}

// collector reads Sources at each scrape.
type collector struct{ src Sources }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	joinsDesc      = desc("chat_joins_total", "Room memberships that entered a room on this node (JOINs answered with JOINED).")
	storedDesc     = desc("chat_messages_stored_total", "Messages sent through this node and stored (a client's re-send of a stored message is not counted again).")
	deliveriesDesc = desc("chat_message_deliveries_total", "MESSAGE frames fanned out live to the members of rooms on this node (one per member per message; history replays not counted).")
	publishDesc    = desc("chat_publish_queue_messages", "Messages received from senders and not yet stored and acknowledged.")
	fanoutDesc     = desc("chat_fanout_queue_batches", "Batches of stored messages waiting to be fanned out to this node's members.")
	queueDesc      = desc("chat_send_queue_frames", "Frames waiting in the outgoing queues of all client connections.")
	queueMaxDesc   = desc("chat_send_queue_frames_max", "Frames waiting in the fullest outgoing queue of one client connection (cut off as a slow consumer at -send-queue).")
	queueBytesDesc = desc("chat_send_queue_bytes", "Bytes waiting in the outgoing queues of all client connections.")
	slowDesc       = desc("chat_slow_consumer_cuts_total", "Connections cut off because their client did not read fast enough (slow-consumer).")
	limitDesc      = desc("chat_limit_hits_total", "Times a limit stopped something, by kind (connections: per-address limits; message-rate: a client slowed down; flood: one cut off for it; key: a wrong server key; idle: in no room too long; frame-too-large; plain-on-tls).", "kind")
	roomsDesc      = desc("chat_rooms_active", "Rooms with members on this node.")
	cacheMsgsDesc  = desc("chat_history_cache_messages", "Recent messages held in memory for the rooms with members on this node.")
	cacheBytesDesc = desc("chat_history_cache_bytes", "Bytes of the recent messages held in memory (encoded frames).")
	storeDesc      = desc("chat_store_bytes", "Bytes the message store takes: the SQLite database and its write-ahead log on disk, or the cluster's JetStream message stream with its deduplication markers (the same for every node).")
	natsConnDesc   = desc("chat_nats_connected", "1 while this node is connected to NATS (cluster mode only).")
	natsOKDesc     = desc("chat_nats_healthy", "1 while the last health check found JetStream storing (cluster mode only).")
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{joinsDesc, storedDesc, deliveriesDesc, publishDesc, fanoutDesc, queueDesc,
		queueMaxDesc, queueBytesDesc, slowDesc, limitDesc, roomsDesc, cacheMsgsDesc, cacheBytesDesc, storeDesc,
		natsConnDesc, natsOKDesc} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := &c.src
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	if s.Hub != nil {
		st := s.Hub()
		counter(joinsDesc, float64(st.Joins))
		counter(storedDesc, float64(st.Stored))
		counter(deliveriesDesc, float64(st.Deliveries))
		gauge(publishDesc, float64(max(st.PublishPending, 0)))
		gauge(fanoutDesc, float64(st.FanoutQueue))
		gauge(roomsDesc, float64(st.Rooms))
		gauge(cacheMsgsDesc, float64(st.CachedMessages))
		gauge(cacheBytesDesc, float64(st.CachedBytes))
	}
	if s.Queues != nil {
		q := s.Queues()
		gauge(queueDesc, float64(q.Frames))
		gauge(queueMaxDesc, float64(q.MaxFrames))
		gauge(queueBytesDesc, float64(q.Bytes))
	}
	if s.SlowCuts != nil {
		counter(slowDesc, float64(s.SlowCuts()))
	}
	if s.Limits != nil {
		hits := s.Limits()
		for _, kind := range session.LimitKinds {
			counter(limitDesc, float64(hits[kind]), kind)
			delete(hits, kind)
		}
		// Kinds added elsewhere in the code and not listed yet: still
		// constants, so still a bounded set.
		for kind, n := range hits {
			counter(limitDesc, float64(n), kind)
		}
	}
	if s.Store != nil {
		if bytes, ok := s.Store(); ok {
			gauge(storeDesc, float64(bytes))
		}
	}
	if s.NATS != nil {
		connected, healthy := s.NATS()
		gauge(natsConnDesc, boolValue(connected))
		gauge(natsOKDesc, boolValue(healthy))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
