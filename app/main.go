// Command app is the chat app's window (desktop now; Android and the
// browser build on the same code):
//
//	go run ./app [-server HOST:PORT] [-name NAME] [-room ROOM]
//
// It remembers the last server, name and room in the user's config
// directory. The UI is in internal/ui, the network loop in
// internal/chatapp; this file only makes the window and runs its events.
package main

import (
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"gioui.org/app"
	"gioui.org/op"
	"gioui.org/unit"

	"chat/app/internal/chatapp"
	"chat/app/internal/platform"
	"chat/app/internal/settings"
	"chat/app/internal/ui"
)

func main() {
	server := flag.String("server", "", "server `host:port` (default: the last one used, else "+platform.DefaultServer()+")")
	name := flag.String("name", "", "your name, filled into the form (default: the last one used)")
	room := flag.String("room", "", "room, filled into the form (default: the last one used, else general)")
	debug := flag.Bool("debug", false, "log the client's connection events to stderr")
	flag.Parse()

	store := settings.Open(configDir())
	saved, err := store.Load()
	if err != nil {
		log.Printf("ignoring saved settings: %v", err)
	}
	cfg := ui.Config{
		Server:     first(*server, saved.Server, platform.DefaultServer()),
		Name:       first(*name, saved.Name),
		Room:       first(*room, saved.Room),
		Dark:       saved.Dark,
		ShowServer: platform.ServerField(),
	}
	cfg.Shaper, cfg.Face = platform.Fonts()
	logger := slog.New(slog.DiscardHandler)
	if *debug {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	w := new(app.Window)
	w.Option(app.Title("Chat"), app.Size(unit.Dp(420), unit.Dp(720)), app.MinSize(unit.Dp(300), unit.Dp(360)))
	a := chatapp.New(chatapp.Options{UI: cfg, Store: store, Saved: saved, Invalidate: w.Invalidate, Logger: logger})
	go func() {
		err := run(w, a)
		a.Close()
		if err != nil {
			log.Fatal(err)
		}
		os.Exit(0)
	}()
	app.Main()
}

// run handles the window's events until it is closed.
func run(w *app.Window, a *chatapp.App) error {
	var ops op.Ops
	for {
		switch e := w.Event().(type) {
		case app.DestroyEvent:
			return e.Err
		case app.ConfigEvent:
			a.Focus(e.Config.Focused)
		case app.FrameEvent:
			gtx := app.NewContext(&ops, e) // also removes the insets (soft keyboard, bars)
			a.Layout(gtx)
			e.Frame(gtx.Ops)
		}
	}
}

// configDir is where settings live: Gio's DataDir (the user config dir on
// desktops, the app's files on Android), or nowhere if there is none.
func configDir() string {
	dir, err := app.DataDir()
	if err != nil {
		fmt.Fprintf(os.Stderr, "app: no config directory (%v); settings will not be remembered\n", err)
		return ""
	}
	return filepath.Join(dir, "chat")
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
