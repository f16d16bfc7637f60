// Package web serves the browser side of the chat server: the web client
// (the Gio app built for WebAssembly), the WebSocket endpoint and a health
// check for load balancers.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	"chat/internal/fontmanifest"
)

// Options configure the handler.
type Options struct {
	Files     fs.FS        // the web client: index.html, wasm_exec.js, main.wasm.gz, main.wasm.br (optional), fonts/ (optional)
	Icon      []byte       // served as /appicon.png
	WebSocket http.Handler // mounted at /ws
	Health    func() Health
	// HealthFrom are the addresses /healthz tells the whole Health
	// (version, connections, NATS); others get only the status. Nil:
	// loopback only.
	HealthFrom []netip.Prefix
	Logger     *slog.Logger
}

// loopback is HealthFrom's default.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// healthDetails reports whether the peer at remote (host:port) may see
// the whole Health.
func (o *Options) healthDetails(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	allowed := o.HealthFrom
	if allowed == nil {
		allowed = loopback
	}
	ip := ap.Addr().Unmap()
	for _, p := range allowed {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Health is what /healthz reports.
type Health struct {
	Version     string `json:"version"`
	Connections int    `json:"connections"`
	Draining    bool   `json:"draining"` // shutting down: answered with 503
	// NATS is cluster mode's store: "ok", or what is wrong with it
	// (answered with 503: the node takes no messages). Empty on a single
	// server.
	NATS string `json:"nats,omitempty"`
}

// status is the health's one word, and whether it is bad news.
func (h Health) status() (string, bool) {
	switch {
	case h.Draining:
		return "draining", true
	case h.NATS != "" && h.NATS != "ok":
		return "unavailable", true
	}
	return "ok", false
}

// asset is one file with its validators. Small files are held in memory;
// big ones (the app, megabytes) are read from their file system at each
// request, so an embedded client is not copied onto the heap.
type asset struct {
	data []byte // in memory, if fsys is nil
	fsys fs.FS
	name string
	etag string
	hash string // short content hash, used in versioned URLs
}

func newAsset(data []byte) *asset {
	sum := sha256.Sum256(data)
	return withHash(&asset{data: data}, sum[:])
}

// fileAsset hashes a file of fsys, or returns nil if it is missing.
func fileAsset(fsys fs.FS, name string) *asset {
	f, err := fsys.Open(name)
	if err != nil {
		return nil
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil
	}
	return withHash(&asset{fsys: fsys, name: name}, h.Sum(nil))
}

func withHash(a *asset, sum []byte) *asset {
	a.hash = hex.EncodeToString(sum[:8])
	a.etag = `"` + a.hash + `"`
	return a
}

// open returns the content to serve and a func to release it.
func (a *asset) open() (io.ReadSeeker, func(), error) {
	if a.fsys == nil {
		return bytes.NewReader(a.data), func() {}, nil
	}
	f, err := a.fsys.Open(a.name)
	if err != nil {
		return nil, nil, err
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		f.Close()
		return nil, nil, fmt.Errorf("%s cannot seek", a.name)
	}
	return rs, func() { f.Close() }, nil
}

type handler struct {
	opts    Options
	index   *asset
	loader  *asset
	wasmGz  *asset
	wasmBr  *asset // nil if not built
	icon    *asset
	missing string // why the web client cannot be served, or ""
	fonts   map[string]fontFile
}

// contentSecurityPolicy lets the page run its own script and WebAssembly
// and talk to its own origin, nothing else.
const contentSecurityPolicy = "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; " +
	"connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"

// New returns the HTTP handler. Files that are missing do not make it
// fail: the page then tells the operator how to build the web client.
func New(opts Options) (http.Handler, error) {
	h := &handler{opts: opts}
	index, err := fs.ReadFile(opts.Files, "index.html")
	if err != nil {
		return nil, errors.New("web: index.html is missing from the web client files")
	}
	h.loader = fileAsset(opts.Files, "wasm_exec.js")
	h.wasmGz, h.wasmBr = fileAsset(opts.Files, "main.wasm.gz"), fileAsset(opts.Files, "main.wasm.br")
	h.icon = newAsset(opts.Icon)
	switch {
	case h.wasmGz == nil:
		h.missing = "main.wasm.gz"
	case h.loader == nil:
		h.missing = "wasm_exec.js"
	}
	if h.missing == "" {
		// Point the page at versioned URLs, so the big files can be cached
		// for good and a new build is still picked up at once.
		page := strings.NewReplacer(
			`src="wasm_exec.js"`, `src="wasm_exec.js?v=`+h.loader.hash+`"`,
			`fetch("main.wasm")`, `fetch("main.wasm?v=`+h.wasmGz.hash+`")`,
		).Replace(string(index))
		h.index = newAsset([]byte(page))
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", opts.WebSocket)
	mux.HandleFunc("GET /healthz", h.health)
	mux.HandleFunc("GET /{$}", h.page)
	mux.HandleFunc("GET /main.wasm", h.wasm)
	mux.HandleFunc("GET /wasm_exec.js", func(w http.ResponseWriter, r *http.Request) {
		h.file(w, r, h.loader, "text/javascript; charset=utf-8")
	})
	mux.HandleFunc("GET /appicon.png", func(w http.ResponseWriter, r *http.Request) {
		h.file(w, r, h.icon, "image/png")
	})
	if h.fonts, err = loadFonts(opts.Files); err != nil {
		return nil, err
	}
	mux.HandleFunc("GET /fonts/{name...}", h.font)
	return securityHeaders(mux), nil
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		next.ServeHTTP(w, r)
	})
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	st := h.opts.Health()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	status, bad := st.status()
	if bad {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if !h.opts.healthDetails(r.RemoteAddr) {
		// Strangers (a load balancer elsewhere, anyone on the internet)
		// learn whether to send clients here, not what runs here nor how
		// busy it is.
		_ = json.NewEncoder(w).Encode(struct {
			Status string `json:"status"`
		}{status})
		return
	}
	_ = json.NewEncoder(w).Encode(struct {
		Status string `json:"status"`
		Health
	}{status, st})
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	if h.missing != "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, notBuiltPage, h.missing)
		return
	}
	h.file(w, r, h.index, "text/html; charset=utf-8")
}

const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chat: web client not built</title></head>
<body style="font: 16px system-ui, sans-serif; max-width: 40em; margin: 3em auto; line-height: 1.5">
<h1>The web client is not built into this server</h1>
<p>The server is running and the apps can connect, but the browser version is missing
(<code>%s</code> was not found when the server was built).</p>
<p>To add it, build the web client and then the server, from the source tree:</p>
<pre>./build.sh wasm server</pre>
<p>or, while developing, serve the files from a directory: <code>chat-server -web assets/web</code>.</p>
</body></html>
`

// file serves an in-memory asset with validators. A request naming the
// current version (?v=hash) may be cached for a year; others revalidate.
func (h *handler) file(w http.ResponseWriter, r *http.Request, a *asset, contentType string) {
	if a == nil {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("ETag", a.etag)
	if v := r.URL.Query().Get("v"); v != "" && v == a.hash {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	content, release, err := a.open()
	if err != nil {
		http.Error(w, "cannot read "+a.name, http.StatusInternalServerError)
		return
	}
	defer release()
	// No Last-Modified: embedded files have no real modification time.
	http.ServeContent(w, r, "", time.Time{}, content)
}

// wasm serves the app pre-compressed: brotli or gzip as the browser
// accepts, decompressed on the fly for the rare client that takes neither.
func (h *handler) wasm(w http.ResponseWriter, r *http.Request) {
	if h.wasmGz == nil {
		http.Error(w, "the web client is not built into this server; see /", http.StatusNotFound)
		return
	}
	w.Header().Add("Vary", "Accept-Encoding")
	accept := r.Header.Get("Accept-Encoding")
	switch {
	case h.wasmBr != nil && acceptsEncoding(accept, "br"):
		w.Header().Set("Content-Encoding", "br")
		h.fileVersioned(w, r, h.wasmBr, h.wasmGz.hash, "application/wasm")
	case acceptsEncoding(accept, "gzip"):
		w.Header().Set("Content-Encoding", "gzip")
		h.fileVersioned(w, r, h.wasmGz, h.wasmGz.hash, "application/wasm")
	default:
		content, release, err := h.wasmGz.open()
		if err != nil {
			http.Error(w, "cannot read the web client", http.StatusInternalServerError)
			return
		}
		defer release()
		zr, err := gzip.NewReader(content)
		if err != nil {
			http.Error(w, "corrupt web client build", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/wasm")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = io.Copy(w, zr)
	}
}

// fileVersioned is file for an encoding of a file (main.wasm, the font
// manifest): the version in the URL is that of one of its forms,
// whichever encoding is sent; the ETag is the encoding's own.
func (h *handler) fileVersioned(w http.ResponseWriter, r *http.Request, a *asset, version, contentType string) {
	enc := *a
	enc.hash = version
	enc.etag = `"` + a.hash + `"`
	h.file(w, r, &enc, contentType)
}

// acceptsEncoding reports whether an Accept-Encoding header allows enc
// (a q=0 entry refuses it).
func acceptsEncoding(header, enc string) bool {
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), enc) {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// fontFile is one file under /fonts/.
type fontFile struct {
	a           *asset
	gz          *asset // the manifest, gzip-compressed
	contentType string
}

var fontTypes = map[string]string{
	".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
	".txt": "text/plain; charset=utf-8",
}

// loadFonts reads fonts/manifest.json (internal/fontmanifest) from files,
// if there is one, and prepares what /fonts/ serves: the manifest, with
// each file's version added so the app's requests for it can be cached
// for good, the font files it names and the licences next to them. A
// server built without fonts serves none (the web client then draws
// boxes for the characters the Go fonts lack); a manifest naming a file
// that is not there is a broken build, and an error.
func loadFonts(files fs.FS) (map[string]fontFile, error) {
	data, err := fs.ReadFile(files, "fonts/"+fontmanifest.Name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("web: %v", err)
	}
	m, err := fontmanifest.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("web: fonts/%s: %v", fontmanifest.Name, err)
	}
	out := map[string]fontFile{}
	for i, f := range m.Files {
		ct, ok := fontTypes[path.Ext(f.File)]
		if !ok || ct == fontTypes[".txt"] {
			return nil, fmt.Errorf("web: fonts/%s names %s, which is not a font file", fontmanifest.Name, f.File)
		}
		a := fileAsset(files, "fonts/"+f.File)
		if a == nil {
			return nil, fmt.Errorf("web: fonts/%s names %s, which is missing (rebuild with ./build.sh fonts)", fontmanifest.Name, f.File)
		}
		m.Files[i].V = a.hash
		out[f.File] = fontFile{a: a, contentType: ct}
	}
	licences, err := fs.Glob(files, "fonts/LICENSE*")
	if err != nil {
		return nil, err
	}
	for _, name := range licences {
		if a := fileAsset(files, name); a != nil {
			out[strings.TrimPrefix(name, "fonts/")] = fontFile{a: a, contentType: fontTypes[".txt"]}
		}
	}
	versioned, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out[fontmanifest.Name] = fontFile{a: newAsset(versioned), gz: newAsset(gzipBytes(versioned)), contentType: "application/json"}
	return out, nil
}

func gzipBytes(data []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

// font serves /fonts/NAME: a file the manifest names, a licence or the
// manifest itself; anything else is not found.
func (h *handler) font(w http.ResponseWriter, r *http.Request) {
	f, ok := h.fonts[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if f.gz != nil {
		w.Header().Add("Vary", "Accept-Encoding")
		if acceptsEncoding(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			h.fileVersioned(w, r, f.gz, f.a.hash, f.contentType)
			return
		}
	}
	h.file(w, r, f.a, f.contentType)
}
