package platform

import (
	"log/slog"
	"sync"
	"unicode/utf8"
)

// Notifier shows the system's notifications: D-Bus on Linux and the BSDs,
// the platform's own on Android, Windows and macOS (gioui.org/x/notify),
// the Web Notifications API in the browser. The app's loop is given one,
// so tests can put their own in its place and see what it shows.
type Notifier interface {
	// Notify shows a notification. It never blocks on the system: the
	// notification goes out in the background, and failures are logged.
	Notify(title, body string)
	// NeedsPermission reports whether notifications wait for the user's
	// permission, which RequestPermission asks for (the browser's, not
	// given nor refused yet). Elsewhere it is false.
	NeedsPermission() bool
	// RequestPermission asks the user for it; call it only in answer to
	// a user gesture (a click, a key), as browsers ignore other requests.
	// answered is called, on any goroutine, once the user has decided.
	RequestPermission(answered func())
}

// NewNotifier returns the platform's notifier; logger gets its failures
// (a desktop without a notification service, say).
func NewNotifier(logger *slog.Logger) Notifier {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return newNotifier(logger)
}

// notifyBacklog bounds the notifications waiting to go out; beyond it
// new ones are dropped rather than piling up behind a stuck service.
const notifyBacklog = 16

// maxBody bounds a notification's text: a long message is cut (the
// notification is a pointer to it, not its copy).
const maxBody = 240

// shorten cuts s to maxBody bytes at a character boundary, with an
// ellipsis.
func shorten(s string) string {
	if len(s) <= maxBody {
		return s
	}
	cut := maxBody
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// queued is a notification waiting for the background goroutine.
type queued struct{ title, body string }

// background runs show for each queued notification on its own
// goroutine, started at the first one, so that a slow or absent system
// service never holds up the caller.
type background struct {
	logger *slog.Logger
	show   func(title, body string) error
	start  sync.Once
	queue  chan queued
}

func newBackground(logger *slog.Logger, show func(title, body string) error) *background {
	return &background{logger: logger, show: show, queue: make(chan queued, notifyBacklog)}
}

func (b *background) Notify(title, body string) {
	b.start.Do(func() { go b.run() })
	select {
	case b.queue <- queued{title, shorten(body)}:
	default:
		b.logger.Warn("notification dropped: too many waiting", "title", title)
	}
}

func (b *background) run() {
	for n := range b.queue {
		if err := b.show(n.title, n.body); err != nil {
			b.logger.Warn("showing a notification", "err", err)
		}
	}
}

func (b *background) NeedsPermission() bool { return false }

func (b *background) RequestPermission(answered func()) { answered() }
