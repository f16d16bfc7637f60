package ui_test

import (
	"fmt"
	"image"
	"slices"
	"testing"
	"time"

	"gioui.org/f32"
	"gioui.org/gpu/headless"

	"chat/client"
)

// The message list benchmarks: a 420×720 dp window at 1.5 px/dp with
// 100,000 messages (every 7th wraps over several lines). Results are in
// BENCHMARKS.md, "App: message list".

const benchMessages = 100_000

func benchScene(b *testing.B) *scene {
	s := newScene(b, false, image.Pt(420, 720), 1.5)
	s.join(b)
	s.bigLog(benchMessages)
	s.Frame()
	s.Frame()
	return s
}

// reportPercentiles adds p50/p99 frame times to the benchmark's output:
// the performance target is about the slow frames, not the mean.
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	ms := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))]) / 1e6 }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(ms(1), "max-ms")
}

// BenchmarkLayout100k lays out a frame at the bottom of the list: what
// every redraw costs (caret blink, a hover, an event).
func BenchmarkLayout100k(b *testing.B) {
	s := benchScene(b)
	d := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t := time.Now()
		s.Frame()
		d = append(d, time.Since(t))
	}
	reportPercentiles(b, d)
}

// BenchmarkNewMessage100k is a message arriving while the user is at the
// bottom: append it, follow it, lay out.
func BenchmarkNewMessage100k(b *testing.B) {
	s := benchScene(b)
	d := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t := time.Now()
		s.u.Apply(s.session, client.Message{Room: "general", Seq: uint64(benchMessages + i + 1), Time: sceneNow,
			Sender: "grace", ID: fmt.Sprint("n", i), Text: fmt.Sprintf("live message %d", i)})
		s.Frame()
		d = append(d, time.Since(t))
	}
	reportPercentiles(b, d)
}

// scroller scrolls the list by a wheel step per frame, reversing at the
// ends, so every frame brings rows into view that may never have been
// laid out before.
type scroller struct {
	s   *scene
	dir float32
	at  f32.Point
}

func (sc *scroller) frame() {
	before := sc.s.u.ListPosition()
	sc.s.Scroll(sc.at, sc.dir*90)
	if sc.s.u.ListPosition() == before {
		sc.dir = -sc.dir // reached an end
	}
}

// BenchmarkScroll100k is one frame of scrolling through the 100k
// messages: input, laying out the rows that come into view (shaping those
// seen for the first time), the rest.
func BenchmarkScroll100k(b *testing.B) {
	s := benchScene(b)
	sc := &scroller{s: s, dir: -1, at: f32.Pt(float32(s.Size.X/2), float32(s.Size.Y/2))}
	d := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t := time.Now()
		sc.frame()
		d = append(d, time.Since(t))
	}
	reportPercentiles(b, d)
}

// BenchmarkScrollRendered100k is BenchmarkScroll100k plus drawing each
// frame with Gio's GPU renderer on Mesa's llvmpipe (software, no GPU) and
// reading the pixels back, which waits for the drawing to finish. Twenty
// frames are drawn first, so shader compilation is not in the numbers.
func BenchmarkScrollRendered100k(b *testing.B) {
	for _, scale := range []float32{1, 1.5} {
		b.Run(fmt.Sprintf("scale=%v", scale), func(b *testing.B) {
			b.Setenv("EGL_PLATFORM", "surfaceless")
			s := newScene(b, false, image.Pt(420, 720), scale)
			s.join(b)
			s.bigLog(benchMessages)
			w, err := headless.NewWindow(s.Size.X, s.Size.Y)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Release()
			img := image.NewRGBA(image.Rectangle{Max: s.Size})
			sc := &scroller{s: s, dir: -1, at: f32.Pt(float32(s.Size.X/2), float32(s.Size.Y/2))}
			frame := func() {
				sc.frame()
				if err := w.Frame(&s.Ops); err != nil {
					b.Fatal(err)
				}
				if err := w.Screenshot(img); err != nil {
					b.Fatal(err)
				}
			}
			for range 20 {
				frame()
			}
			d := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t := time.Now()
				frame()
				d = append(d, time.Since(t))
			}
			reportPercentiles(b, d)
		})
	}
}
