//go:build js

package platform

import (
	"context"
	"errors"
	"fmt"
	"syscall/js"
)

// In the browser the server is the one that served the page: the field is
// hidden and the address is the page's own WebSocket endpoint.
const serverField = false

// defaultServer is ws://host/ws for a page loaded over http, wss://host/ws
// for https, so the connection is as secure as the page.
func defaultServer() string {
	loc := js.Global().Get("location")
	scheme := "ws://"
	if loc.Get("protocol").String() == "https:" {
		scheme = "wss://"
	}
	return scheme + loc.Get("host").String() + "/ws"
}

// fonts: a browser gives WASM no access to system fonts. The Go fonts are
// in the app; the others come from the server's /fonts/ when the text
// needs them. The files loaded and drawn are published as
// window.chatFonts, for the browser tests and for people wondering.
func fonts() *FontLoader {
	return NewFontLoader(FontOptions{
		Source: fetchSource{base: "fonts/"},
		Face:   "Go",
		Shown: func(files []string) {
			list := make([]any, len(files))
			for i, f := range files {
				list[i] = f
			}
			js.Global().Set("chatFonts", js.ValueOf(map[string]any{"shown": list}))
		},
	})
}

// fetchSource fetches fonts from the page's server with the browser's
// fetch: the browser's cache keeps them (the server marks versioned URLs
// immutable), and nothing of net/http is linked into the app.
type fetchSource struct{ base string }

func (s fetchSource) Fetch(ctx context.Context, name string) ([]byte, error) {
	url := s.base + name
	resp, err := await(ctx, js.Global().Call("fetch", url))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	if !resp.Get("ok").Bool() {
		return nil, fmt.Errorf("fetching %s: %d %s", url, resp.Get("status").Int(), resp.Get("statusText").String())
	}
	buf, err := await(ctx, resp.Call("arrayBuffer"))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	arr := js.Global().Get("Uint8Array").New(buf)
	data := make([]byte, arr.Get("length").Int())
	js.CopyBytesToGo(data, arr)
	return data, nil
}

// await waits for a JavaScript promise. The goroutine blocks; the
// browser's event loop, and the app, go on.
func await(ctx context.Context, promise js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	done := make(chan result, 1)
	onOK := js.FuncOf(func(_ js.Value, args []js.Value) any {
		done <- result{v: args[0]}
		return nil
	})
	onErr := js.FuncOf(func(_ js.Value, args []js.Value) any {
		msg := "failed"
		if len(args) > 0 {
			msg = args[0].Call("toString").String()
		}
		done <- result{err: errors.New(msg)}
		return nil
	})
	defer onOK.Release()
	defer onErr.Release()
	promise.Call("then", onOK, onErr)
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return js.Undefined(), ctx.Err()
	}
}

func settingsDir() (string, error) { return "", nil }
