package ui_test

import (
	"gioui.org/io/key"
	"image"
	"image/color"
	"testing"
	"time"
)

// TestRenderDaySeparatorAndLink draws, with the GPU renderer, a day
// separator and a message with a link, in both themes: the separator's
// day and lines in their colors, the link's letters (not only its
// underline) in the link color, the rest of the text not.
func TestRenderDaySeparatorAndLink(t *testing.T) {
	for _, dark := range []bool{false, true} {
		name := map[bool]string{false: "light", true: "dark"}[dark]
		t.Run(name, func(t *testing.T) {
			r := newListRig(t, listNow, image.Pt(420, 360), 1.5)
			r.join(0, listNow, time.Minute)
			if dark {
				// The switch is in the list of conversations.
				r.Press(key.NameBack, 0)
				if err := r.ClickOn("Switch theme"); err != nil {
					t.Fatal(err)
				}
				if err := r.ClickOn("#general"); err != nil {
					t.Fatal(err)
				}
			}
			r.say(1, "grace", listNow.Add(-16*time.Hour), "from yesterday")
			const link = "https://gioui.org/doc/learn"
			r.say(2, "linus", listNow.Add(-time.Hour), "the docs: "+link+" and more")
			s := &scene{Driver: r.Driver, u: r.u, session: r.session}
			th := s.u.Theme()
			if th.Dark != dark {
				t.Fatalf("dark theme %v", th.Dark)
			}
			img := render(t, s)
			t.Logf("wrote %s", save(t, img, "headless-msglist-"+name+".png"))
			checkText(t, s, img, "Yesterday", th.Muted, th.Bg)
			checkText(t, s, img, "Today", th.Muted, th.Bg)

			// The lines either side of "Today".
			today, _ := s.Find("Today")
			band := image.Rect(0, today.Bounds.Min.Y, today.Bounds.Min.X, today.Bounds.Min.Y+int(18*s.Metric.PxPerSp))
			if n := exactIn(img, band, th.Divider); n < 50 {
				t.Errorf("the separator's line left of Today: %d pixels of its color in %v", n, band)
			}

			// The link's letters: the upper part of its box, above the
			// underline, holds glyph pixels of the link color.
			n, ok := s.Find(link)
			if !ok || !n.Clickable {
				t.Fatalf("no clickable link; the frame shows %q", s.Texts())
			}
			letters := n.Bounds
			letters.Max.Y = letters.Min.Y + letters.Dy()*6/10
			if ink := inkIn(img, letters, th.Accent); ink < 40 {
				t.Errorf("the link's letters: %d pixels of the link color in %v", ink, letters)
			}
			// The words before it are in the text color.
			text, _ := s.Find("the docs: ")
			before := image.Rect(text.Bounds.Min.X, letters.Min.Y, n.Bounds.Min.X-2, letters.Max.Y)
			if n.Bounds.Min.Y > text.Bounds.Min.Y+5 {
				// The link wrapped to the second line: take the first line.
				before = image.Rect(text.Bounds.Min.X, text.Bounds.Min.Y, text.Bounds.Min.X+60, text.Bounds.Min.Y+int(12*s.Metric.PxPerSp))
			}
			if ink := inkIn(img, before, th.Accent); ink > 0 {
				t.Errorf("%d pixels of the link color in the text before the link (%v)", ink, before)
			}
			if ink := inkIn(img, before, th.Fg); ink < 20 {
				t.Errorf("the text before the link: %d pixels of the text color in %v", ink, before)
			}
		})
	}
}

// exactIn counts the pixels of r that are c, give or take 3 per channel:
// for colors too close to the background for inkIn.
func exactIn(img *image.RGBA, r image.Rectangle, c color.NRGBA) int {
	n := 0
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if near(img.RGBAAt(x, y), rgba(c), 3) {
				n++
			}
		}
	}
	return n
}
