package main

// Tests of what a server on the open internet needs: access key, name
// ownership, abuse limits, TLS.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

func TestWrongKeyIsRefused(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-key", "open sesame"}})
	_, w := testserver.Handshake(t, srv.Addr)
	if w.Flags&protocol.WelcomeKeyRequired == 0 {
		t.Error("WELCOME does not say a key is required")
	}
	for _, key := range []string{"", "open", "open sesame!", "OPEN SESAME"} {
		r, _ := testserver.Handshake(t, srv.Addr)
		r.Send(&protocol.Join{Room: "general", Name: "guesser", Key: key})
		e := testserver.Expect[*protocol.Error](r)
		if e.Code != protocol.CodeUnauthorized || !e.Closing() || e.Reconnect() {
			t.Fatalf("key %q: got %v", key, e)
		}
		r.ExpectClosed()
	}
	// The library stops at once, saying why.
	bad := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "bad", Key: "wrong"})
	bad.C.Join("general")
	if st := bad.WaitState(t, client.Closed); st.Err == nil || !strings.Contains(st.Err.Error(), "unauthorized") {
		t.Fatalf("closed with %v", st.Err)
	}
	good := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "good", Key: "open sesame"})
	good.C.Join("general")
	good.WaitJoined(t, "general")
	if strings.Contains(srv.Log(), "sesame") {
		t.Fatal("the key appears in the log")
	}
	srv.WaitLog("limit", func(rec map[string]any) bool { return rec["kind"] == "key" })
}

// TestNameOwnershipSurvivesRestartsAndCanBeReleased: the first device
// claims a name; after a restart a second device is refused and the owner
// still gets in; the operator releases the name and the second device
// can claim it.
func TestNameOwnershipSurvivesRestartsAndCanBeReleased(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	owner := client.NewSecret()
	joinAs := func(room, secret string) *clienttest.Recorder {
		r := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "alice", Secret: secret})
		r.C.Join(room)
		return r
	}
	first := joinAs("general", owner)
	first.WaitJoined(t, "general")
	first.C.Close()
	srv.Restart()

	thief := joinAs("elsewhere", client.NewSecret()) // another room: names are server-wide
	re := thief.Wait(t, "refusal", func(ev client.Event) bool { _, ok := ev.(client.RoomError); return ok }).(client.RoomError)
	if re.Err.Code != protocol.CodeNameOwned || !strings.Contains(re.Err.Text, "name key") {
		t.Fatalf("thief got %v", re.Err)
	}
	raw, _ := testserver.Handshake(t, srv.Addr)
	raw.Send(&protocol.Join{Room: "general", Name: "ALICE"})
	if e := testserver.Expect[*protocol.Error](raw); e.Code != protocol.CodeNameOwned {
		t.Fatalf("no secret: %v", e)
	}
	second := joinAs("general", owner) // the owner's other device, with the copied name key
	second.WaitJoined(t, "general")
	second.C.Close()

	// The operator releases the name while the server runs.
	out, err := exec.Command(testserver.Binary(t), "-data", srv.Data, "-release-name", "Alice").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "released") {
		t.Fatalf("-release-name: %v %s", err, out)
	}
	out, err = exec.Command(testserver.Binary(t), "-data", srv.Data, "-release-name", "alice").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nobody has claimed") {
		t.Fatalf("second release: %v %s", err, out)
	}
	newOwner := joinAs("general", client.NewSecret())
	newOwner.WaitJoined(t, "general")
	old := joinAs("general", owner)
	old.Wait(t, "old owner refused", func(ev client.Event) bool { _, ok := ev.(client.RoomError); return ok })
}

// TestFloodIsSlowedThenCutOff: a client sending as fast as it can is held
// to the rate, then disconnected; a normal user in the same room keeps a
// low latency meanwhile.
func TestFloodIsSlowedThenCutOff(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-msg-rate", "20", "-msg-burst", "10", "-flood-after", "2s"}})
	normal := join(t, srv, "normal")
	flooder, _ := testserver.JoinRoom(t, srv.Addr, "general", "flooder")

	var sent atomic.Int64
	floodDone := make(chan error, 1)
	start := time.Now()
	go func() {
		for i := 0; ; i++ {
			_ = flooder.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := flooder.Conn.Write(protocol.Encode(&protocol.Send{Room: "general", ID: fmt.Sprint(i), Text: "spam"})); err != nil {
				floodDone <- err
				return
			}
			sent.Add(1)
		}
	}()

	// Meanwhile the normal user talks, and each message comes back fast.
	var worst time.Duration
	for i := range 8 {
		t0 := time.Now()
		text := fmt.Sprint("normal ", i)
		normal.C.Send("general", text)
		normal.WaitText(t, text)
		worst = max(worst, time.Since(t0))
		time.Sleep(150 * time.Millisecond) // a person's pace, through the flood: the behaviour under test
	}
	t.Logf("normal user's slowest round trip during the flood: %v", worst)
	if worst > time.Second {
		t.Errorf("the normal user waited %v during the flood", worst)
	}

	// The flood was held to the rate: burst + rate × time, not what was sent.
	stored := 0
	for _, m := range normal.Messages() {
		if m.Sender == "flooder" {
			stored++
		}
	}
	elapsed := time.Since(start).Seconds()
	if limit := 10 + 20*elapsed + 5; float64(stored) > limit {
		t.Errorf("%d flood messages got through in %.1fs; the limit allows about %.0f", stored, elapsed, limit)
	}
	// And it was cut off with a reconnectable rate-limited error.
	var cut *protocol.Error
	deadline := time.Now().Add(10 * time.Second)
	for cut == nil && time.Now().Before(deadline) {
		m, err := flooder.Read()
		if err != nil {
			t.Fatalf("flooder: %v before the rate-limited error", err)
		}
		cut, _ = m.(*protocol.Error)
	}
	if cut == nil || cut.Code != protocol.CodeRateLimited || !cut.Reconnect() {
		t.Fatalf("flooder got %v", cut)
	}
	t.Logf("flooder wrote %d messages, %d were stored, cut off after %v", sent.Load(), stored, time.Since(start).Round(100*time.Millisecond))
	srv.WaitLog("limit", func(rec map[string]any) bool { return rec["kind"] == "flood" })
	srv.WaitLog("limit", func(rec map[string]any) bool { return rec["kind"] == "message-rate" })
}

func TestPerAddressConnectionLimits(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-limit-loopback", "-max-conns-per-ip", "3", "-new-conns-per-minute", "6"}})
	var open []*testserver.Raw
	for range 3 {
		r, _ := testserver.Handshake(t, srv.Addr)
		open = append(open, r)
	}
	r := testserver.Dial(t, srv.Addr)
	if e := testserver.Expect[*protocol.Error](r); e.Code != protocol.CodeTooManyConnections || !e.Reconnect() {
		t.Fatalf("4th concurrent: %v", e)
	}
	// WebSocket counts against the same limit.
	resp, err := http.Get("http://" + srv.HTTPAddr + "/ws")
	if err != nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("WebSocket over the limit: %v %v", err, resp)
	}
	// A connection ends: there is room for one more, and only one.
	open[0].Conn.Close()
	srv.WaitLog("connection closed", nil)
	testserver.Handshake(t, srv.Addr)
	r = testserver.Dial(t, srv.Addr)
	if e := testserver.Expect[*protocol.Error](r); e.Code != protocol.CodeTooManyConnections {
		t.Fatalf("over the limit again: %v", e)
	}
	srv.WaitLog("limit", func(rec map[string]any) bool { return rec["kind"] == "connections" })
	// Pages are not limited, only connections.
	if resp, err := http.Get("http://" + srv.HTTPAddr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
}

func TestNewConnectionsPerMinute(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-limit-loopback", "-max-conns-per-ip", "0", "-new-conns-per-minute", "4"}})
	for range 4 {
		r, _ := testserver.Handshake(t, srv.Addr)
		r.Conn.Close()
	}
	r := testserver.Dial(t, srv.Addr)
	e := testserver.Expect[*protocol.Error](r)
	if e.Code != protocol.CodeTooManyConnections || !strings.Contains(e.Text, "minute") {
		t.Fatalf("5th in a minute: %v", e)
	}
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	// The keepalive allows 1.5 pings of silence: 750 ms leaves room for a
	// loaded machine to answer, where 200 ms did not.
	srv := testserver.Start(t, testserver.Options{Args: []string{"-idle-timeout", "1s", "-ping", "500ms"}})
	idle, _ := testserver.Handshake(t, srv.Addr)
	member, _ := testserver.JoinRoom(t, srv.Addr, "general", "member")
	// The member answers PINGs throughout, and reports each one: the
	// server's own PINGs (every 500 ms) are the clock below.
	memberPings, memberEnd := make(chan struct{}, 64), make(chan error, 1)
	go func() {
		for {
			m, err := member.Read()
			if err != nil {
				memberEnd <- err
				return
			}
			switch m := m.(type) {
			case *protocol.Ping:
				if _, err := member.Conn.Write(protocol.Encode(&protocol.Pong{Nonce: m.Nonce})); err != nil {
					memberEnd <- err
					return
				}
				memberPings <- struct{}{}
			case *protocol.Presence:
			default:
				memberEnd <- fmt.Errorf("got %T %+v", m, m)
				return
			}
		}
	}()
	start := time.Now()
	for {
		m, err := idle.Read()
		if err != nil {
			t.Fatalf("closed without an error frame: %v", err)
		}
		if p, ok := m.(*protocol.Ping); ok {
			idle.Send(&protocol.Pong{Nonce: p.Nonce}) // alive, but in no room
			continue
		}
		// Closing without reconnect: reconnecting would only lead into
		// the same timeout (spec §5).
		e, ok := m.(*protocol.Error)
		if !ok || e.Code != protocol.CodeTimeout || !strings.Contains(e.Text, "no room") || !e.Closing() || e.Reconnect() {
			t.Fatalf("got %+v", m)
		}
		break
	}
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Errorf("closed after %v, before the idle timeout", d)
	}
	// A member of a room stays connected, however long it says nothing
	// but PONG: five more PINGs put it well past the idle timeout.
	for range 5 {
		select {
		case <-memberPings:
		case err := <-memberEnd:
			t.Fatalf("the member, in a room, was disconnected after %v: %v", time.Since(start), err)
		}
	}
}

// tlsServer starts a server with a fresh self-signed certificate.
func tlsServer(t *testing.T, extra ...string) (*testserver.Server, *x509.Certificate, string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, cert := testserver.SelfSigned(t, dir)
	srv := testserver.Start(t, testserver.Options{Args: append([]string{"-tls-cert", certFile, "-tls-key", keyFile,
		"-handshake-timeout", "1s"}, extra...)})
	return srv, cert, dir
}

func TestTLSClientsAndPinning(t *testing.T) {
	srv, cert, _ := tlsServer(t)
	fp := protocol.CertFingerprint(cert.Raw)
	rec := srv.WaitLog("tls: certificate loaded", nil)
	if rec["fingerprint"] != fp {
		t.Fatalf("the server logs fingerprint %v, the certificate's is %s", rec["fingerprint"], fp)
	}
	addr := "tls://" + srv.Addr

	// Not trusted by the system: refused, with the fingerprint to check.
	stranger := clienttest.New(t, client.Config{Addr: addr, Name: "stranger"})
	st := stranger.WaitState(t, client.Closed)
	var cerr *client.CertificateError
	if !errors.As(st.Err, &cerr) || cerr.Fingerprint != fp || cerr.Pinned != "" {
		t.Fatalf("untrusted certificate: %v", st.Err)
	}
	t.Logf("the user is told: %v", st.Err)

	// Pinned: trusted.
	pinned := clienttest.New(t, client.Config{Addr: addr, Name: "pinned", TLS: client.TLSOptions{Pin: fp}})
	pinned.C.Join("general")
	pinned.WaitJoined(t, "general")

	// Trusted through a CA pool (a private CA, or a public one).
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	viaCA := clienttest.New(t, client.Config{Addr: addr, Name: "via-ca", TLS: client.TLSOptions{RootCAs: roots}})
	viaCA.C.Join("general")
	viaCA.WaitJoined(t, "general")
	// …but only for the names in the certificate.
	wrongName := clienttest.New(t, client.Config{Addr: addr, Name: "wrong-name", TLS: client.TLSOptions{RootCAs: roots, ServerName: "chat.example.com"}})
	if st := wrongName.WaitState(t, client.Closed); !errors.As(st.Err, &cerr) {
		t.Fatalf("wrong host name accepted: %v", st.Err)
	}

	// A different pin: the certificate "changed": refused with a warning.
	changed := clienttest.New(t, client.Config{Addr: addr, Name: "changed", TLS: client.TLSOptions{Pin: "SHA256:" + strings.Repeat("ab", 32)}})
	st = changed.WaitState(t, client.Closed)
	if !errors.As(st.Err, &cerr) || cerr.Pinned == "" || !strings.Contains(st.Err.Error(), "changed") {
		t.Fatalf("changed certificate: %v", st.Err)
	}

	// The browser side is TLS too: https page and wss.
	web := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := web.Get("https://" + srv.HTTPAddr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https: %v %v", err, resp)
	}
	wss := clienttest.New(t, client.Config{Addr: "wss://" + srv.HTTPAddr + "/ws", Name: "wss", TLS: client.TLSOptions{Pin: fp}})
	wss.C.Join("general")
	wss.WaitJoined(t, "general")
	pinned.C.Send("general", "over TLS")
	wss.WaitText(t, "over TLS")
	viaCA.WaitText(t, "over TLS")
}

func TestPlainClientsOnTheTLSPortAreRefusedCleanly(t *testing.T) {
	srv, cert, _ := tlsServer(t)
	bystander := clienttest.New(t, client.Config{Addr: "tls://" + srv.Addr, Name: "bystander",
		TLS: client.TLSOptions{Pin: protocol.CertFingerprint(cert.Raw)}})
	bystander.C.Join("general")
	bystander.WaitJoined(t, "general")

	// The plain protocol: told in its own language to use TLS.
	plain := testserver.Dial(t, srv.Addr)
	plain.Send(&protocol.Hello{Version: protocol.Version, Client: "plain"})
	e := testserver.Expect[*protocol.Error](plain)
	if e.Code != protocol.CodeTLSRequired || !strings.Contains(e.Text, "tls://") || e.Reconnect() {
		t.Fatalf("plain client on the TLS port: %v", e)
	}
	plain.ExpectClosed()
	// The client library turns that into a terminal error.
	lib := clienttest.New(t, client.Config{Addr: srv.Addr, Name: "plainlib"})
	if st := lib.WaitState(t, client.Closed); st.Err == nil || !strings.Contains(st.Err.Error(), "needs TLS") {
		t.Fatalf("library on the TLS port: %v", st.Err)
	}
	// Plain HTTP on the HTTPS port gets a 400, not a hang.
	resp, err := http.Get("http://" + srv.HTTPAddr + "/")
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("http on the https port: %v %v", err, resp)
	}

	// Half a TLS handshake, then silence: dropped at the handshake deadline.
	half := testserver.Dial(t, srv.Addr)
	half.Write([]byte{0x16, 0x03, 0x01, 0x00, 0xf0, 0x01, 0x00})
	start := time.Now()
	_ = half.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := half.Conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("the half handshake got an answer")
	} else if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("half handshake held for %v", d)
	}

	// A client dribbling its TLS handshake a byte at a time is cut off too.
	slow := testserver.Dial(t, srv.Addr)
	hello := []byte{0x16, 0x03, 0x01, 0x00, 0x30}
	start = time.Now()
	for i := 0; i < 20; i++ {
		if _, err := slow.Conn.Write(hello[i%len(hello) : i%len(hello)+1]); err != nil {
			break
		}
		time.Sleep(250 * time.Millisecond) // the dribble is the behaviour under test
	}
	_ = slow.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := slow.Conn.Read(make([]byte, 1)); err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("the slow handshake: %v after %v", err, time.Since(start))
	}
	n := len(srv.LogRecords("tls handshake failed"))
	if n < 2 {
		t.Errorf("%d failed handshakes logged", n)
	}

	bystander.C.Send("general", "still fine")
	bystander.WaitText(t, "still fine")
}

func TestMalformedInputOverTLS(t *testing.T) {
	srv, cert, _ := tlsServer(t)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	runMalformed(t, srv, func(t *testing.T) *testserver.Raw {
		c, err := tls.Dial("tcp", srv.Addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		return testserver.Wrap(t, c)
	})
}

// TestCertificateReloadOnSIGHUP: new certificate files take effect
// without dropping anyone; broken files leave the old certificate.
func TestCertificateReloadOnSIGHUP(t *testing.T) {
	srv, oldCert, dir := tlsServer(t)
	oldFP := protocol.CertFingerprint(oldCert.Raw)
	alice := clienttest.New(t, client.Config{Addr: "tls://" + srv.Addr, Name: "alice", TLS: client.TLSOptions{Pin: oldFP}})
	alice.C.Join("general")
	alice.WaitJoined(t, "general")

	_, _, newCert := testserver.SelfSigned(t, dir) // overwrites cert.pem and key.pem
	newFP := protocol.CertFingerprint(newCert.Raw)
	srv.Signal(syscall.SIGHUP)
	srv.WaitLog("tls: certificate loaded", func(rec map[string]any) bool { return rec["fingerprint"] == newFP })

	presented := func() string {
		c, err := tls.Dial("tcp", srv.Addr, &tls.Config{InsecureSkipVerify: true}) // only to read the certificate
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return protocol.CertFingerprint(c.ConnectionState().PeerCertificates[0].Raw)
	}
	if got := presented(); got != newFP {
		t.Fatalf("after SIGHUP the server presents %s, want the new %s", got, newFP)
	}
	// Alice's connection, made with the old certificate, was not dropped.
	bob := clienttest.New(t, client.Config{Addr: "tls://" + srv.Addr, Name: "bob", TLS: client.TLSOptions{Pin: newFP}})
	bob.C.Join("general")
	bob.WaitJoined(t, "general")
	bob.C.Send("general", "new certificate here")
	alice.WaitText(t, "new certificate here")
	for _, ev := range alice.Events() {
		if sc, ok := ev.(client.StateChanged); ok && sc.State == client.Reconnecting {
			t.Fatal("the reload dropped alice's connection")
		}
	}

	// Broken files: the server keeps the certificate it has.
	if err := os.WriteFile(dir+"/cert.pem", []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Signal(syscall.SIGHUP)
	srv.WaitLog("SIGHUP: keeping the old certificate", nil)
	if got := presented(); got != newFP {
		t.Fatalf("after a failed reload the server presents %s", got)
	}
}

// TestIdleTLSConnectionsHoldNoGoroutine: an idle TLS connection costs no
// goroutine (its socket waits in the poller, as a plain one does), and a
// parked connection still gets what its client sends next. The count is
// the server's own, from its pprof listener.
func TestIdleTLSConnectionsHoldNoGoroutine(t *testing.T) {
	srv, cert, _ := tlsServer(t, "-pprof", "127.0.0.1:0")
	rec := srv.WaitLog("listening", func(rec map[string]any) bool { return rec["transport"] == "pprof" })
	pprofAddr, _ := rec["addr"].(string)
	goroutines := func() int {
		resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var n int
		if _, err := fmt.Fscanf(resp.Body, "goroutine profile: total %d", &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := goroutines()

	const idle = 40
	pin := client.TLSOptions{Pin: protocol.CertFingerprint(cert.Raw)}
	var members []*clienttest.Recorder
	for i := range idle {
		c := clienttest.New(t, client.Config{Addr: "tls://" + srv.Addr, Name: fmt.Sprint("idle", i), TLS: pin})
		c.C.Join("general")
		c.WaitJoined(t, "general")
		members = append(members, c)
	}
	// Joined and quiet: the readers park as soon as nothing is left to read.
	var held int
	for deadline := time.Now().Add(10 * time.Second); ; {
		if held = goroutines() - before; held < idle/2 || time.Now().After(deadline) {
			break
		}
		// Nothing signals "parked"; the count is polled, bounded above.
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d idle TLS connections hold %d goroutines (the server had %d before)", idle, held, before)
	if held >= idle/2 {
		t.Fatalf("%d idle TLS connections hold %d more goroutines: their readers do not park", idle, held)
	}

	// A parked connection wakes for its client's next frame.
	if _, err := members[7].C.Send("general", "from a parked TLS connection"); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		m.WaitText(t, "from a parked TLS connection")
	}
}
