//go:build js

package client

import "github.com/coder/websocket"

// webSocketOptions is nil in the browser: the browser checks certificates
// itself (a page served over https connects with wss:// to its own origin).
func (o TLSOptions) webSocketOptions(string) *websocket.DialOptions { return nil }
