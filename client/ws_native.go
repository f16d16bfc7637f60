//go:build !js

package client

import (
	"net/http"
	"net/url"

	"github.com/coder/websocket"
)

// webSocketOptions applies the TLS options to wss:// connections.
func (o TLSOptions) webSocketOptions(rawURL string) *websocket.DialOptions {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "wss" {
		return nil
	}
	return &websocket.DialOptions{HTTPClient: &http.Client{
		Transport: &http.Transport{TLSClientConfig: o.config(u.Hostname()), Proxy: http.ProxyFromEnvironment},
	}}
}
