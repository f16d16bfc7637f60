package ui_test

import (
	"image"

	"gioui.org/io/key"
	"strings"
	"testing"
	"time"

	"chat/app/internal/ui"
	"chat/client"
	"chat/protocol"
)

// picture is the file of a PNG photo with a 160×120 preview.
func picture(name string) *protocol.File {
	return &protocol.File{ID: strings.Repeat("a", 64), Name: name, Type: "image/png", Size: 480_000,
		Width: 1600, Height: 1200, Thumb: strings.Repeat("b", 64), ThumbWidth: 160, ThumbHeight: 120}
}

func intentsOf[T ui.Intent](in []ui.Intent) []T {
	var out []T
	for _, i := range in {
		if v, ok := i.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// TestAttachShowsProgressThenTheSentPicture: the attach button asks the
// loop for a file; the row shows the upload's progress, then the picture
// the server's copy carries.
func TestAttachShowsProgressThenTheSentPicture(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.joined()
	r.mustClick("Attach a file")
	if a := only[ui.AttachIntent](t, r.take()); a.Room != "general" {
		t.Fatalf("attach asked for room %q", a.Room)
	}
	r.u.Apply(s, ui.FileQueued{Room: "general", ID: "up1", Name: "cat.png", Size: 4 << 20})
	r.Frame()
	r.mustShow("cat.png")
	r.mustShow("uploading 0 bytes of 4 MB")
	r.mustShow("sending…")
	r.u.Apply(s, ui.UploadProgress{Room: "general", ID: "up1", Sent: 1 << 20, Size: 4 << 20})
	r.Frame()
	r.mustShow("uploading 1 MB of 4 MB")
	r.u.Apply(s, ui.UploadProgress{Room: "general", ID: "up1", Sent: 4 << 20, Size: 4 << 20, Done: true})
	r.Frame()
	r.mustShow("uploaded 4 MB")
	now := time.Now()
	r.u.Apply(s, client.Acked{Room: "general", ID: "up1", Seq: 7, Time: now})
	r.u.Apply(s, client.Message{Room: "general", Seq: 7, Time: now, Sender: "alice", ID: "up1", Own: true, File: picture("cat.png")})
	r.Frame()
	r.mustNotShow("uploaded")
	r.mustNotShow("sending…")
	r.mustShow("picture cat.png (loading)")
	if got := len(intentsOf[ui.LoadImageIntent](r.take())); got != 1 {
		t.Fatalf("%d LoadImageIntents for the preview, want 1", got)
	}
}

// TestNoAttachButtonWhenTheServerTakesNoFiles: a server that takes no
// files gets no attach button (the last server's word holds while
// offline); a server that does gets it back.
func TestNoAttachButtonWhenTheServerTakesNoFiles(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.joined()
	r.mustShow("Attach a file")
	r.u.Apply(s, ui.Connection{State: ui.Connected, NoFiles: true})
	r.Frame()
	r.mustNotShow("Attach a file")
	r.u.Apply(s, ui.Connection{State: ui.Reconnecting, RetryIn: time.Second})
	r.Frame()
	r.mustNotShow("Attach a file")
	r.u.Apply(s, ui.Connection{State: ui.Connected})
	r.Frame()
	r.mustShow("Attach a file")
}

// TestAttachRefusalsShow: a file refused before (too big) or after it
// went into the outbox says why, in the conversation.
func TestAttachRefusalsShow(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.joined()
	r.u.Apply(s, ui.AttachFailed{Room: "general", Reason: "huge.iso is 30 MB: this server takes files up to 25 MB."})
	r.Frame()
	r.mustShow("this server takes files up to 25 MB")
	r.u.Apply(s, ui.FileQueued{Room: "general", ID: "up2", Name: "bomb.png", Size: 1000})
	r.u.Apply(s, ui.RoomFailed{Room: "general", Reason: "The picture has too many pixels.", Unsent: []string{"up2"}, Stays: true})
	r.Frame()
	r.mustShow("not sent: The picture has too many pixels.")
	r.mustShow("Not sent: The picture has too many pixels.")
}

// TestInlinePictureKeepsItsSize: a picture's row has its final size
// before the preview loads, so nothing below it moves when it comes; the
// preview is asked for once, however many frames show it.
func TestInlinePictureKeepsItsSize(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.joined()
	m := bobSays("general", 1, "")
	m.File = picture("beach.png")
	r.u.Apply(s, m)
	r.u.Apply(s, bobSays("general", 2, "the line below"))
	r.Frame()
	r.Frame()
	n, ok := r.Find("picture beach.png (loading)")
	if !ok {
		t.Fatalf("no picture placeholder; shown %q", r.Texts())
	}
	if got := n.Bounds.Size(); got != image.Pt(160, 120) {
		t.Fatalf("placeholder is %v, want the preview's 160x120", got)
	}
	below, _ := r.Find("the line below")
	loads := intentsOf[ui.LoadImageIntent](r.take())
	if len(loads) != 1 || loads[0].File != m.File.Thumb || loads[0].Full || loads[0].Room != "general" {
		t.Fatalf("load intents %+v, want one for the preview", loads)
	}
	img := image.NewRGBA(image.Rect(0, 0, 160, 120))
	r.u.Apply(s, ui.ImageLoaded{File: m.File.Thumb, Image: img})
	r.Frame()
	n, ok = r.Find("picture beach.png")
	if !ok || strings.Contains(n.Text, "loading") {
		t.Fatalf("the preview does not show as loaded: %q", r.Texts())
	}
	if got := n.Bounds.Size(); got != image.Pt(160, 120) {
		t.Fatalf("loaded preview is %v, want 160x120", got)
	}
	if after, _ := r.Find("the line below"); after.Bounds != below.Bounds {
		t.Fatalf("the row below moved from %v to %v when the preview loaded", below.Bounds, after.Bounds)
	}
	if got := intentsOf[ui.LoadImageIntent](r.take()); len(got) != 0 {
		t.Fatalf("asked again: %+v", got)
	}
	if used, _ := r.u.ImageCacheUsed(); used != 160*120*4 {
		t.Fatalf("cache holds %d bytes, want %d", used, 160*120*4)
	}
}

// TestPictureOpensFullSize: a click on a preview shows the picture at
// full size (asking for the original), with Save and Close.
func TestPictureOpensFullSize(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.joined()
	m := bobSays("general", 1, "look")
	m.File = picture("beach.png")
	r.u.Apply(s, m)
	r.Frame()
	r.take()
	r.mustClick("picture beach.png")
	r.Frame()
	r.mustShow("full size beach.png (loading)")
	loads := intentsOf[ui.LoadImageIntent](r.take())
	if len(loads) != 1 || loads[0].File != m.File.ID || !loads[0].Full {
		t.Fatalf("load intents %+v, want one for the original", loads)
	}
	r.u.Apply(s, ui.ImageLoaded{File: m.File.ID, Image: image.NewRGBA(image.Rect(0, 0, 800, 600))})
	r.Frame()
	r.mustShow("full size beach.png")
	r.mustNotShow("(loading)")
	r.mustClick("Save")
	if sv := only[ui.SaveFileIntent](t, r.take()); sv.File.ID != m.File.ID || sv.Room != "general" {
		t.Fatalf("save intent %+v", sv)
	}
	r.u.Apply(s, ui.FileSaved{Room: "general", Name: "beach.png"})
	r.Frame()
	r.mustShow("Saved beach.png")
	r.mustClick("Close")
	r.Frame()
	r.mustNotShow("full size")
	r.mustShow("look")

	r.mustClick("picture beach.png") // again; Escape closes it too
	r.Frame()
	r.mustShow("full size beach.png")
	r.Press(key.NameEscape, 0)
	r.Frame()
	r.mustNotShow("full size")
	r.mustShow("look")
}

// TestFileRowShowsNameSizeTypeAndSaves: a file that is no picture shows
// its name, size and type with a Save button; saving it says so.
func TestFileRowShowsNameSizeTypeAndSaves(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.joined()
	m := bobSays("general", 1, "the minutes")
	m.File = &protocol.File{ID: strings.Repeat("c", 64), Name: "minutes.pdf", Type: "application/pdf", Size: 12 << 10}
	r.u.Apply(s, m)
	r.Frame()
	r.mustShow("minutes.pdf")
	r.mustShow("12 KB · PDF")
	r.mustClick("Save")
	if sv := only[ui.SaveFileIntent](t, r.take()); sv.File.ID != m.File.ID || sv.File.Name != "minutes.pdf" {
		t.Fatalf("save intent %+v", sv)
	}
	r.u.Apply(s, ui.FileSaved{Room: "general", Name: "minutes.pdf"})
	r.Frame()
	r.mustShow("Saved minutes.pdf")
	r.u.Apply(s, ui.FileSaved{Room: "general", Name: "minutes.pdf", Err: "disk full"})
	r.Frame()
	r.mustShow("Not saved: disk full")
}

// TestDeletedFileGoes: deleting a message takes its file off the screen.
func TestDeletedFileGoes(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.joined()
	m := bobSays("general", 1, "")
	m.File = picture("oops.png")
	r.u.Apply(s, m)
	r.Frame()
	r.mustClick("picture oops.png")
	r.Frame()
	r.mustShow("full size oops.png") // open while it is deleted: it closes
	r.u.Apply(s, ui.MessageChanged{Room: "general", Seq: 2, Target: 1, Kind: protocol.ChangeDelete, Actor: "bob",
		State: &ui.MessageState{Deleted: true}})
	r.Frame()
	r.mustNotShow("oops.png")
	r.mustShow("message deleted")
}
