package browser_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"chat/client"
	"chat/internal/browsertest"
	"chat/internal/shottest"
	"chat/internal/testserver"
)

// colorBox is the box, in CSS pixels, of the screenshot's pixels near c
// within area (CSS pixels), the screenshot taken at scale pixels per CSS
// pixel.
func colorBox(img image.Image, c color.NRGBA, scale int, area image.Rectangle) image.Rectangle {
	r := shottest.ColorBox(img, c, image.Rectangle{Min: area.Min.Mul(scale), Max: area.Max.Mul(scale)})
	return image.Rect(r.Min.X/scale, r.Min.Y/scale, (r.Max.X+scale-1)/scale, (r.Max.Y+scale-1)/scale)
}

// TestBrowserSharesPictures is sharing pictures in headless Chromium,
// against the real server serving the web client built from this tree,
// bob on the client library: webuser clicks the attach button, and the
// page's file input (the one gioui.org/x/explorer makes on js/wasm) gets
// a PNG through Playwright's file chooser; bob gets it with its preview's
// size; bob's picture shows inline at the preview's size; a click shows
// it at full size (the page logs that it decoded the original at its
// own size), and its Save downloads the original. Screenshots:
// dist/screenshots/browser-files-*.png.
func TestBrowserSharesPictures(t *testing.T) {
	b := browsertest.Start(t)
	web := buildWeb(t)
	srv := testserver.Start(t, testserver.Options{Args: []string{"-web", web}})
	shots := browsertest.ScreenshotDir()
	shot := func(name string) string { return filepath.Join(shots, "browser-files-"+name+".png") }

	b.Do(fmt.Sprintf("viewport %d %d", pageW, pageH))
	b.Do("init " + jsString(actionsHooks))
	b.Do("goto http://" + srv.HTTPAddr + "/?debug") // the app logs the pictures it loads to the console
	b.WaitApp()
	b.Do("press Enter") // the form is filled in from last time
	b.WaitTitle("#general open", func(s string) bool { return s == "#general — Chat" })
	bob := startPeerBob(t, srv.Addr)
	b.Screenshot(shot("1-before"))

	orange := color.NRGBA{R: 250, G: 140, B: 20, A: 255}
	mine := filepath.Join(t.TempDir(), "sunset.png")
	if err := os.WriteFile(mine, shottest.FramedPNG(t, 800, 600, orange), 0o600); err != nil {
		t.Fatal(err)
	}
	// The attach button, left of the composer at the page's bottom.
	b.Do(fmt.Sprintf("choose %d %d %s", sidebarW+12+22, pageH-8-22, mine))
	var got client.Message
	deadline := time.After(60 * time.Second)
	for got.File == nil {
		select {
		case m := <-bob.msgs:
			got = m
		case <-deadline:
			t.Fatalf("bob got no file; see %s", shot("1-before"))
		}
	}
	if f := got.File; !f.IsImage() || f.Width != 800 || f.Height != 600 || f.ThumbWidth != 320 || f.ThumbHeight != 240 || f.Type != "image/png" {
		t.Fatalf("bob got %+v, want an 800x600 PNG with a 320x240 preview", f)
	}
	t.Logf("the page sent the file as %q (explorer on js/wasm does not pass the file's name on)", got.File.Name)
	pane := image.Rect(sidebarW+1, 0, pageW, pageH)
	waitScreen(t, b, shot("2-sent"), "webuser's picture inline at 320x240", func(img image.Image) bool {
		return shottest.SizeNear(colorBox(img, orange, 2, pane), 320-6, 240-6)
	})

	magenta := color.NRGBA{R: 220, G: 30, B: 200, A: 255}
	data := shottest.FramedPNG(t, 1200, 900, magenta)
	if _, err := bob.c.SendFile("general", client.Attachment{Name: "flowers.png", Size: int64(len(data)), Content: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	var inline image.Rectangle
	waitScreen(t, b, shot("3-received"), "bob's picture inline at 320x240", func(img image.Image) bool {
		inline = colorBox(img, magenta, 2, pane)
		return shottest.SizeNear(inline, 320-6, 240-6)
	})
	mid := inline.Min.Add(inline.Max).Div(2)
	b.Do(fmt.Sprintf("click %d %d", mid.X, mid.Y))
	// The original, not the preview scaled up: the page decoded the
	// file itself at its own size (a one-colour picture looks the same
	// either way on the screen).
	b.WaitConsole(regexp.MustCompile(fmt.Sprintf(`msg="picture loaded" .*file=%x full=true width=1200 height=900`, sha256.Sum256(data))), 30*time.Second)
	var save image.Rectangle
	waitScreen(t, b, shot("4-full-size"), "bob's picture at full size", func(img image.Image) bool {
		full := colorBox(img, magenta, 2, pane)
		save = colorBox(img, color.NRGBA{R: 0x3f, G: 0x51, B: 0xb5, A: 255}, 2, image.Rect(sidebarW+1, 0, pageW, 60))
		return 10*full.Dx() > 16*inline.Dx() && 10*full.Dy() > 16*inline.Dy() && save.Dx() > 30
	})
	saved := filepath.Join(t.TempDir(), "download")
	name := b.Do(fmt.Sprintf("download %d %d %s", save.Min.X+save.Dx()/2, save.Min.Y+save.Dy()/2, saved))
	if name != "flowers.png" {
		t.Errorf("the download is named %q, want flowers.png", name)
	}
	back, err := os.ReadFile(saved)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("downloaded %d bytes (err %v), want the %d bob sent", len(back), err, len(data))
	}
	b.Screenshot(shot("5-saved"))
}
