//go:build js

package client

import (
	"net/netip"
	"net/url"

	"github.com/coder/websocket"
)

// webSocketOptions is nil in the browser: the browser checks certificates
// itself (a page served over https connects with wss:// to its own origin).
func (o TLSOptions) webSocketOptions(string, netip.Addr) *websocket.DialOptions { return nil }

// resolvesItself is true in the browser, which resolves host names and
// chooses among their addresses itself: a page cannot pick an IP.
func resolvesItself(*url.URL) bool { return true }
