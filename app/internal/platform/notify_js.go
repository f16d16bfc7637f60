//go:build js

package platform

import (
	"log/slog"
	"syscall/js"
)

// webNotifier uses the page's Web Notifications API. The permission is
// asked for only through RequestPermission, which the app calls in answer
// to a click or a key: browsers refuse (or hold against the site) a
// request made when the page loads.
type webNotifier struct {
	logger *slog.Logger
}

func newNotifier(logger *slog.Logger) Notifier { return &webNotifier{logger: logger} }

// api is the Notification constructor, undefined where the browser has
// none (an insecure page, some mobile browsers).
func (w *webNotifier) api() (js.Value, bool) {
	n := js.Global().Get("Notification")
	return n, n.Truthy()
}

func (w *webNotifier) permission() string {
	n, ok := w.api()
	if !ok {
		return "denied"
	}
	return n.Get("permission").String()
}

func (w *webNotifier) Notify(title, body string) {
	n, ok := w.api()
	if !ok || w.permission() != "granted" {
		return
	}
	defer func() {
		// Some browsers (Chrome on Android) throw on the constructor and
		// want a service worker instead.
		if r := recover(); r != nil {
			w.logger.Warn("showing a notification", "err", r)
		}
	}()
	opts := js.Global().Get("Object").New()
	opts.Set("body", shorten(body))
	opts.Set("tag", title) // a newer one from the same conversation replaces the old
	n.New(title, opts)
}

func (w *webNotifier) NeedsPermission() bool {
	_, ok := w.api()
	return ok && w.permission() == "default"
}

func (w *webNotifier) RequestPermission(answered func()) {
	n, ok := w.api()
	if !ok || w.permission() != "default" {
		answered()
		return
	}
	var done js.Func
	done = js.FuncOf(func(js.Value, []js.Value) any {
		done.Release()
		go answered() // not on the browser's callback: answered may block
		return nil
	})
	p := n.Call("requestPermission")
	if p.Truthy() && p.Get("then").Truthy() {
		p.Call("then", done, done)
		return
	}
	done.Release()
	answered() // an old browser that answers through a callback only
}
