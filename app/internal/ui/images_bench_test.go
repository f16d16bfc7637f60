package ui_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"runtime"
	"sync"
	"testing"
	"time"

	"gioui.org/f32"
	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/unit"

	"chat/app/internal/imaging"
	"chat/app/internal/platform"
	"chat/app/internal/ui"
	"chat/app/internal/uitest"
	"chat/client"
	"chat/protocol"
)

// imageRoom is a room of n picture messages, each with its own 320×240
// JPEG preview (q80, as the server makes them), and the decoded pictures'
// loader: what the app loop does for a LoadImageIntent (fetch, decode with
// imaging.Decode on a goroutine of its own, at most 4 at once, the result
// through a channel), with the fetch replaced by the previews in memory.
type imageRoom struct {
	n      int
	thumbs map[string][]byte
	ids    []string // by message, 0-based
	loaded chan ui.ImageLoaded
	slots  chan struct{}
	wg     sync.WaitGroup
}

func newImageRoom(b *testing.B, n int) *imageRoom {
	b.Helper()
	r := &imageRoom{n: n, thumbs: map[string][]byte{}, loaded: make(chan ui.ImageLoaded, n), slots: make(chan struct{}, 4)}
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, 320, 240))
		for y := range 240 {
			for x := range 320 {
				img.SetRGBA(x, y, color.RGBA{R: uint8(x + i), G: uint8(y * i), B: uint8(i), A: 255})
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
			b.Fatal(err)
		}
		sum := sha256.Sum256(buf.Bytes())
		id := hex.EncodeToString(sum[:])
		r.thumbs[id] = buf.Bytes()
		r.ids = append(r.ids, id)
	}
	return r
}

// message is picture message seq (1-based).
func (r *imageRoom) message(seq uint64) client.Message {
	id := r.ids[seq-1]
	return client.Message{Room: "general", Seq: seq, Time: sceneNow.Add(time.Duration(int(seq)-r.n) * time.Minute), Sender: "grace",
		ID: fmt.Sprint(seq), File: &protocol.File{ID: fmt.Sprintf("%064d", seq), Name: fmt.Sprintf("IMG_%04d.jpg", seq), Type: "image/jpeg",
			Size: 2 << 20, Width: 4000, Height: 3000, Thumb: id, ThumbWidth: 320, ThumbHeight: 240}}
}

// load decodes a preview off the UI goroutine.
func (r *imageRoom) load(in ui.LoadImageIntent) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.slots <- struct{}{}
		defer func() { <-r.slots }()
		img, err := imaging.Decode(r.thumbs[in.File], 64<<20, image.Pt(320, 320))
		out := ui.ImageLoaded{File: in.File, Image: img}
		if err != nil {
			out.Err = err.Error()
		}
		r.loaded <- out
	}()
}

// BenchmarkScrollImages scrolls a 420×720 dp window (1.5 px/dp) from the
// end of a room of 500 picture messages to its start, 600 px a frame,
// the list asking for older pages as it goes (answered at once), each
// preview in view loaded and decoded as the app does. It reports the
// peak Go heap in use (sampled after every frame), the image cache's
// peak (which must stay under ui.ImageCacheBytes), and frame times.
func BenchmarkScrollImages(b *testing.B) {
	const n = 500
	room := newImageRoom(b, n)
	for range b.N {
		cfg := ui.Config{Server: "chat.example.org:7878", ShowServer: true, Now: func() time.Time { return sceneNow }}
		cfg.Shaper, cfg.Face = platform.Fonts()
		u := ui.New(cfg)
		var session uint64
		var pages []ui.LoadOlderIntent
		loads := 0
		d := uitest.New(image.Pt(630, 1080), func(gtx layout.Context) {
			for _, in := range u.Layout(gtx) {
				switch in := in.(type) {
				case ui.JoinIntent:
					session = in.Session
				case ui.LoadImageIntent:
					loads++
					room.load(in)
				case ui.LoadOlderIntent:
					pages = append(pages, in)
				}
			}
		})
		d.Metric = unit.Metric{PxPerDp: 1.5, PxPerSp: 1.5}
		d.Frame()
		d.Type("ada")
		d.Press(key.NameReturn, 0)
		u.Apply(session, ui.RoomJoined{Room: "general", Name: "ada", Members: []string{"ada", "grace"}, Count: 2, Head: n})
		// The newest page, as a join's replay brings it; the list asks
		// for the older ones as the view nears them.
		for seq := uint64(n - 100 + 1); seq <= n; seq++ {
			u.Apply(session, room.message(seq))
		}
		settle := func() {
			room.wg.Wait()
			for {
				select {
				case e := <-room.loaded:
					u.Apply(session, e)
					continue
				default:
				}
				break
			}
			for len(pages) > 0 {
				p := pages[0]
				pages = pages[1:]
				page := client.Page{Room: p.Room, Before: p.Before}
				for seq := max(1, int(p.Before)-p.Limit); seq < int(p.Before) && seq <= n; seq++ {
					page.Messages = append(page.Messages, room.message(uint64(seq)))
				}
				page.First = len(page.Messages) == 0 || page.Messages[0].Seq == 1
				u.Apply(session, page)
			}
		}
		var peakHeap uint64
		var ms runtime.MemStats
		frames := make([]time.Duration, 0, 1000)
		frame := func(scroll bool) {
			t := time.Now()
			if scroll {
				d.Scroll(f32.Pt(400, 500), -600)
			} else {
				d.Frame()
			}
			frames = append(frames, time.Since(t))
			settle()
			d.Frame()
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
		}
		frame(false)
		for range 2000 { // far more than 500 pictures of 360 px at 600 px a frame
			frame(true)
			if d.Shows("IMG_0001") || d.Shows("picture IMG_0001.jpg") {
				break
			}
		}
		if !d.Shows("picture IMG_0001.jpg") {
			b.Fatalf("the scroll did not reach the first picture; shown %q", d.Texts())
		}
		used, peak := u.ImageCacheUsed()
		if peak > ui.ImageCacheBytes {
			b.Fatalf("the image cache held %d bytes, over its bound %d", peak, ui.ImageCacheBytes)
		}
		if loads < n {
			b.Fatalf("only %d previews were loaded for %d pictures", loads, n)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		runtime.KeepAlive(u) // its cache is what the heap holds
		b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "end-heap-after-GC-MiB")
		b.ReportMetric(float64(peak)/(1<<20), "cache-peak-MiB")
		b.ReportMetric(float64(used)/(1<<20), "cache-end-MiB")
		b.ReportMetric(float64(loads), "decodes")
		b.ReportMetric(float64(len(frames)), "frames")
		reportPercentiles(b, frames)
	}
}
