package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"time"

	"chat/protocol"
)

// TLSOptions say which server certificates to trust. The zero value trusts
// what the system trusts, for the name in the address.
type TLSOptions struct {
	// Pin, if set, is the fingerprint (protocol.CertFingerprint form,
	// "SHA256:…") the server's certificate must have. A pinned certificate
	// is trusted whoever signed it, which is how self-hosted servers with
	// self-signed certificates are trusted; any other certificate is
	// refused, even one the system would accept.
	Pin string
	// Pins are fingerprints per server address, keyed by the address as
	// configured (Config.Addr or an item of Config.Addrs): the nodes of a
	// service may each have a certificate of their own. An address
	// without an entry here uses Pin.
	Pins map[string]string
	// RootCAs replaces the system's certificate authorities (private CAs,
	// tests).
	RootCAs *x509.CertPool
	// ServerName is the name the certificate must carry; the host of the
	// address when empty.
	ServerName string
}

// CertificateError means the server's certificate is not trusted. The
// client stops: reconnecting cannot fix it, a person must decide.
type CertificateError struct {
	Addr        string // the server address as configured: the key of its pin in TLSOptions.Pins
	Host        string
	Fingerprint string // of the certificate the server presented
	Pinned      string // the pin it failed to match; empty when none was set
	Err         error  // why the system does not trust it (when no pin was set)
}

func (e *CertificateError) Error() string {
	if e.Pinned != "" {
		return fmt.Sprintf("the certificate of %s has changed: it is %s, but %s was trusted before. "+
			"If the server's operator confirms replacing it, trust the new fingerprint instead of the old one; "+
			"if not, someone may be intercepting the connection", e.Host, e.Fingerprint, e.Pinned)
	}
	return fmt.Sprintf("the certificate of %s is not trusted (%v). Its fingerprint is %s: "+
		"if the server's operator confirms it, trust (pin) that fingerprint", e.Host, e.Err, e.Fingerprint)
}

func (e *CertificateError) Unwrap() error { return e.Err }

// pin is the fingerprint pinned for addr, "" if none.
func (o TLSOptions) pin(addr string) string {
	if p, ok := o.Pins[addr]; ok {
		return p
	}
	return o.Pin
}

// config returns the TLS configuration for the server address addr,
// whose host is host.
func (o TLSOptions) config(addr, host string) *tls.Config {
	pin := o.pin(addr)
	name := o.ServerName
	if name == "" {
		name = host
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: name,
		// Verification is not skipped: VerifyConnection below does it,
		// because a pinned certificate must be accepted without a CA and
		// an unpinned one must be checked with the usual rules.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &CertificateError{Addr: addr, Host: host, Err: fmt.Errorf("no certificate")}
			}
			leaf := cs.PeerCertificates[0]
			fp := protocol.CertFingerprint(leaf.Raw)
			if pin != "" {
				if !strings.EqualFold(fp, strings.TrimSpace(pin)) {
					return &CertificateError{Addr: addr, Host: host, Fingerprint: fp, Pinned: pin}
				}
				return nil
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: o.RootCAs, Intermediates: inter, DNSName: name}); err != nil {
				return &CertificateError{Addr: addr, Host: host, Fingerprint: fp, Err: err}
			}
			return nil
		},
	}
}

// DialTLS connects over TLS to tls://host:port: to the IP address of
// TargetIP(ctx) if set, verifying the certificate for host either way.
func (o TLSOptions) DialTLS(ctx context.Context, addr string) (Conn, error) {
	hostport := strings.TrimPrefix(addr, "tls://")
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w (want tls://host:port)", addr, err)
	}
	d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 15 * time.Second}, Config: o.config(addr, host)}
	c, err := d.DialContext(ctx, "tcp", dialHostPort(ctx, hostport))
	if err != nil {
		return nil, err
	}
	return NewStreamConn(c), nil
}

// Dialer returns a Dialer that picks the transport by the address's form
// (host:port or tcp://, tls://, ws://, wss://) and trusts certificates as
// o says.
func (o TLSOptions) Dialer() Dialer {
	return func(ctx context.Context, addr string) (Conn, error) {
		switch {
		case strings.HasPrefix(addr, "tls://"):
			return o.DialTLS(ctx, addr)
		case strings.HasPrefix(addr, "ws://"), strings.HasPrefix(addr, "wss://"):
			return o.dialWebSocket(ctx, addr)
		}
		return DialTCP(ctx, addr)
	}
}
