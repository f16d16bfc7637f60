//go:build !js

package client

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/coder/websocket"
)

// webSocketOptions applies the TLS options to wss:// connections, and
// connects to ip (when valid) instead of the URL's host, keeping the
// host for the Host header and TLS.
func (o TLSOptions) webSocketOptions(addr string, ip netip.Addr) *websocket.DialOptions {
	u, err := url.Parse(addr)
	if err != nil || u.Scheme != "wss" && !ip.IsValid() {
		return nil
	}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment}
	if u.Scheme == "wss" {
		tr.TLSClientConfig = o.config(addr, u.Hostname())
	}
	if ip.IsValid() {
		host, port, _ := hostPort(addr)
		want := net.JoinHostPort(host, port)
		d := &net.Dialer{KeepAlive: 15 * time.Second}
		tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
			if a == want { // not a proxy's address: that is dialled as it is
				a = net.JoinHostPort(ip.String(), port)
			}
			return d.DialContext(ctx, network, a)
		}
	}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}}
}

// resolvesItself reports whether a WebSocket URL is reached through a
// proxy, which resolves the host itself: the client then does not.
func resolvesItself(u *url.URL) bool {
	pu := *u
	pu.Scheme = "http"
	if u.Scheme == "wss" {
		pu.Scheme = "https"
	}
	p, err := http.ProxyFromEnvironment(&http.Request{URL: &pu})
	return err != nil || p != nil
}
