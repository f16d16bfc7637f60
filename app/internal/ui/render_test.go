package ui_test

import (
	"errors"
	"flag"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"gioui.org/f32"
	"gioui.org/gpu/headless"
	"gioui.org/io/key"

	"chat/app/internal/ui"
	"chat/client"
)

var updateDocs = flag.Bool("update-docs", false, "write the README screenshot docs/chat.png from the headless renderer")

// repoRoot is the repository's root, found from this file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// render draws the scene's current frame with the GPU renderer (Mesa's
// software rasterizer here) and returns the pixels. No X server is
// needed: EGL runs surfaceless.
func render(t *testing.T, s *scene) *image.RGBA {
	t.Helper()
	return newRenderer(t, s.Size).render(t, s)
}

// renderer is a headless window for several scenes of one size: making
// the window (EGL, shaders) costs more than drawing a frame.
type renderer struct {
	w    *headless.Window
	size image.Point
}

func newRenderer(t *testing.T, size image.Point) *renderer {
	t.Helper()
	t.Setenv("EGL_PLATFORM", "surfaceless")
	w, err := headless.NewWindow(size.X, size.Y)
	if err != nil {
		t.Fatalf("headless window (Mesa EGL needed: apt-get install libegl-mesa0 libgl1-mesa-dri): %v", err)
	}
	t.Cleanup(w.Release)
	return &renderer{w: w, size: size}
}

func (r *renderer) render(t *testing.T, s *scene) *image.RGBA {
	t.Helper()
	if s.Size != r.size {
		t.Fatalf("a scene of %v in a renderer of %v", s.Size, r.size)
	}
	s.Frame() // s.Ops now holds a complete frame
	if err := r.w.Frame(&s.Ops); err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rectangle{Max: s.Size})
	if err := r.w.Screenshot(img); err != nil {
		t.Fatal(err)
	}
	return img
}

// save writes img as a PNG under dist/screenshots for people to look at.
func save(t *testing.T, img image.Image, name string) string {
	t.Helper()
	dir := filepath.Join(repoRoot(), "dist", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	writePNG(t, img, path)
	return path
}

func writePNG(t *testing.T, img image.Image, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// tolerance is how far a pixel may be from a color, per channel, and
// still count as that color: enough for antialiasing at glyph cores, too
// little to confuse the themes' colors.
const tolerance = 20

func near(a, b color.RGBA, tol int) bool {
	d := func(x, y uint8) int { return max(int(x)-int(y), int(y)-int(x)) }
	return d(a.R, b.R) <= tol && d(a.G, b.G) <= tol && d(a.B, b.B) <= tol
}

func rgba(c color.NRGBA) color.RGBA { return color.RGBA{c.R, c.G, c.B, 0xff} }

// inkIn counts the pixels of r (clipped to img) that have about color c.
func inkIn(img *image.RGBA, r image.Rectangle, c color.NRGBA) int {
	n := 0
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if near(img.RGBAAt(x, y), rgba(c), tolerance) {
				n++
			}
		}
	}
	return n
}

// checkText fails unless the text s is drawn in color c: its label is in
// the frame and there are glyph pixels of that color where it is. A
// label's bounds reach as far down as its constraints, so only its first
// line is searched; in a button, the button's area is.
func checkText(t *testing.T, s *scene, img *image.RGBA, text string, c, bg color.NRGBA) {
	t.Helper()
	if near(rgba(c), rgba(bg), 3*tolerance) {
		t.Fatalf("checking for %q in a color too close to its background proves nothing", text)
	}
	n, ok := s.Find(text)
	if !ok {
		t.Fatalf("%q is not in the frame; it shows %q", text, s.Texts())
	}
	box := n.Bounds
	box.Max.Y = box.Min.Y + int(18*s.Metric.PxPerSp)
	if n.Clickable {
		box = n.Target
	}
	if ink := inkIn(img, box, c); ink < 10 {
		t.Errorf("no glyphs of %q drawn in %v (%d pixels of its color)", text, box, ink)
	}
}

// checkNotBlank fails if almost every pixel is the background.
func checkNotBlank(t *testing.T, img *image.RGBA, bg color.NRGBA) {
	t.Helper()
	b := img.Bounds()
	other := b.Dx()*b.Dy() - inkIn(img, b, bg)
	if other < b.Dx()*b.Dy()/50 {
		t.Fatalf("the frame is nearly blank: %d of %d pixels differ from the background", other, b.Dx()*b.Dy())
	}
	if c := img.RGBAAt(b.Dx()/2, b.Dy()-2); c.A != 0xff {
		t.Fatalf("a transparent pixel at the bottom: %v", c)
	}
}

func TestRenderScreens(t *testing.T) {
	for _, dark := range []bool{false, true} {
		name := map[bool]string{false: "light", true: "dark"}[dark]
		t.Run(name, func(t *testing.T) {
			s := newScene(t, dark, image.Pt(420, 640), 1.5)
			th := s.u.Theme()
			if th.Dark != dark {
				t.Fatalf("theme dark = %v", th.Dark)
			}

			img := render(t, s)
			t.Logf("wrote %s", save(t, img, "headless-join-"+name+".png"))
			checkNotBlank(t, img, th.Bg)
			checkText(t, s, img, "Chat", th.Fg, th.Bg)
			checkText(t, s, img, "Server", th.Muted, th.Bg)
			checkText(t, s, img, "Join", th.ContrastFg, th.ContrastBg)

			s.join(t)
			s.conversation()
			img = render(t, s)
			t.Logf("wrote %s", save(t, img, "headless-chat-"+name+".png"))
			checkNotBlank(t, img, th.Bg)
			checkText(t, s, img, "#general", th.Fg, th.Surface)
			checkText(t, s, img, "Is there a dark theme?", th.Fg, th.Surface)
			checkText(t, s, img, "Yes: the button next to Leave.", th.Muted, th.Own) // pending: muted
			checkText(t, s, img, "sending…", th.Muted, th.Own)
			checkText(t, s, img, "ken joined · 09:58", th.Muted, th.Bg)
			// The own bubbles are drawn in their own color.
			if n := inkIn(img, img.Bounds(), th.Own); n < 1000 {
				t.Errorf("own messages' bubbles: %d pixels of their color", n)
			}
		})
	}
}

// TestScreenshot makes the README's screenshot of the chat screen:
//
//	go test ./app/internal/ui -run TestScreenshot -update-docs
func TestScreenshot(t *testing.T) {
	s := newScene(t, false, image.Pt(420, 720), 2)
	s.join(t)
	s.conversation()
	img := render(t, s)
	checkNotBlank(t, img, s.u.Theme().Bg)
	if !*updateDocs {
		return // rendered and checked; -update-docs writes it to docs/chat.png
	}
	path := filepath.Join(repoRoot(), "docs", "chat.png")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writePNG(t, img, path)
	t.Logf("wrote %s", path)
}

// TestRenderStates draws the less common states: a refused join, the
// offline banner with the member list open, the jump to new messages.
func TestRenderStates(t *testing.T) {
	s := newScene(t, false, image.Pt(420, 640), 1.5)
	th := s.u.Theme()
	s.Type("ada")
	s.Press(key.NameReturn, 0)
	s.u.Apply(s.session, ui.JoinFailed{Reason: "The name ada is already taken in #general. Pick another name.", Field: ui.NameField})
	s.Frame()
	img := render(t, s)
	t.Logf("wrote %s", save(t, img, "headless-join-error.png"))
	checkText(t, s, img, "The name ada is already taken", th.Error, th.Bg)

	s.Press(key.NameReturn, 0)
	s.u.Apply(s.session, ui.RoomJoined{Room: "general", Name: "ada", Members: []string{"ada", "grace", "linus"}, Count: 3})
	s.Frame()
	s.bigLog(60)
	s.Frame()
	s.u.Apply(s.session, ui.Connection{State: ui.Reconnecting, Err: errors.New("Cannot reach the server at chat.example.org:7878: nothing is listening there (connection refused)"), RetryIn: 8 * time.Second})
	if err := s.ClickOn("Members"); err != nil {
		t.Fatal(err)
	}
	s.Scroll(f32.Pt(100, 500), -600)
	s.u.Apply(s.session, client.Message{Room: "general", Seq: 1000, Time: sceneNow, Sender: "grace", ID: "x", Text: "are you there?"})
	s.Frame()
	img = render(t, s)
	t.Logf("wrote %s", save(t, img, "headless-chat-states.png"))
	checkText(t, s, img, "offline", th.Error, th.Surface)
	checkText(t, s, img, "Cannot reach the server at chat.example.org:7878", th.Fg, th.Surface)
	checkText(t, s, img, "In #general when last connected", th.Fg, th.Surface)
	checkText(t, s, img, "1 new message", th.ContrastFg, th.ContrastBg)
}

// TestRenderTrust draws the certificate prompt of a first contact with a
// self-signed server, the warning for a changed certificate (in both
// themes: it must stand out in each), and the name key panel offered
// after a name is refused as someone else's.
func TestRenderTrust(t *testing.T) {
	const addr = "tls://chat.example.org:7878"
	const fp = "SHA256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	refused := func(s *scene, e ui.CertificateRefused) {
		t.Helper()
		s.Press(key.NameReturn, 0)
		s.u.Apply(s.session, e)
		s.Frame()
		s.Frame()
	}

	s := newSceneAt(t, addr, false, image.Pt(420, 720), 1.5)
	rd := newRenderer(t, s.Size)
	th := s.u.Theme()
	s.Type("ada")
	refused(s, ui.CertificateRefused{Server: addr, Fingerprint: fp,
		Why: "Its certificate is not signed by an authority this device trusts; self-hosted servers often use such a self-signed certificate."})
	img := rd.render(t, s)
	t.Logf("wrote %s", save(t, img, "headless-trust-prompt.png"))
	checkText(t, s, img, "This server's identity cannot be verified", th.Fg, th.Surface)
	checkText(t, s, img, "9f86 d081", th.Fg, th.Surface)
	checkText(t, s, img, "Trust this server", th.ContrastFg, th.ContrastBg)

	for _, dark := range []bool{false, true} {
		s := newSceneAt(t, addr, dark, image.Pt(420, 720), 1.5)
		th := s.u.Theme()
		s.Type("ada")
		refused(s, ui.CertificateRefused{Server: addr, Fingerprint: "SHA256:3b1f0c8e77d2a9e4c55a0d6b8f1e2a7c9d4b6e8f0a1c3e5d7b9f2a4c6e8d0b1f", Pinned: fp})
		img := rd.render(t, s)
		name := "headless-cert-changed-" + map[bool]string{false: "light", true: "dark"}[dark] + ".png"
		t.Logf("wrote %s", save(t, img, name))
		checkText(t, s, img, "Warning: the server's certificate has changed", th.Error, th.Warn)
		checkText(t, s, img, "Forget the saved certificate", th.Error, th.Warn)
		if s.Shows("Trust this server") {
			t.Error("a changed certificate can be trusted in one click")
		}
	}

	s = newScene(t, false, image.Pt(420, 720), 1.5)
	th = s.u.Theme()
	s.Type("ada")
	s.Press(key.NameReturn, 0)
	s.u.Apply(s.session, ui.JoinFailed{Reason: "The name ada belongs to someone else on this server. If it is yours, enter the name key from the device you first used it on (below), or pick another name.",
		Field: ui.NameField, OfferNameKey: true})
	s.Frame()
	s.Frame()
	img = rd.render(t, s)
	t.Logf("wrote %s", save(t, img, "headless-name-key.png"))
	checkText(t, s, img, "The name ada belongs to someone else", th.Error, th.Bg)
	checkText(t, s, img, "Use this key", th.ContrastFg, th.ContrastBg)
}
