//go:build !js

package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"chat/app/internal/settings"
	"chat/client"
	"chat/internal/shottest"
	"chat/internal/testserver"
	"chat/internal/xvfbtest"
)

// filePortal is the file chooser of xdg-desktop-portal
// (org.freedesktop.portal.FileChooser), served on the test's private
// session bus: gioui.org/x/explorer, which the app's Attach and Save
// use on Linux, asks it over D-Bus exactly as it asks a desktop's portal,
// which would show a dialog for a person to pick a file in. This one
// answers with the file the test queued (OpenFile), or a path in the
// test's directory (SaveFile), the way a portal answers when the person
// has chosen: a Response signal on the request's object.
type filePortal struct {
	conn *dbus.Conn
	mu   sync.Mutex
	open []string // files to answer OpenFile with, in turn
	save string   // directory SaveFile answers into
	// asked gets the title of each dialog the app opened.
	asked chan string
}

func startFilePortal(t *testing.T) (addr string, p *filePortal) {
	t.Helper()
	addr, conn := startSessionBus(t)
	p = &filePortal{conn: conn, save: t.TempDir(), asked: make(chan string, 8)}
	const path, iface = "/org/freedesktop/portal/desktop", "org.freedesktop.portal.FileChooser"
	if err := conn.Export(p, path, iface); err != nil {
		t.Fatal(err)
	}
	takeName(t, conn, "org.freedesktop.portal.Desktop")
	return addr, p
}

// request is the object path of a portal request: the caller's unique
// name without its colon, dots as underscores, and its handle_token.
func request(sender dbus.Sender, options map[string]dbus.Variant) dbus.ObjectPath {
	token, _ := options["handle_token"].Value().(string)
	name := strings.ReplaceAll(strings.TrimPrefix(string(sender), ":"), ".", "_")
	return dbus.ObjectPath("/org/freedesktop/portal/desktop/request/" + name + "/" + token)
}

// respond answers the request handle with uris (none: the person
// cancelled), after the method's reply: the caller subscribed to the
// handle before calling.
func (p *filePortal) respond(handle dbus.ObjectPath, uris []string) {
	go func() {
		code, results := uint32(0), map[string]dbus.Variant{"uris": dbus.MakeVariant(uris)}
		if len(uris) == 0 {
			code, results = 1, map[string]dbus.Variant{}
		}
		_ = p.conn.Emit(handle, "org.freedesktop.portal.Request.Response", code, results)
	}()
}

func (p *filePortal) OpenFile(sender dbus.Sender, parent, title string, options map[string]dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
	handle := request(sender, options)
	p.mu.Lock()
	var uris []string
	if len(p.open) > 0 {
		uris = []string{(&url.URL{Scheme: "file", Path: p.open[0]}).String()}
		p.open = p.open[1:]
	}
	p.mu.Unlock()
	p.asked <- title
	p.respond(handle, uris)
	return handle, nil
}

func (p *filePortal) SaveFile(sender dbus.Sender, parent, title string, options map[string]dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
	handle := request(sender, options)
	name, _ := options["current_name"].Value().(string)
	if name == "" {
		name = "saved"
	}
	p.asked <- title
	p.respond(handle, []string{(&url.URL{Scheme: "file", Path: filepath.Join(p.save, filepath.Base(name))}).String()})
	return handle, nil
}

func (p *filePortal) queue(path string) {
	p.mu.Lock()
	p.open = append(p.open, path)
	p.mu.Unlock()
}

// TestDesktopSharesPictures is sharing pictures as a person does it in
// the real window, against the real server, bob on the client library:
// alice clicks the attach button (xdotool), the file dialog (the desktop
// portal explorer asks over D-Bus, see filePortal) gives her PNG, the
// upload goes and bob gets the picture with its preview's size; bob's
// picture shows inline in her window at the preview's size; a click on
// it shows it at full size, and Save there writes the original through
// the portal's save dialog. Screenshots: dist/screenshots/xvfb-files-*.png.
func TestDesktopSharesPictures(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	display := xvfbtest.StartSize(t, 1100, 800)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	busAddr, portal := startFilePortal(t)
	config := t.TempDir()
	store := settings.Open(filepath.Join(config, "chat"))
	if err := store.Save(settings.Settings{Server: srv.Addr, Name: "alice", Room: "general"}); err != nil {
		t.Fatal(err)
	}
	app := startDesktopApp(t, ctx, display, config, "DBUS_SESSION_BUS_ADDRESS="+busAddr)
	app.x("key", "Return") // the form is filled in from last time
	app.waitTitle(`^#general .* Chat$`)
	bob := startBob(t, srv.Addr)

	// Alice attaches an orange picture with the attach button, left of
	// the composer at the window's bottom.
	orange := color.NRGBA{R: 250, G: 140, B: 20, A: 255}
	mine := filepath.Join(t.TempDir(), "sunset.png")
	if err := os.WriteFile(mine, shottest.FramedPNG(t, 800, 600, orange), 0o600); err != nil {
		t.Fatal(err)
	}
	portal.queue(mine)
	app.shoot("xvfb-files-1-before.png")
	since := len(app.out.String())
	const windowHeight = 680 // the app's default size, 960×680 dp, one px per dp under Xvfb
	app.click(sideWidth+12+22, windowHeight-8-22)
	select {
	case title := <-portal.asked:
		t.Logf("the app opened the file dialog %q", title)
	case <-time.After(30 * time.Second):
		t.Fatal("the attach button opened no file dialog")
	}
	app.waitOutput(since, regexp.MustCompile(`msg="file queued" .*name=sunset.png`))
	m := bob.file(t, "sunset.png")
	if f := m.File; !f.IsImage() || f.Width != 800 || f.Height != 600 || f.ThumbWidth != 320 || f.ThumbHeight != 240 {
		t.Fatalf("bob got %+v, want an 800x600 picture with a 320x240 preview", f)
	}
	app.waitScreen("xvfb-files-2-sent.png", "alice's own picture inline at 320x240", func(img image.Image) bool {
		return shottest.SizeNear(shottest.ColorBox(img, orange, image.Rectangle{}), 320-6, 240-6)
	})

	// Bob sends a magenta one: it shows inline in alice's window.
	magenta := color.NRGBA{R: 220, G: 30, B: 200, A: 255}
	data := shottest.FramedPNG(t, 1200, 900, magenta)
	if _, err := bob.c.SendFile("general", client.Attachment{Name: "flowers.png", Size: int64(len(data)), Content: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	var inline image.Rectangle
	app.waitScreen("xvfb-files-3-received.png", "bob's picture inline at 320x240", func(img image.Image) bool {
		inline = shottest.ColorBox(img, magenta, image.Rectangle{})
		return shottest.SizeNear(inline, 320-6, 240-6)
	})

	// A click shows it at full size.
	mid := inline.Min.Add(inline.Max).Div(2)
	since = len(app.out.String())
	app.click(mid.X, mid.Y)
	// The original, not the preview scaled up, is what shows: wait for
	// the app to say it decoded it before looking.
	app.waitOutput(since, regexp.MustCompile(`msg="picture loaded" .*full=true width=1200 height=900`))
	app.waitScreen("xvfb-files-4-full-size.png", "bob's picture at full size", func(img image.Image) bool {
		full := shottest.ColorBox(img, magenta, image.Rectangle{})
		return 10*full.Dx() > 16*inline.Dx() && 10*full.Dy() > 16*inline.Dy()
	})

	// Save, the button in the full-size view's bar (the theme's primary
	// color: white on blue is more than Tesseract reads), writes the
	// original where the save dialog says.
	img := app.shoot("xvfb-files-4-full-size.png")
	primary := color.NRGBA{R: 0x3f, G: 0x51, B: 0xb5, A: 255} // material.NewTheme's ContrastBg
	btn := shottest.ColorBox(img, primary, image.Rect(sideWidth, 0, 1100, 60))
	if btn.Dx() < 30 || btn.Dy() < 20 {
		t.Fatalf("no Save button in the full-size view's bar (found %v); see xvfb-files-4-full-size.png", btn)
	}
	since = len(app.out.String())
	app.click(btn.Min.X+btn.Dx()/2, btn.Min.Y+btn.Dy()/2)
	app.waitOutput(since, regexp.MustCompile(`msg="file saved" .*name=flowers.png`))
	saved, err := os.ReadFile(filepath.Join(portal.save, "flowers.png"))
	if err != nil || !bytes.Equal(saved, data) {
		t.Fatalf("saved %d bytes (err %v), want the %d bob sent", len(saved), err, len(data))
	}
	app.waitWord("xvfb-files-5-saved.png", "saved")
}

// file waits for bob's message carrying the file named name.
func (b *bobPeer) file(t *testing.T, name string) client.Message {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case m := <-b.msgs:
			if m.File != nil && m.File.Name == name {
				return m
			}
		case <-deadline:
			t.Fatalf("bob did not get the file %s", name)
		}
	}
}
