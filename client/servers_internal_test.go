package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"chat/internal/testserver"
	"chat/protocol"
)

// TestRoundStartsAfterTheLostServer: after a connection to one of a
// name's addresses is lost, the next round tries the name's other
// addresses, then the other servers, and the lost one last.
func TestRoundStartsAfterTheLostServer(t *testing.T) {
	var tried []string
	cfg := Config{Addr: "a.test:1", Addrs: []string{"b.test:1", "10.0.0.9:1"}, HandshakeTimeout: time.Second,
		LookupHost: func(_ context.Context, host string) ([]string, error) {
			switch host {
			case "a.test":
				return []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, nil
			case "b.test":
				return []string{"10.0.1.1"}, nil
			}
			return nil, errors.New("unknown")
		},
		Dial: func(ctx context.Context, addr string) (Conn, error) {
			ip, _ := TargetIP(ctx)
			tried = append(tried, ip.String())
			return nil, errors.New("refused")
		}}
	lost := &target{addr: "a.test:1", ip: netip.MustParseAddr("10.0.0.2"), port: "1"}
	_, _, _, err := connect(context.Background(), cfg, lost)
	if want := "[10.0.0.3 10.0.1.1 10.0.0.9 10.0.0.1 10.0.0.2]"; fmt.Sprint(tried) != want {
		t.Errorf("tried %v, want %s", tried, want)
	}
	var re roundError
	if !errors.As(err, &re) || len(re) != 5 || !strings.Contains(err.Error(), "a.test:1 (10.0.0.3:1): refused") {
		t.Errorf("error %v, want the five failures, each with its server", err)
	}

	tried = nil
	if _, _, _, err := connect(context.Background(), cfg, nil); err == nil {
		t.Fatal("connected to nothing")
	}
	if want := "[10.0.0.1 10.0.0.2 10.0.0.3 10.0.1.1 10.0.0.9]"; fmt.Sprint(tried) != want {
		t.Errorf("without a lost server tried %v, want the configured order %s", tried, want)
	}
}

// TestTLSToAResolvedAddress: a tls:// address whose name resolves to
// several IP addresses is dialled by IP, but TLS still asks for (SNI)
// and verifies the name, and the pin of that address (TLSOptions.Pins)
// is the one that counts.
func TestTLSToAResolvedAddress(t *testing.T) {
	certFile, keyFile, cert := testserver.SelfSigned(t, t.TempDir())
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sni []string
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			mu.Lock()
			sni = append(sni, h.ServerName)
			mu.Unlock()
			return nil, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := protocol.ReadFrame(c, protocol.MaxFrame, nil); err == nil { // HELLO
					c.Write(protocol.Encode(&protocol.Welcome{Version: protocol.Version, MaxFrame: 16384, MaxText: 4096,
						MaxName: 32, MaxRoom: 64, MaxRooms: 16, PingMs: 30000}))
				}
				var b [1]byte
				c.Read(b[:]) // until the client closes
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	addr := "tls://localhost:" + port
	cfg := Config{Addr: addr, HandshakeTimeout: 5 * time.Second,
		TLS: TLSOptions{Pin: "SHA256:00", Pins: map[string]string{addr: protocol.CertFingerprint(cert.Raw)}},
		LookupHost: func(context.Context, string) ([]string, error) {
			return []string{"127.0.0.2", "127.0.0.1"}, nil // nothing listens on 127.0.0.2
		}}
	cfg.Dial = cfg.TLS.Dialer()
	conn, _, got, err := connect(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if got.addr != addr || got.remote() != "127.0.0.1:"+port {
		t.Errorf("connected to %v, want %s at 127.0.0.1:%s", got, addr, port)
	}
	mu.Lock()
	if fmt.Sprint(sni) != "[localhost]" {
		t.Errorf("server names asked for: %q, want localhost", sni)
	}
	mu.Unlock()

	// Another address of the same server, with no pin of its own: the
	// default Pin, which is wrong, refuses it, and says which address.
	other := "tls://127.0.0.1:" + port
	cfg.Addr, cfg.Addrs = other, nil
	_, _, _, err = connect(context.Background(), cfg, nil)
	var cerr *CertificateError
	if !errors.As(err, &cerr) || cerr.Addr != other || cerr.Pinned != "SHA256:00" {
		t.Errorf("error %v, want a certificate error for %s", err, other)
	}
}
