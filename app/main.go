// Command app is the chat app's window (desktop now; Android and the
// browser build on the same code):
//
//	go run ./app [-server HOST:PORT|tls://HOST:PORT] [-name NAME] [-room ROOM]
//
// It remembers the last server, name and room in the user's config
// directory, with the rooms joined on each server, the conversations whose
// notifications are off, the name key, the certificates the user chose to
// trust and the servers' access keys. A window at least 640 dp wide shows
// the conversation list beside the open conversation; a narrower one (a
// phone) shows them as two screens. The UI is in internal/ui, the network loop in
// internal/chatapp; this file only makes the window and runs its events.
package main

import (
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"runtime"

	"gioui.org/app"
	"gioui.org/op"
	"gioui.org/unit"
	"gioui.org/x/explorer"

	"chat/app/internal/chatapp"
	"chat/app/internal/platform"
	"chat/app/internal/settings"
	"chat/app/internal/ui"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	showVersion := flag.Bool("version", false, "print the version and exit")
	server := flag.String("server", "", "server `address`: host:port, or tls://host:port for TLS; several, comma-separated, for the nodes of a cluster (default: the last one used, else "+platform.DefaultServer()+")")
	name := flag.String("name", "", "your name, filled into the form (default: the last one used)")
	room := flag.String("room", "", "room, filled into the form (default: the last one used, else general)")
	debug := flag.Bool("debug", false, "log the client's connection events (and the first frame) to stderr")
	flag.Parse()
	if *showVersion {
		fmt.Printf("chat-app %s\n", version)
		return
	}

	store := settings.Open(configDir())
	saved, err := store.Load()
	if err != nil {
		// Keep the unreadable file: it may hold the name key, which the
		// app would otherwise overwrite with a new one.
		if to, aerr := store.SetAside(); aerr != nil {
			log.Printf("ignoring saved settings: %v (and cannot move them aside: %v)", err, aerr)
		} else {
			log.Printf("ignoring saved settings: %v (kept as %s)", err, to)
		}
	}
	cfg := ui.Config{
		Server:     first(*server, saved.Server, platform.DefaultServer()),
		Name:       first(*name, saved.Name),
		Room:       first(*room, saved.Room),
		Dark:       saved.Dark,
		ShowServer: platform.ServerField(),
	}
	if !platform.ServerField() {
		cfg.Server = platform.DefaultServer() // the page's own server, whatever was saved
	}
	fonts := platform.NewFonts()
	cfg.Shaper, cfg.Face = fonts.Shaper(), fonts.Face()
	logger := slog.New(slog.DiscardHandler)
	if *debug {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	skipUnreachableWayland()
	w := new(app.Window)
	w.Option(app.Title("Chat"), app.Size(unit.Dp(960), unit.Dp(680)), app.MinSize(unit.Dp(300), unit.Dp(360)))
	fonts.OnChange(w.Invalidate) // faces for another script arrived
	// The system's file dialogs, to attach and save files: the
	// xdg-desktop-portal on Linux, the page's file input in the browser,
	// the system picker on Android. It needs the window's events.
	expl := explorer.NewExplorer(w)
	opts := chatapp.Options{UI: cfg, Store: store, Saved: saved, Invalidate: w.Invalidate, Logger: logger,
		Notifier: platform.NewNotifier(logger), OpenURL: platform.OpenURL, Files: expl}
	if runtime.GOOS == "js" {
		// A hidden tab draws no frames, but its title shows the unread
		// count: the App keeps it current between frames. (Window.Option
		// may be called from any goroutine.)
		opts.TitleChanged = func(t string) { w.Option(app.Title(t)) }
	}
	a := chatapp.New(opts)
	// In the browser the page's own focus events say whether the person
	// is looking, not the window's ConfigEvent.
	pageFocus := platform.WatchFocus(a.Focus)
	go func() {
		err := run(w, a, expl, fonts, pageFocus, logger)
		a.Close()
		if err != nil {
			log.Fatal(err)
		}
		os.Exit(0)
	}()
	app.Main()
}

// run handles the window's events until it is closed.
func run(w *app.Window, a *chatapp.App, expl *explorer.Explorer, fonts *platform.FontLoader, pageFocus bool, logger *slog.Logger) error {
	var ops op.Ops
	title := "Chat"
	drawn := false
	for {
		ev := w.Event()
		expl.ListenEvents(ev) // the file dialogs need the window (its X11 id, Android's view)
		switch e := ev.(type) {
		case app.DestroyEvent:
			return e.Err
		case app.ConfigEvent:
			if !pageFocus {
				a.Focus(e.Config.Focused)
			}
		case app.FrameEvent:
			gtx := app.NewContext(&ops, e) // also removes the insets (soft keyboard, bars)
			a.SetShaper(fonts.Shaper())
			a.Layout(gtx)
			e.Frame(gtx.Ops)
			if !drawn {
				// Tests driving the window wait for this line (with -debug).
				drawn = true
				logger.Debug("first frame drawn", "width", e.Size.X, "height", e.Size.Y)
			}
			if t := a.Title(); t != title {
				title = t
				w.Option(app.Title(t))
			}
		}
	}
}

// configDir is where settings live on this platform, or "" (with a note
// on stderr) where they cannot be kept.
func configDir() string {
	dir, err := platform.SettingsDir()
	if err != nil {
		fmt.Fprintf(os.Stderr, "app: %v; settings will not be remembered\n", err)
	}
	return dir
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
