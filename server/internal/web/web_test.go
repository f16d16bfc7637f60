package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

var wasmBytes = []byte("\x00asm\x01\x00\x00\x00 pretend this is the app")

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

const indexHTML = `<script src="wasm_exec.js"></script><script>fetch("main.wasm")</script>`

func newHandler(t *testing.T, files fstest.MapFS, health Health) http.Handler {
	t.Helper()
	h, err := New(Options{
		Files:     files,
		Icon:      []byte("\x89PNG icon"),
		WebSocket: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }),
		Health:    func() Health { return health },
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func built() fstest.MapFS {
	return fstest.MapFS{
		"index.html":   {Data: []byte(indexHTML)},
		"wasm_exec.js": {Data: []byte("// loader")},
		"main.wasm.gz": {Data: gz(wasmBytes)},
		"main.wasm.br": {Data: []byte("pretend brotli")},
	}
}

func get(h http.Handler, path string, header ...string) *http.Response {
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func TestPagePointsAtVersionedFiles(t *testing.T) {
	h := newHandler(t, built(), Health{})
	r := get(h, "/")
	page := body(r)
	if r.StatusCode != 200 || r.Header.Get("Cache-Control") != "no-cache" || r.Header.Get("ETag") == "" {
		t.Fatalf("GET /: %d %v", r.StatusCode, r.Header)
	}
	if !strings.Contains(r.Header.Get("Content-Security-Policy"), "'wasm-unsafe-eval'") ||
		r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("security headers: %v", r.Header)
	}
	wasmURL := regexp.MustCompile(`main\.wasm\?v=[0-9a-f]{16}`).FindString(page)
	loaderURL := regexp.MustCompile(`wasm_exec\.js\?v=[0-9a-f]{16}`).FindString(page)
	if wasmURL == "" || loaderURL == "" {
		t.Fatalf("page does not use versioned URLs: %s", page)
	}
	// The versioned URLs may be cached for good; plain ones revalidate.
	for _, u := range []string{wasmURL, loaderURL} {
		r := get(h, "/"+u, "Accept-Encoding", "gzip")
		if r.StatusCode != 200 || r.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("%s: %d, Cache-Control %q", u, r.StatusCode, r.Header.Get("Cache-Control"))
		}
	}
	if cc := get(h, "/main.wasm?v=stale", "Accept-Encoding", "gzip").Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("an old version is cached as %q", cc)
	}
}

func TestWasmIsServedCompressed(t *testing.T) {
	h := newHandler(t, built(), Health{})
	tests := []struct {
		accept, encoding string
		want             []byte
	}{
		{"gzip, deflate, br, zstd", "br", []byte("pretend brotli")},
		{"gzip", "gzip", gz(wasmBytes)},
		{"br;q=0, gzip", "gzip", gz(wasmBytes)},
		{"", "", wasmBytes}, // a client that takes no compression gets it decompressed
	}
	for _, tc := range tests {
		r := get(h, "/main.wasm", "Accept-Encoding", tc.accept)
		got, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 || r.Header.Get("Content-Encoding") != tc.encoding || !bytes.Equal(got, tc.want) ||
			r.Header.Get("Content-Type") != "application/wasm" || !strings.Contains(r.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: %d %v, %d bytes", tc.accept, r.StatusCode, r.Header, len(got))
		}
	}
	// Conditional requests save the download.
	etag := get(h, "/main.wasm", "Accept-Encoding", "gzip").Header.Get("ETag")
	if r := get(h, "/main.wasm", "Accept-Encoding", "gzip", "If-None-Match", etag); r.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", r.StatusCode)
	}
}

func TestWithoutBrotliGzipIsServed(t *testing.T) {
	files := built()
	delete(files, "main.wasm.br")
	h := newHandler(t, files, Health{})
	if r := get(h, "/main.wasm", "Accept-Encoding", "br, gzip"); r.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("Content-Encoding %q", r.Header.Get("Content-Encoding"))
	}
}

func TestMissingWebClientExplainsHowToBuildIt(t *testing.T) {
	for _, missing := range []string{"main.wasm.gz", "wasm_exec.js"} {
		files := built()
		delete(files, missing)
		h := newHandler(t, files, Health{})
		r := get(h, "/")
		page := body(r)
		if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "./build.sh wasm server") || !strings.Contains(page, missing) {
			t.Errorf("without %s: %d %s", missing, r.StatusCode, page)
		}
	}
	if _, err := New(Options{Files: fstest.MapFS{}}); err == nil {
		t.Error("no error without index.html")
	}
}

func TestHealth(t *testing.T) {
	for _, c := range []struct {
		health Health
		status string
		code   int
	}{
		{Health{Version: "v1.2.3", Connections: 7}, "ok", 200},
		{Health{Version: "v1.2.3", Connections: 7, Draining: true}, "draining", 503},
		{Health{Version: "v1.2.3", Connections: 7, NATS: "ok"}, "ok", 200},
		{Health{Version: "v1.2.3", Connections: 7, NATS: "disconnected from NATS"}, "unavailable", 503},
	} {
		h := newHandler(t, built(), c.health)
		r := getFrom(h, "/healthz", "127.0.0.1:40000")
		var got struct {
			Status      string
			Version     string
			Connections int
			NATS        string
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if r.StatusCode != c.code || got.Status != c.status || got.Version != "v1.2.3" || got.Connections != 7 || got.NATS != c.health.NATS {
			t.Errorf("%+v: %d %+v, want %d %s", c.health, r.StatusCode, got, c.code, c.status)
		}
	}
}

func getFrom(h http.Handler, path, remote string) *http.Response {
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// TestHealthDetailsOnlyForAllowed: /healthz tells the version, the
// connection count and NATS's state only to the addresses allowed
// (loopback by default); others get the status and its HTTP code alone.
func TestHealthDetailsOnlyForAllowed(t *testing.T) {
	health := Health{Version: "v1.2.3", Connections: 7, NATS: "disconnected from NATS"}
	for _, c := range []struct {
		from    []netip.Prefix
		remote  string
		details bool
	}{
		{nil, "127.0.0.1:1234", true},
		{nil, "127.9.8.7:1234", true},
		{nil, "[::1]:1234", true},
		{nil, "[::ffff:127.0.0.1]:1234", true},
		{nil, "192.0.2.1:1234", false},
		{nil, "[2001:db8::1]:1234", false},
		{nil, "not an address", false},
		{[]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, "192.0.2.77:1234", true},
		{[]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, "127.0.0.1:1234", false},
		{[]netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}, "[2001:db8::1]:1234", true},
	} {
		h, err := New(Options{Files: built(), Health: func() Health { return health }, HealthFrom: c.from,
			WebSocket: http.NotFoundHandler()})
		if err != nil {
			t.Fatal(err)
		}
		r := getFrom(h, "/healthz", c.remote)
		body, _ := io.ReadAll(r.Body)
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %v: %s", c.remote, err, body)
		}
		if r.StatusCode != 503 || got["status"] != "unavailable" {
			t.Errorf("%v %s: %d %s, want 503 and the status", c.from, c.remote, r.StatusCode, body)
		}
		_, hasVersion := got["version"]
		_, hasConns := got["connections"]
		_, hasNATS := got["nats"]
		if hasVersion != c.details || hasConns != c.details || hasNATS != c.details {
			t.Errorf("%v %s: %s; details wanted: %v", c.from, c.remote, body, c.details)
		}
		if !c.details && len(got) != 1 {
			t.Errorf("%v %s: a stranger got %s", c.from, c.remote, body)
		}
	}
}

func TestRoutes(t *testing.T) {
	h := newHandler(t, built(), Health{})
	if r := get(h, "/ws"); r.StatusCode != http.StatusTeapot {
		t.Errorf("/ws not routed to the WebSocket handler: %d", r.StatusCode)
	}
	if r := get(h, "/appicon.png"); r.StatusCode != 200 || r.Header.Get("Content-Type") != "image/png" {
		t.Errorf("/appicon.png: %d %v", r.StatusCode, r.Header)
	}
	if r := get(h, "/../etc/passwd"); r.StatusCode == 200 {
		t.Error("a path outside the client was served")
	}
	if r := get(h, "/nothing"); r.StatusCode != http.StatusNotFound {
		t.Errorf("/nothing: %d", r.StatusCode)
	}
	req := httptest.NewRequest("POST", "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", rec.Code)
	}
}
