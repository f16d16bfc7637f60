// Package tlsconf gives the server's listeners their TLS configuration:
// from certificate files (re-read on demand, e.g. on SIGHUP, without
// dropping connections) or from an ACME CA such as Let's Encrypt.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"chat/protocol"
)

// Options say where certificates come from: files, or ACME. All empty
// means no TLS.
type Options struct {
	CertFile, KeyFile string
	ACMEDomains       []string
	ACMEEmail         string
	ACMEDirectory     string // default Let's Encrypt's production directory
	ACMECache         string // directory for account and certificates
	Logger            *slog.Logger
}

// Source provides certificates to TLS listeners.
type Source struct {
	opts Options
	cert atomic.Pointer[tls.Certificate] // file certificates
	acme *autocert.Manager
}

// New returns the source, nil when TLS is off, or an error for an
// incomplete or conflicting configuration or unreadable files.
func New(opts Options) (*Source, error) {
	files := opts.CertFile != "" || opts.KeyFile != ""
	switch {
	case !files && len(opts.ACMEDomains) == 0:
		return nil, nil
	case files && len(opts.ACMEDomains) > 0:
		return nil, errors.New("give either -tls-cert/-tls-key or -acme-domain, not both")
	case files && (opts.CertFile == "" || opts.KeyFile == ""):
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{opts: opts}
	if files {
		return s, s.Reload()
	}
	s.acme = &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(opts.ACMECache),
		HostPolicy: autocert.HostWhitelist(opts.ACMEDomains...),
		Email:      opts.ACMEEmail,
		Client:     &acme.Client{DirectoryURL: opts.ACMEDirectory},
	}
	if opts.ACMEDirectory == "" {
		s.acme.Client.DirectoryURL = acme.LetsEncryptURL
	}
	opts.Logger.Info("tls: certificates from ACME", "domains", strings.Join(opts.ACMEDomains, ","),
		"directory", s.acme.Client.DirectoryURL, "cache", opts.ACMECache)
	return s, nil
}

// Reload reads the certificate files again. On failure the certificate in
// use stays. It does nothing for ACME, which renews by itself.
func (s *Source) Reload() error {
	if s.acme != nil {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(s.opts.CertFile, s.opts.KeyFile)
	if err != nil {
		return fmt.Errorf("tls: loading %s and %s: %w", s.opts.CertFile, s.opts.KeyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("tls: %s: %w", s.opts.CertFile, err)
	}
	cert.Leaf = leaf
	s.cert.Store(&cert)
	s.opts.Logger.Info("tls: certificate loaded", "file", s.opts.CertFile, "subject", leaf.Subject.String(),
		"names", strings.Join(leaf.DNSNames, ","), "expires", leaf.NotAfter.UTC().Format("2006-01-02"),
		"fingerprint", protocol.CertFingerprint(leaf.Raw))
	return nil
}

// Config returns a server TLS configuration for protocols such as
// "http/1.1" (ALPN; nil for none).
func (s *Source) Config(protocols ...string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: protocols}
	if s.acme != nil {
		cfg.GetCertificate = s.acme.GetCertificate
		// tls-alpn-01: the CA checks the domain on the TLS port itself.
		cfg.NextProtos = append(cfg.NextProtos, acme.ALPNProto)
	} else {
		cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil }
	}
	return cfg
}

// HTTPHandler answers ACME http-01 challenges (for a listener on port 80)
// and redirects everything else to https.
func (s *Source) HTTPHandler() http.Handler {
	if s.acme == nil {
		return nil
	}
	return s.acme.HTTPHandler(nil)
}
