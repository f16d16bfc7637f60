// Package chatapp joins the user interface to the network: an App owns a
// ui.UI and a loop goroutine that owns the *client.Client. Each frame the
// App applies what the loop reported, lays out the UI and hands the
// user's intents to the loop. Nothing here needs a window, so tests run
// the whole app logic against a real server with an input.Router.
package chatapp

import (
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"gioui.org/layout"
	"gioui.org/text"

	"chat/app/internal/platform"
	"chat/app/internal/settings"
	"chat/app/internal/ui"
	"chat/client"
)

// Options configure an App.
type Options struct {
	UI ui.Config // fonts and what the form starts with
	// Store remembers the last join, the name key, the servers' trusted
	// certificates and access keys, and the theme. Saved is what it held
	// at start (the caller has already used it to fill UI's form; New
	// fills in the name key and the access keys).
	Store *settings.Store
	Saved settings.Settings
	// Software names the app in the server's logs.
	Software string
	// Tune adjusts each client's configuration (tests shorten backoffs).
	Tune func(*client.Config)
	// Invalidate asks the window for a new frame; it must be safe to call
	// from any goroutine (app.Window.Invalidate is).
	Invalidate func()
	// Notifier shows the notifications of direct messages and mentions
	// that arrive while the window is not focused (none if nil).
	Notifier platform.Notifier
	// OpenURL opens a link of a message in the system's browser
	// (platform.OpenURL; links open nowhere if nil).
	OpenURL func(url string) error
	// TitleChanged, if set, keeps the window's title current without
	// frames: after each event of the loop, the App applies what is
	// pending to the UI and calls it, on the loop's goroutine, with the
	// UI's new Title when that changed. A browser tab that is hidden
	// draws no frames (requestAnimationFrame pauses) but shows its title.
	TitleChanged func(title string)
	Logger       *slog.Logger
	// Files are the system's file dialogs, to attach and save files
	// (nil: files can be neither attached nor saved).
	Files FilePicker
	// FetchStall is how long a picture's fetch may go without a part
	// arriving before it is given up (and asked again on the next
	// connection); 0 means 30 s. A slow link that keeps sending parts is
	// waited for however long the picture takes.
	FetchStall time.Duration
}

// update is one event for the UI, tagged with its join session.
type update struct {
	session uint64
	ev      any
}

// App is the chat app without its window.
type App struct {
	ui         *ui.UI
	updates    *mailbox[update]
	loop       *loop
	done       chan struct{}
	invalidate func()
	// focused is whether the window has the focus, as Focus last said;
	// focusMu orders Focus calls from several goroutines.
	focusMu sync.Mutex
	focused atomic.Bool
	closed  sync.Once
	// mu guards ui when TitleChanged applies updates outside frames;
	// title is the title TitleChanged last had.
	mu    sync.Mutex
	title string
}

// New starts the app's loop; call Close to stop it.
func New(opts Options) *App {
	if opts.Store == nil {
		opts.Store = settings.Open("")
	}
	if opts.Invalidate == nil {
		opts.Invalidate = func() {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Notifier == nil {
		opts.Notifier = noNotifier{}
	}
	if opts.Software == "" {
		opts.Software = "chat-app"
	}
	if opts.Saved.Secret == "" {
		// The name key is made and kept before anything shows it: a key
		// copied to another device must be the one this device keeps.
		opts.Saved.Secret = client.NewSecret()
		if err := opts.Store.Save(opts.Saved); err != nil {
			opts.Logger.Warn("saving the new name key", "err", err)
		}
	}
	// The loop owns its copy of the settings; the caller's maps stay its own.
	opts.Saved.Pins, opts.Saved.Keys = maps.Clone(opts.Saved.Pins), maps.Clone(opts.Saved.Keys)
	opts.UI.NameKey = opts.Saved.Secret
	opts.UI.Keys = opts.Saved.Keys
	a := &App{
		ui:         ui.New(opts.UI),
		updates:    newMailbox[update](),
		done:       make(chan struct{}),
		invalidate: opts.Invalidate,
	}
	a.focused.Store(true)
	a.title = a.ui.Title()
	a.loop = newLoop(opts, func(session uint64, ev any) {
		a.updates.put(update{session, ev})
		opts.Invalidate()
		if opts.TitleChanged != nil {
			a.mu.Lock()
			a.apply()
			t := a.ui.Title()
			changed := t != a.title
			a.title = t
			a.mu.Unlock()
			if changed {
				opts.TitleChanged(t)
			}
		}
	})
	go func() {
		defer close(a.done)
		a.loop.run()
	}()
	return a
}

// UI returns the app's interface, for the window goroutine only, and not
// with Options.TitleChanged set (use Title and SetShaper then).
func (a *App) UI() *ui.UI { return a.ui }

// Title is the UI's title (see ui.UI.Title).
func (a *App) Title() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ui.Title()
}

// SetShaper sets the UI's text shaper (see ui.UI.SetShaper).
func (a *App) SetShaper(s *text.Shaper) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ui.SetShaper(s)
}

// apply gives the UI what the loop reported; a.mu is held.
func (a *App) apply() {
	a.ui.SetFocused(a.focused.Load()) // what comes while not focused stays unread
	for _, u := range a.updates.take() {
		a.ui.Apply(u.session, u.ev)
	}
}

// Layout applies what the loop reported, draws a frame and passes the
// user's intents to the loop. Call it on each app.FrameEvent.
func (a *App) Layout(gtx layout.Context) layout.Dimensions {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.apply()
	for _, in := range a.ui.Layout(gtx) {
		a.loop.inbox.put(in)
	}
	return layout.Dimensions{Size: gtx.Constraints.Max}
}

// Focus tells the app whether its window has the focus (from
// app.ConfigEvent, or platform.WatchFocus); it may be called from any
// goroutine. Regaining it checks the connection at once: after a
// laptop's sleep or an Android pause the old connection is often dead
// while the backoff timer would wait long. It also marks what the open
// conversation shows as read (in the next frame, asked for here), and
// notifications show only while the window does not have it.
func (a *App) Focus(focused bool) {
	a.focusMu.Lock()
	defer a.focusMu.Unlock()
	if a.focused.Swap(focused) == focused {
		return
	}
	if focused {
		a.loop.inbox.put(nudge{})
	}
	a.loop.inbox.put(focus{focused})
	a.invalidate() // the UI takes it at the start of the next frame
}

// noNotifier shows nothing.
type noNotifier struct{}

func (noNotifier) Notify(title, body string)         {}
func (noNotifier) NeedsPermission() bool             { return false }
func (noNotifier) RequestPermission(answered func()) { answered() }

// Close gives unacknowledged messages a moment to go out, disconnects and
// stops the loop. It returns when everything has stopped.
func (a *App) Close() {
	a.closed.Do(func() { a.loop.inbox.put(shutdown{}) })
	<-a.done
}
