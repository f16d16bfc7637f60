package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chat/internal/testserver"
	"chat/protocol"
)

// The reverse proxy tests run real nginx and Caddy, with the example
// configurations from deploy/ as an operator installs them; the test
// changes only the site name (to localhost, which its certificate
// names), the ports and the certificate paths, and fails if any of those
// is no longer in the file. Clients connect to the proxy on 127.0.0.1
// from 127.0.0.2 and 127.0.0.3 (all of 127/8 is loopback on Linux): the
// server, which trusts 127.0.0.1 only, must see them as themselves.

// deployConfig returns deploy/name with each old string replaced by its
// new one, failing the test if an old string is not in the file.
func deployConfig(t *testing.T, name string, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("deploy/%s no longer contains %q, which the test replaces: update the test with the file", name, replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	return s
}

// proxyProcess is a proxy (nginx, caddy) the test started.
type proxyProcess struct {
	name string
	mu   sync.Mutex
	out  bytes.Buffer
}

func (p *proxyProcess) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proxyProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startProxy runs cmd in the foreground as the test's child, killed when
// the test ends, and waits until it accepts connections on each of addrs.
func startProxy(t *testing.T, cmd *exec.Cmd, addrs ...string) *proxyProcess {
	t.Helper()
	p := &proxyProcess{name: filepath.Base(cmd.Path)}
	cmd.Stdout, cmd.Stderr = p, p
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the test process, whatever happens
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.output())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case err := <-exited:
				exited <- err // for the cleanup
				t.Fatalf("%s exited before listening on %s: %v\n%s", p.name, addr, err, p.output())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is not listening on %s after 20s\n%s", p.name, addr, p.output())
			}
			// A bounded poll: the proxy signals nothing when its port opens.
			time.Sleep(20 * time.Millisecond)
		}
	}
	return p
}

// proxyTest is a chat server that trusts 127.0.0.1 and allows one
// connection per address, and a certificate for the proxy in front.
type proxyTest struct {
	srv               *testserver.Server
	dir               string
	certFile, keyFile string
	roots             *x509.CertPool
}

// With "tls" the server has the certificate too, for both listeners.
func newProxyTest(t *testing.T, tlsMode ...string) *proxyTest {
	dir := t.TempDir()
	certFile, keyFile, cert := testserver.SelfSigned(t, dir)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	args := []string{"-trusted-proxies", "127.0.0.1", "-limit-loopback", "-max-conns-per-ip", "1"}
	if len(tlsMode) > 0 && tlsMode[0] == "tls" {
		args = append(args, "-tls-cert", certFile, "-tls-key", keyFile)
	}
	return &proxyTest{srv: testserver.Start(t, testserver.Options{Args: args}), dir: dir,
		certFile: certFile, keyFile: keyFile, roots: roots}
}

// dialWSVia opens a WebSocket to wss://localhost/ws through the proxy at
// proxyAddr, from the loopback address local, sending header.
func (pt *proxyTest) dialWSVia(t *testing.T, proxyAddr, local string, header http.Header) (*wsRaw, *http.Response, error) {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", proxyAddr)
		},
		TLSClientConfig: &tls.Config{RootCAs: pt.roots},
	}}
	t.Cleanup(client.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, port, _ := net.SplitHostPort(proxyAddr)
	c, resp, err := websocket.Dial(ctx, "wss://localhost:"+port+"/ws", &websocket.DialOptions{HTTPClient: client, HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(protocol.MaxFrame + protocol.LengthSize)
	t.Cleanup(func() { c.CloseNow() })
	return &wsRaw{t: t, c: c}, resp, nil
}

// checkWebSocketClients shows the server sees each WebSocket client
// through the proxy by its own address, whatever X-Forwarded-For it
// sends itself: in its log, and in its per-address limit, where two
// clients behind the one proxy each get their connection and a second
// from one of them is refused.
func (pt *proxyTest) checkWebSocketClients(t *testing.T, proxyAddr string) {
	srv := pt.srv
	_, port, _ := net.SplitHostPort(proxyAddr)
	// As a browser on the proxy's site sends it: the proxy must pass the
	// Host on for the server's same-origin check.
	origin := "https://localhost:" + port
	spoof := http.Header{"X-Forwarded-For": {"203.0.113.9"}, "Forwarded": {"for=203.0.113.10"}, "Origin": {origin}}
	first, _, err := pt.dialWSVia(t, proxyAddr, "127.0.0.2", spoof)
	if err != nil {
		t.Fatalf("first client from 127.0.0.2: %v", err)
	}
	first.send(&protocol.Hello{Version: protocol.Version, Client: "proxy-test"})
	expectWS[*protocol.Welcome](first)
	srv.WaitLog("connection opened", func(rec map[string]any) bool { return rec["remote"] == "127.0.0.2:0" })

	_, resp, err := pt.dialWSVia(t, proxyAddr, "127.0.0.2", spoof)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second client from 127.0.0.2: %v %v, want 429 (one connection per address)", err, resp)
	}
	srv.WaitLog("limit", func(rec map[string]any) bool {
		return rec["kind"] == "connections" && rec["remote"] == "127.0.0.2:0"
	})

	other, _, err := pt.dialWSVia(t, proxyAddr, "127.0.0.3", http.Header{"Origin": {origin}})
	if err != nil {
		t.Fatalf("client from 127.0.0.3: %v", err)
	}
	other.send(&protocol.Hello{Version: protocol.Version, Client: "proxy-test"})
	expectWS[*protocol.Welcome](other)
	srv.WaitLog("connection opened", func(rec map[string]any) bool { return rec["remote"] == "127.0.0.3:0" })

	for _, rec := range srv.LogRecords("connection opened") {
		if r, _ := rec["remote"].(string); strings.HasPrefix(r, "127.0.0.1:") || strings.HasPrefix(r, "203.0.113.") {
			t.Errorf("the server saw a connection from %s: the proxy, or an address a client made up", r)
		}
	}
}

// nginxConfig writes an nginx.conf around the deploy/ files given (http
// and stream parts) for a foreground nginx of the test's own, and returns
// its path.
func nginxConfig(t *testing.T, nginx, dir, httpPart, streamPart string) string {
	t.Helper()
	var conf strings.Builder
	if streamPart != "" {
		if module := streamModule(t, nginx); module != "" {
			conf.WriteString("load_module " + module + ";\n")
		}
	}
	conf.WriteString("daemon off;\nmaster_process off;\npid " + dir + "/nginx.pid;\nerror_log stderr notice;\nevents { worker_connections 64; }\n")
	if httpPart != "" {
		write(t, filepath.Join(dir, "chat.conf"), httpPart)
		conf.WriteString("http {\n  access_log off;\n")
		for _, temp := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
			conf.WriteString("  " + temp + "_temp_path " + dir + "/" + temp + ";\n")
		}
		conf.WriteString("  include " + dir + "/chat.conf;\n}\n")
	}
	if streamPart != "" {
		write(t, filepath.Join(dir, "chat-stream.conf"), streamPart)
		conf.WriteString("include " + dir + "/chat-stream.conf;\n")
	}
	path := filepath.Join(dir, "nginx.conf")
	write(t, path, conf.String())
	return path
}

// streamModule returns the stream module nginx must load ("" when it is
// built in). Debian builds it as a loadable module (libnginx-mod-stream),
// which the system nginx.conf loads through modules-enabled; the test's
// configuration does not read that.
func streamModule(t *testing.T, nginx string) string {
	t.Helper()
	out, err := exec.Command(nginx, "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -V: %v\n%s", err, out)
	}
	build := string(out)
	missing := func(why string) string {
		if testserver.RequireTools() {
			t.Fatal(why + "; CI or CHAT_REQUIRE_TOOLS=1 makes this a failure, not a skip")
		}
		t.Skip(why)
		return ""
	}
	switch {
	case strings.Contains(build, "--with-stream=dynamic"):
		dir := "/usr/lib/nginx/modules"
		if _, after, ok := strings.Cut(build, "--modules-path="); ok {
			dir = strings.Fields(after)[0]
		}
		module := filepath.Join(dir, "ngx_stream_module.so")
		if _, err := os.Stat(module); err != nil {
			return missing(module + " is missing: apt-get install libnginx-mod-stream")
		}
		return module
	case strings.Contains(build, "--with-stream "), strings.HasSuffix(strings.TrimSpace(build), "--with-stream"):
		return ""
	}
	return missing("this nginx has no stream module (apt-get install libnginx-mod-stream)")
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestWebSocketThroughNginx: deploy/nginx-chat.conf terminates TLS and
// carries the WebSocket; the server takes each client's address from
// the X-Forwarded-For nginx appends to.
func TestWebSocketThroughNginx(t *testing.T) {
	nginx := testserver.NeedTool(t, "nginx", "the reverse proxy test runs deploy/nginx-chat.conf in a real nginx")
	pt := newProxyTest(t)
	addr := freePort(t)
	site := deployConfig(t, "nginx-chat.conf",
		"/etc/letsencrypt/live/chat.example.com/fullchain.pem", pt.certFile,
		"/etc/letsencrypt/live/chat.example.com/privkey.pem", pt.keyFile,
		"chat.example.com", "localhost",
		"listen 443 ssl;", "listen "+addr+" ssl;",
		"http://127.0.0.1:8080", "http://"+pt.srv.HTTPAddr)
	conf := nginxConfig(t, nginx, pt.dir, site, "")
	startProxy(t, exec.Command(nginx, "-e", "stderr", "-p", pt.dir, "-c", conf), addr)
	pt.checkWebSocketClients(t, addr)
}

// TestWebSocketThroughCaddy: deploy/Caddyfile, the same.
func TestWebSocketThroughCaddy(t *testing.T) {
	caddy := testserver.NeedTool(t, "caddy", "the reverse proxy test runs deploy/Caddyfile in a real Caddy")
	pt := newProxyTest(t)
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	// The test's own global options: no admin endpoint (its port 2019 is
	// the machine's), no port 80, no certificate authority, no trust store.
	global := "{\n\tadmin off\n\tauto_https disable_redirects\n\thttp_port " + strings.TrimPrefix(freePort(t), "127.0.0.1:") +
		"\n\thttps_port " + port + "\n\tskip_install_trust\n}\n"
	site := deployConfig(t, "Caddyfile",
		"chat.example.com {", "localhost:"+port+" {\n\tbind 127.0.0.1\n\ttls "+pt.certFile+" "+pt.keyFile,
		"reverse_proxy 127.0.0.1:8080", "reverse_proxy "+pt.srv.HTTPAddr)
	path := filepath.Join(pt.dir, "Caddyfile")
	write(t, path, global+site)
	cmd := exec.Command(caddy, "run", "--config", path, "--adapter", "caddyfile")
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+home+"/data", "XDG_CONFIG_HOME="+home+"/config")
	startProxy(t, cmd, addr)
	pt.checkWebSocketClients(t, addr)
}

// TestTCPThroughNginxStream: deploy/nginx-chat-stream.conf terminates
// TLS for the apps' port and passes the stream on with a PROXY protocol
// header, which gives the server each client's address and port; and, as
// its comment offers, without its ssl lines it passes TLS through to a
// server with its own certificate, which reads the header before TLS.
func TestTCPThroughNginxStream(t *testing.T) {
	nginx := testserver.NeedTool(t, "nginx", "the reverse proxy test runs deploy/nginx-chat-stream.conf in a real nginx")
	t.Run("nginx terminates TLS", func(t *testing.T) {
		pt := newProxyTest(t)
		addr := freePort(t)
		stream := deployConfig(t, "nginx-chat-stream.conf",
			"/etc/letsencrypt/live/chat.example.com/fullchain.pem", pt.certFile,
			"/etc/letsencrypt/live/chat.example.com/privkey.pem", pt.keyFile,
			"listen 7878 ssl;", "listen "+addr+" ssl;",
			"proxy_pass 127.0.0.1:7879;", "proxy_pass "+pt.srv.Addr+";")
		startProxy(t, exec.Command(nginx, "-e", "stderr", "-p", pt.dir, "-c", nginxConfig(t, nginx, pt.dir, "", stream)), addr)
		pt.checkTCPClients(t, addr, false)

		// The proxy's machine itself connecting without a header is refused,
		// with a log line.
		direct := testserver.Dial(t, pt.srv.Addr)
		direct.Send(&protocol.Hello{Version: protocol.Version, Client: "proxy-test"})
		direct.ExpectClosed()
		pt.srv.WaitLog("limit", func(rec map[string]any) bool {
			return rec["kind"] == "proxy-protocol" && rec["remote"] == direct.Conn.LocalAddr().String()
		})
	})
	t.Run("TLS passed through", func(t *testing.T) {
		pt := newProxyTest(t, "tls")
		addr := freePort(t)
		stream := deployConfig(t, "nginx-chat-stream.conf",
			"        ssl_certificate     /etc/letsencrypt/live/chat.example.com/fullchain.pem;\n", "",
			"        ssl_certificate_key /etc/letsencrypt/live/chat.example.com/privkey.pem;\n", "",
			"listen 7878 ssl;", "listen "+addr+";",
			"proxy_pass 127.0.0.1:7879;", "proxy_pass "+pt.srv.Addr+";")
		startProxy(t, exec.Command(nginx, "-e", "stderr", "-p", pt.dir, "-c", nginxConfig(t, nginx, pt.dir, "", stream)), addr)
		pt.checkTCPClients(t, addr, true)
	})
}

// checkTCPClients shows the server sees each app through nginx's stream
// proxy by its own address and port: in its log, and in its per-address
// limit, where two clients behind the one proxy each get their
// connection and a second from one of them is refused.
func (pt *proxyTest) checkTCPClients(t *testing.T, proxyAddr string, serverTLS bool) {
	connect := func(local string) *tls.Conn {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", proxyAddr)
		if err != nil {
			t.Fatalf("to nginx from %s: %v", local, err)
		}
		return tls.Client(c, &tls.Config{ServerName: "localhost", RootCAs: pt.roots})
	}
	dial := func(local string) *testserver.Raw {
		c := connect(local)
		if err := c.Handshake(); err != nil {
			t.Fatalf("TLS through nginx from %s: %v", local, err)
		}
		r := testserver.Wrap(t, c)
		r.Send(&protocol.Hello{Version: protocol.Version, Client: "proxy-test"})
		return r
	}
	srv := pt.srv
	first := dial("127.0.0.2")
	testserver.Expect[*protocol.Welcome](first)
	// The PROXY header carries the client's port too: the log names the
	// very connection.
	srv.WaitLog("connection opened", func(rec map[string]any) bool { return rec["remote"] == first.Conn.LocalAddr().String() })

	second := connect("127.0.0.2")
	t.Cleanup(func() { second.Close() })
	if serverTLS {
		// The server refuses over the limit before its TLS handshake, with
		// a plain ERROR frame, which a TLS client cannot read.
		if err := second.Handshake(); err == nil {
			t.Fatal("second client from 127.0.0.2: TLS handshake done, want the server's refusal")
		}
	} else {
		r := testserver.Wrap(t, second)
		r.Send(&protocol.Hello{Version: protocol.Version, Client: "proxy-test"})
		if e := testserver.Expect[*protocol.Error](r); e.Code != protocol.CodeTooManyConnections {
			t.Fatalf("second client from 127.0.0.2: %v, want too many connections (one per address)", e)
		}
	}
	srv.WaitLog("limit", func(rec map[string]any) bool {
		return rec["kind"] == "connections" && rec["remote"] == second.LocalAddr().String()
	})

	other := dial("127.0.0.3")
	testserver.Expect[*protocol.Welcome](other)
	srv.WaitLog("connection opened", func(rec map[string]any) bool { return rec["remote"] == other.Conn.LocalAddr().String() })

	// Every connection nginx made carried a header: nothing else was refused.
	if recs := srv.LogRecords("limit"); len(recs) != 1 {
		t.Errorf("limit records %v, want only the second client's", recs)
	}
}

// TestForwardedHeadersOnlyFromTrustedProxies: the real server believes
// X-Forwarded-For from the trusted 127.0.0.1 and from nobody else, on
// the web port as on the TCP port, where a stranger's PROXY header is
// refused as garbage.
func TestForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-trusted-proxies", "127.0.0.1"}})
	dial := func(local string) *wsRaw {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws://"+srv.HTTPAddr+"/ws", &websocket.DialOptions{HTTPClient: client,
			HTTPHeader: http.Header{"X-Forwarded-For": {"203.0.113.9"}}})
		if err != nil {
			t.Fatalf("from %s: %v", local, err)
		}
		t.Cleanup(func() { c.CloseNow() })
		w := &wsRaw{t: t, c: c}
		w.send(&protocol.Hello{Version: protocol.Version, Client: "proxy-test"})
		expectWS[*protocol.Welcome](w)
		return w
	}
	dial("127.0.0.2")
	srv.WaitLog("connection opened", func(rec map[string]any) bool {
		r, _ := rec["remote"].(string)
		return strings.HasPrefix(r, "127.0.0.2:") && r != "127.0.0.2:0"
	})
	dial("127.0.0.1")
	srv.WaitLog("connection opened", func(rec map[string]any) bool { return rec["remote"] == "203.0.113.9:0" })
	if n := len(srv.LogRecords("connection opened")); n != 2 {
		t.Errorf("%d connections opened, want 2", n)
	}

	stranger, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	r := testserver.Wrap(t, stranger)
	r.Write([]byte("PROXY TCP4 203.0.113.9 127.0.0.1 5555 7878\r\n"))
	if e := testserver.Expect[*protocol.Error](r); e.Code != protocol.CodeFrameTooLarge {
		t.Errorf("a stranger's PROXY header: %v, want the frame-too-large of any garbage", e)
	}
	for _, rec := range srv.LogRecords("connection opened") {
		if rec["remote"] == "203.0.113.9:5555" {
			t.Error("a stranger's PROXY header set the address")
		}
	}
}
