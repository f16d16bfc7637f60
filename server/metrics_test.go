package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"chat/internal/testserver"
	"chat/protocol"
)

// metricsAddr is where srv serves /metrics, as it logged.
func metricsAddr(t *testing.T, srv *testserver.Server) string {
	t.Helper()
	rec := srv.WaitLog("listening", func(rec map[string]any) bool { return rec["transport"] == "metrics" })
	return rec["addr"].(string)
}

// scrape gets /metrics and parses it with Prometheus's own text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The classic text format, as a Prometheus server asks for it.
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %s, %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels
// include labels (name=value pairs); it fails the test if there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range f.Metric {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no sample of %s with labels %v", name, labels)
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.Label {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// expectValues checks each metric against what the test caused.
func expectValues(t *testing.T, fams map[string]*dto.MetricFamily, want map[string]float64) {
	t.Helper()
	for key, v := range want {
		name, labels, _ := strings.Cut(key, " ")
		var l []string
		if labels != "" {
			l = strings.Split(labels, "=")
		}
		if got := value(t, fams, name, l...); got != v {
			t.Errorf("%s = %v, want %v", key, got, v)
		}
	}
}

// TestMetricsScrapedAndParsed: real clients over TCP and WebSocket join a
// room and exchange messages; /metrics, on its own port and parsed with
// Prometheus's text parser, counts exactly what they did, including a
// limit hit the test causes.
func TestMetricsScrapedAndParsed(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-metrics", "127.0.0.1:0", "-max-frame", "4096", "-max-text", "1000"}})
	addr := metricsAddr(t, srv)

	// Before anyone connects: every series is there, at zero.
	fams := scrape(t, addr)
	expectValues(t, fams, map[string]float64{
		"chat_connections_open transport=tcp":        0,
		"chat_connections_open transport=websocket":  0,
		"chat_joins_total":                           0,
		"chat_messages_stored_total":                 0,
		"chat_limit_hits_total kind=frame-too-large": 0,
	})
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_open_fds"} {
		if fams[name] == nil {
			t.Errorf("no %s: the Go or process collector is missing", name)
		}
	}

	alice, _ := testserver.JoinRoom(t, srv.Addr, "general", "alice")
	bob, _ := testserver.JoinRoom(t, srv.Addr, "general", "bob")
	carol, _, err := dialWS(t, wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	carol.send(&protocol.Hello{Version: protocol.Version, Client: "metrics-test"})
	expectWS[*protocol.Welcome](carol)
	carol.send(&protocol.Join{Room: "general", Name: "carol"})
	expectWS[*protocol.Joined](carol)

	const n = 25
	for i := range n {
		alice.Send(&protocol.Send{Room: "general", ID: fmt.Sprint("m", i), Text: fmt.Sprint("hello ", i)})
	}
	// acks reads alice's frames until k more ACKs have come, and returns
	// the last.
	acks := func(k int) *protocol.Ack {
		t.Helper()
		var last *protocol.Ack
		for got := 0; got < k; {
			m, err := alice.Read()
			if err != nil {
				t.Fatalf("alice, after %d ACKs: %v", got, err)
			}
			if a, ok := m.(*protocol.Ack); ok {
				last = a
				got++
			}
		}
		return last
	}
	acks(n)
	// A re-send of a stored message is acknowledged again, not stored.
	alice.Send(&protocol.Send{Room: "general", ID: "m0", Text: "hello 0"})
	if a := acks(1); a.Seq != 1 {
		t.Fatalf("the re-send was acknowledged with seq %d, not as the first message", a.Seq)
	}
	if got := bob.Messages(n); got[n-1].Text != fmt.Sprint("hello ", n-1) {
		t.Fatalf("bob's last message: %+v", got[n-1])
	}
	for i := range n {
		if m := expectWS[*protocol.Msg](carol); m.Seq != uint64(i+1) {
			t.Fatalf("carol's message %d has seq %d", i, m.Seq)
		}
	}

	fams = scrape(t, addr)
	expectValues(t, fams, map[string]float64{
		"chat_connections_open transport=tcp":                 2,
		"chat_connections_open transport=websocket":           1,
		"chat_connections_open transport=tls":                 0,
		"chat_connections_accepted_total transport=tcp":       2,
		"chat_connections_accepted_total transport=websocket": 1,
		"chat_joins_total":                                    3,
		"chat_messages_stored_total":                          n,
		// Every message to every member of the room: the sender too.
		"chat_message_deliveries_total": 3 * n,
		// Every SEND answered, the re-send too.
		"chat_commit_latency_seconds":                n + 1,
		"chat_publish_queue_messages":                0,
		"chat_rooms_active":                          1,
		"chat_history_cache_messages":                n,
		"chat_slow_consumer_cuts_total":              0,
		"chat_limit_hits_total kind=frame-too-large": 0,
	})
	if b := value(t, fams, "chat_history_cache_bytes"); b < float64(n*len("hello 00")) {
		t.Errorf("chat_history_cache_bytes = %v for %d messages", b, n)
	}
	if b := value(t, fams, "chat_store_bytes"); b <= 0 {
		t.Errorf("chat_store_bytes = %v", b)
	}
	if h := fams["chat_commit_latency_seconds"].Metric[0].Histogram; h.GetSampleSum() <= 0 || len(h.Bucket) == 0 {
		t.Errorf("commit latency histogram: %v", h)
	}

	// A frame above -max-frame: the client is cut off, the limit counted.
	big := testserver.Dial(t, srv.Addr)
	big.Send(&protocol.Hello{Version: protocol.Version, Client: "metrics-test"})
	testserver.Expect[*protocol.Welcome](big)
	var prefix [protocol.LengthSize]byte
	binary.BigEndian.PutUint32(prefix[:], 5000)
	big.Write(prefix[:])
	if e := testserver.Expect[*protocol.Error](big); e.Code != protocol.CodeFrameTooLarge {
		t.Fatalf("got %v, want frame-too-large", e)
	}
	big.Conn.Close()
	srv.WaitLog("connection closed", func(rec map[string]any) bool {
		return strings.Contains(fmt.Sprint(rec["reason"]), "frame")
	})
	expectValues(t, scrape(t, addr), map[string]float64{
		"chat_limit_hits_total kind=frame-too-large":    1,
		"chat_connections_accepted_total transport=tcp": 3,
		"chat_connections_open transport=tcp":           2,
	})

	// The chat ports do not serve metrics.
	resp, err := http.Get("http://" + srv.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "chat_") {
		t.Errorf("the web port answers /metrics: %s %.100s", resp.Status, body)
	}
}

// TestMetricsCountSlowConsumersAndConnectionLimits: a member that stops
// reading is cut off and counted, and so is a connection over
// -max-conns-per-ip.
func TestMetricsCountSlowConsumersAndConnectionLimits(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-metrics", "127.0.0.1:0",
		"-send-queue", "64", "-max-conns-per-ip", "2", "-limit-loopback", "-sync", "normal", "-max-text", "32000", "-max-frame", "40000"}})
	addr := metricsAddr(t, srv)
	sender, _ := testserver.JoinRoom(t, srv.Addr, "general", "sender")
	// The sleeper's receive buffer is small, so that what it does not
	// read piles up in the server's queue rather than in its kernel.
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	sleeper := testserver.Wrap(t, conn)
	sleeper.Send(&protocol.Hello{Version: protocol.Version, Client: "sleeper"})
	testserver.Expect[*protocol.Welcome](sleeper)
	sleeper.Send(&protocol.Join{Room: "general", Name: "sleeper"})
	testserver.Expect[*protocol.Joined](sleeper)
	// A third connection from this address is refused before a session.
	third := testserver.Dial(t, srv.Addr)
	if e := testserver.Expect[*protocol.Error](third); e.Code != protocol.CodeTooManyConnections {
		t.Fatalf("third connection: %v", e)
	}
	// The sleeper reads nothing, so its queue of 64 frames overflows once
	// its socket buffers are full. The sender reads all the time, on its
	// own goroutine, and keeps its queue short: it sends 16 messages at a
	// time and waits for their ACKs.
	acked := make(chan struct{}, 1024)
	go func() {
		for {
			m, err := sender.Read()
			if err != nil {
				close(acked)
				return
			}
			if _, ok := m.(*protocol.Ack); ok {
				acked <- struct{}{}
			}
		}
	}()
	text := strings.Repeat("x", 30000)
	// The cut shows in the metrics at once; its log line only once the
	// connection is finally closed (the sleeper reads not even its ERROR).
	cuts := func() float64 { return value(t, scrape(t, addr), "chat_slow_consumer_cuts_total") }
	for i := 0; cuts() == 0; i++ {
		if i == 1000 {
			t.Fatal("16000 messages of 30 KB and the sleeper is still connected")
		}
		for k := range 16 {
			sender.Send(&protocol.Send{Room: "general", ID: fmt.Sprint(i, "-", k), Text: text})
		}
		for range 16 {
			if _, ok := <-acked; !ok {
				t.Fatal("the sender's connection ended")
			}
		}
	}
	// The sender, reading all along, is still there: one cut only.
	sender.Send(&protocol.Send{Room: "general", ID: "last", Text: "still here"})
	if _, ok := <-acked; !ok {
		t.Fatal("the sender was cut off too")
	}
	expectValues(t, scrape(t, addr), map[string]float64{
		"chat_slow_consumer_cuts_total":          1,
		"chat_limit_hits_total kind=connections": 1,
	})
}

// TestMetricsCountTLSAndPlainOnTLS: on a TLS server, connections count
// under transport tls, and a plain-protocol client is a limit hit of its
// own kind.
func TestMetricsCountTLSAndPlainOnTLS(t *testing.T) {
	srv, cert, _ := tlsServer(t, "-metrics", "127.0.0.1:0")
	addr := metricsAddr(t, srv)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	c, err := tls.Dial("tcp", srv.Addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	r := testserver.Wrap(t, c)
	r.Send(&protocol.Hello{Version: protocol.Version, Client: "metrics-test"})
	testserver.Expect[*protocol.Welcome](r)
	plain := testserver.Dial(t, srv.Addr)
	plain.Send(&protocol.Hello{Version: protocol.Version, Client: "plain"})
	if e := testserver.Expect[*protocol.Error](plain); e.Code != protocol.CodeTLSRequired {
		t.Fatalf("plain on TLS: %v", e)
	}
	expectValues(t, scrape(t, addr), map[string]float64{
		"chat_connections_open transport=tls":           1,
		"chat_connections_accepted_total transport=tls": 1,
		"chat_connections_accepted_total transport=tcp": 0,
		"chat_limit_hits_total kind=plain-on-tls":       1,
	})
}

// TestHealthzDetailsOnlyForAllowedAddresses: with -healthz-allow
// 127.0.0.1/32, a client from 127.0.0.1 reads the version and connection
// count; one from 127.0.0.2 gets the status alone. Metrics are off by
// default.
func TestHealthzDetailsOnlyForAllowedAddresses(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-healthz-allow", "127.0.0.1/32"}})
	get := func(from string) map[string]any {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}}
		resp, err := c.Get("http://" + srv.HTTPAddr + "/healthz")
		if err != nil {
			t.Fatalf("from %s: %v", from, err)
		}
		defer resp.Body.Close()
		var got map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("from %s: %s %v", from, resp.Status, err)
		}
		return got
	}
	if got := get("127.0.0.1"); got["status"] != "ok" || got["version"] == nil || got["connections"] == nil {
		t.Errorf("from an allowed address: %v", got)
	}
	if got := get("127.0.0.2"); got["status"] != "ok" || len(got) != 1 {
		t.Errorf("a stranger got %v, want the status alone", got)
	}
	for _, rec := range srv.LogRecords("listening") {
		if rec["transport"] == "metrics" {
			t.Errorf("metrics served without -metrics: %v", rec)
		}
	}
}

// TestMetricsPerClusterNode: two chat nodes on one NATS server each serve
// their own /metrics; a message sent through one is stored by that one
// and delivered by both.
func TestMetricsPerClusterNode(t *testing.T) {
	c := startCluster(t, 1, 2, "-metrics", "127.0.0.1:0")
	ann := c.member(t, "ann", 0, "general")
	bob := c.member(t, "bob", 1, "general")
	const n = 5
	for i := range n {
		if _, err := ann.C.Send("general", fmt.Sprint("hi ", i)); err != nil {
			t.Fatal(err)
		}
	}
	ann.WaitMessages(t, n)
	bob.WaitMessages(t, n)
	// ann has every ACK once she has seen her own messages: the node
	// acknowledges before it fans out.
	for i, want := range []struct{ stored, delivered float64 }{{n, n}, {0, n}} {
		fams := scrape(t, metricsAddr(t, c.nodes[i]))
		expectValues(t, fams, map[string]float64{
			"chat_messages_stored_total":          want.stored,
			"chat_message_deliveries_total":       want.delivered,
			"chat_joins_total":                    1,
			"chat_nats_connected":                 1,
			"chat_connections_open transport=tcp": 1,
		})
		// The cluster's stream, the same for both nodes.
		if b := value(t, fams, "chat_store_bytes"); b < n*float64(len("hi 0")) {
			t.Errorf("node %d: chat_store_bytes = %v", i, b)
		}
	}
}

// metricNames are the names in PromQL expressions that look like metrics
// of the server (chat_, go_, process_).
var metricNames = regexp.MustCompile(`\b(?:chat|go|process)_[a-zA-Z0-9_]+\b`)

// TestGrafanaDashboardUsesExportedMetrics: deploy/grafana-dashboard.json
// is a dashboard whose every query names only metrics a real server
// exports, and which shows every chat_ metric.
func TestGrafanaDashboardUsesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "deploy", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title         string           `json:"title"`
		UID           string           `json:"uid"`
		SchemaVersion int              `json:"schemaVersion"`
		Panels        []map[string]any `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || dash.SchemaVersion == 0 || len(dash.Panels) == 0 {
		t.Fatalf("not a dashboard: title %q uid %q schemaVersion %d, %d panels", dash.Title, dash.UID, dash.SchemaVersion, len(dash.Panels))
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var all any
	_ = json.Unmarshal(data, &all)
	walk(all)
	if len(exprs) < 8 {
		t.Fatalf("only %d queries in the dashboard", len(exprs))
	}

	// A single server and a cluster node: between them, every metric.
	srv := testserver.Start(t, testserver.Options{Args: []string{"-metrics", "127.0.0.1:0"}})
	exported := map[string]bool{}
	add := func(fams map[string]*dto.MetricFamily) {
		for name, f := range fams {
			exported[name] = true
			if f.GetType() == dto.MetricType_HISTOGRAM {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					exported[name+s] = true
				}
			}
		}
	}
	add(scrape(t, metricsAddr(t, srv)))
	node := startCluster(t, 1, 1, "-metrics", "127.0.0.1:0")
	add(scrape(t, metricsAddr(t, node.nodes[0])))

	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metricNames.FindAllString(e, -1) {
			used[name] = true
			if !exported[name] {
				t.Errorf("the dashboard queries %s, which the server does not export: %s", name, e)
			}
		}
	}
	for name := range exported {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !strings.HasPrefix(name, "chat_") || name == "chat_build_info" || base != name && exported[base] {
			continue
		}
		if !used[name] && !slices.ContainsFunc(exprs, func(e string) bool { return strings.Contains(e, name+"_") }) {
			t.Errorf("the dashboard does not show %s", name)
		}
	}
}
