package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
)

// pebble is Let's Encrypt's test CA, run from the pinned Go module on
// loopback with domain validation switched off.
type pebble struct {
	dir    string // its ACME directory URL
	roots  *x509.CertPool
	caFile string // the certificate of pebble's own HTTPS listener
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startPebble(t *testing.T) *pebble {
	t.Helper()
	work := t.TempDir()
	bin := filepath.Join(work, "pebble")
	build := exec.Command("go", "build", "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building pebble: %v\n%s", err, out)
	}
	certFile, keyFile, _ := testserver.SelfSigned(t, work)
	listen, mgmt := freePort(t), freePort(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": certFile, "privateKey": keyFile,
		"httpPort": 5002, "tlsPort": 5001, "keyAlgorithm": "ecdsa",
		"profiles": map[string]any{"default": map[string]any{"description": "test", "validityPeriod": 7776000}},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(work, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgFile)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble log:\n%s", log.String())
		}
	})

	own := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(certFile)
	own.AppendCertsFromPEM(pemBytes)
	web := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: own}}, Timeout: 5 * time.Second}
	var rootPEM []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The root pebble signs with, from its management interface.
		resp, err := web.Get("https://" + mgmt + "/roots/0")
		if err == nil && resp.StatusCode == 200 {
			rootPEM, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not start: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond) // pebble, another process, says nothing when it is up: poll
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's root: %q", rootPEM)
	}
	return &pebble{dir: "https://" + listen + "/dir", roots: roots, caFile: certFile}
}

// TestACMECertificatesFromPebble runs the server with -acme-domain against
// a real ACME CA: the first TLS connection makes the server register,
// order and install a certificate; clients verify it against the CA's
// root; after a restart the certificate comes from the cache in the data
// directory instead of a new order.
func TestACMECertificatesFromPebble(t *testing.T) {
	ca := startPebble(t)
	srv := testserver.Start(t, testserver.Options{
		Args: []string{"-acme-domain", "chat.test", "-acme-email", "ops@chat.test", "-acme-directory", ca.dir},
		Env:  []string{"SSL_CERT_FILE=" + ca.caFile}, // so the server trusts pebble's HTTPS API
	})
	trust := client.TLSOptions{RootCAs: ca.roots, ServerName: "chat.test"}

	alice := clienttest.New(t, client.Config{Addr: "tls://" + srv.Addr, Name: "alice", TLS: trust,
		HandshakeTimeout: 30 * time.Second})
	alice.C.Join("general")
	alice.WaitJoined(t, "general")

	presented := func() *x509.Certificate {
		c, err := tls.Dial("tcp", srv.Addr, &tls.Config{RootCAs: ca.roots, ServerName: "chat.test"})
		if err != nil {
			t.Fatalf("verifying the served certificate against pebble's root: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0]
	}
	first := presented()
	if !strings.Contains(strings.Join(first.DNSNames, ","), "chat.test") || !strings.Contains(first.Issuer.CommonName, "Pebble") {
		t.Fatalf("certificate for %v issued by %q", first.DNSNames, first.Issuer.CommonName)
	}
	// The browser side has it too.
	web := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.roots, ServerName: "chat.test"}}}
	if resp, err := web.Get("https://" + srv.HTTPAddr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("https with the ACME certificate: %v %v", err, resp)
	}
	// Kept in the data directory, and used again after a restart.
	entries, err := os.ReadDir(filepath.Join(srv.Data, "acme"))
	if err != nil || len(entries) < 2 {
		t.Fatalf("ACME cache: %v %v", entries, err)
	}
	srv.Restart()
	if again := presented(); again.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("after a restart the server got a new certificate (serial %v, was %v) instead of its cached one",
			again.SerialNumber, first.SerialNumber)
	}
	alice.WaitState(t, client.Reconnecting)
	alice.Wait(t, "back after the restart", func(ev client.Event) bool { j, ok := ev.(client.Joined); return ok && j.Resumed })
}
