package ui_test

import (
	"fmt"
	"image"
	"testing"
	"time"

	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/unit"

	"chat/app/internal/platform"
	"chat/app/internal/ui"
	"chat/app/internal/uitest"
	"chat/client"
)

// sceneNow is the fixed "now" of rendered scenes, so their times (and the
// committed screenshot) do not depend on when the test runs.
var sceneNow = time.Date(2026, 3, 14, 9, 58, 0, 0, time.Local)

// scene is a UI in a window of size dp at scale pixels per dp.
type scene struct {
	*uitest.Driver
	u       *ui.UI
	session uint64
}

func newScene(t testing.TB, dark bool, size image.Point, scale float32) *scene {
	t.Helper()
	return newSceneAt(t, "chat.example.org:7878", dark, size, scale)
}

// newSceneAt is newScene with the server field holding server.
func newSceneAt(t testing.TB, server string, dark bool, size image.Point, scale float32) *scene {
	t.Helper()
	cfg := ui.Config{Server: server, Dark: dark, ShowServer: true, Now: func() time.Time { return sceneNow },
		NameKey: "5f2c81e09a7d4b36c1e8f0a2d49b7c63"}
	cfg.Shaper, cfg.Face = platform.Fonts()
	s := &scene{u: ui.New(cfg)}
	s.Driver = uitest.New(image.Pt(int(float32(size.X)*scale), int(float32(size.Y)*scale)), func(gtx layout.Context) {
		for _, in := range s.u.Layout(gtx) {
			if j, ok := in.(ui.JoinIntent); ok {
				s.session = j.Session
			}
		}
	})
	s.Metric = unit.Metric{PxPerDp: scale, PxPerSp: scale}
	s.Frame()
	s.Frame()
	return s
}

// join takes the scene into #general as ada with a few members.
func (s *scene) join(t testing.TB) {
	t.Helper()
	s.Type("ada")
	s.Press(key.NameReturn, 0)
	s.u.Apply(s.session, ui.RoomJoined{Room: "general", Name: "ada", Members: []string{"ada", "grace", "linus", "ken"}, Count: 4})
	s.Frame()
	s.Frame()
	if !s.u.InChat() {
		t.Fatal("the scene did not reach the chat")
	}
}

// conversation fills the chat with a short exchange: others' and own
// messages, a notice, a delivered and a pending own message.
func (s *scene) conversation() {
	at := func(min int) time.Time { return sceneNow.Add(time.Duration(min-20) * time.Minute) }
	msg := func(seq int, min int, sender, text string) client.Message {
		return client.Message{Room: "general", Seq: uint64(seq), Time: at(min), Sender: sender, ID: fmt.Sprint("m", seq), Text: text, Own: sender == "ada", History: true}
	}
	for _, m := range []client.Message{
		msg(1, 0, "grace", "Morning! Did the new build go out?"),
		msg(2, 1, "linus", "It did. The reconnect fix is in: kill the server and watch the app catch up."),
		msg(3, 2, "ada", "Trying it now."),
		msg(4, 3, "ada", "Killed it mid-sentence… and everything I typed while it was down arrived once it was back."),
		msg(5, 5, "grace", "Nice. Multi-line messages work too:\n• Enter sends\n• Shift+Enter adds a line"),
	} {
		s.u.Apply(s.session, m)
	}
	s.u.Apply(s.session, ui.Presence{Room: "general", Count: 5, Changes: []ui.PresenceChange{{Name: "ken", Joined: true}}})
	s.u.Apply(s.session, msg(6, 20, "ken", "Hi all. Is there a dark theme?"))
	s.Frame()
	s.Type("Yes: the button next to Leave.")
	s.Press(key.NameReturn, 0) // pending: no SendResult is applied
	s.Frame()
}

// bigLog fills the chat with n messages from a few senders, with some
// long ones that wrap.
func (s *scene) bigLog(n int) {
	senders := []string{"grace", "linus", "ada", "ken"}
	for i := range n {
		text := fmt.Sprintf("message %d", i)
		if i%7 == 0 {
			text += ": a longer line that wraps over more than one line in a narrow window, as real chat text often does"
		}
		sender := senders[i%len(senders)]
		s.u.Apply(s.session, client.Message{Room: "general", Seq: uint64(i + 1), Time: sceneNow.Add(time.Duration(i-n) * time.Second),
			Sender: sender, ID: fmt.Sprint(i), Text: text, Own: sender == "ada"})
	}
}
