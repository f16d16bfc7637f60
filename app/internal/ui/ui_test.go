package ui_test

import (
	"errors"
	"fmt"
	"image"
	"slices"
	"strings"
	"testing"
	"time"

	"gioui.org/f32"
	"gioui.org/io/key"
	"gioui.org/layout"

	"chat/app/internal/platform"
	"chat/app/internal/ui"
	"chat/app/internal/uitest"
	"chat/client"
	"chat/protocol"
)

// rig is a UI under a driver, with the intents of every frame collected.
type rig struct {
	*uitest.Driver
	t       *testing.T
	u       *ui.UI
	intents []ui.Intent
}

func newRig(t *testing.T, cfg ui.Config) *rig {
	t.Helper()
	cfg.Shaper, cfg.Face = platform.Fonts()
	cfg.ShowServer = true
	r := &rig{t: t, u: ui.New(cfg)}
	r.Driver = uitest.New(image.Pt(420, 640), func(gtx layout.Context) {
		r.intents = append(r.intents, r.u.Layout(gtx)...)
	})
	r.Frame() // focuses the name field
	r.Frame()
	return r
}

// take returns and forgets the intents so far.
func (r *rig) take() []ui.Intent {
	in := r.intents
	r.intents = nil
	return in
}

func (r *rig) mustShow(s string) {
	r.t.Helper()
	if !r.Shows(s) {
		r.t.Fatalf("the screen does not show %q; it shows %q", s, r.Texts())
	}
}

func (r *rig) mustNotShow(s string) {
	r.t.Helper()
	if r.Shows(s) {
		r.t.Fatalf("the screen shows %q; it should not", s)
	}
}

func only[T ui.Intent](t *testing.T, in []ui.Intent) T {
	t.Helper()
	var found []T
	for _, i := range in {
		if v, ok := i.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("want one %T among the intents, got %#v", zero, in)
	}
	return found[0]
}

// joined takes the rig from the form into #general as alice.
func (r *rig) joined() uint64 {
	r.t.Helper()
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	j := only[ui.JoinIntent](r.t, r.take())
	r.u.Apply(j.Session, ui.RoomJoined{Room: "general", Name: "alice", Members: []string{"alice", "bob"}, Count: 2})
	r.Frame() // focuses the composer
	r.Frame()
	if !r.u.InChat() {
		r.t.Fatal("not on the chat screen after Joined")
	}
	return j.Session
}

func TestEnterInNameJoins(t *testing.T) {
	r := newRig(t, ui.Config{Server: "chat.example:7878"})
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	j := only[ui.JoinIntent](t, r.take())
	want := ui.JoinIntent{Server: "chat.example:7878", Name: "alice", Room: "general", Session: j.Session}
	if j != want {
		t.Fatalf("join intent = %+v, want %+v", j, want)
	}
	r.mustShow("Connecting to chat.example:7878")
	r.mustShow("Cancel")
	// Enter again while joining does not start a second join.
	r.Press(key.NameReturn, 0)
	if in := r.take(); len(in) != 0 {
		t.Fatalf("second Enter gave %#v", in)
	}
}

func TestEnterInOtherFieldsJoins(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878", Name: "bob"})
	r.Press(key.NameTab, 0) // name → room
	r.Press(key.NameEnd, 0)
	r.Press(key.NameDeleteBackward, 0)
	r.Type("s")
	r.Press(key.NameReturn, 0)
	j := only[ui.JoinIntent](t, r.take())
	if j.Name != "bob" || j.Room != "generas" {
		t.Fatalf("join intent = %+v; want bob in generas (typed into the room field)", j)
	}
}

func TestJoinButton(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878", Name: "carol"})
	if err := r.ClickOn("Join"); err != nil {
		t.Fatal(err)
	}
	j := only[ui.JoinIntent](t, r.take())
	if j.Name != "carol" {
		t.Fatalf("join intent = %+v", j)
	}
	// The same button now cancels.
	if err := r.ClickOn("Cancel"); err != nil {
		t.Fatal(err)
	}
	only[ui.CancelJoinIntent](t, r.take())
	r.mustShow("Join")
}

func TestFailedJoinShowsWhyAndKeepsForm(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	j := only[ui.JoinIntent](t, r.take())
	reason := "The name alice is already taken in #general. Pick another name."
	r.u.Apply(j.Session, ui.JoinFailed{Reason: reason, Field: ui.NameField})
	r.Frame()
	r.Frame()
	r.mustShow(reason)
	r.mustShow("Join")
	if r.u.InChat() {
		t.Fatal("on the chat screen after a failed join")
	}
	// The name is still there and focused: typing appends, Enter retries.
	r.Type("2")
	r.Press(key.NameReturn, 0)
	if j := only[ui.JoinIntent](t, r.take()); j.Name != "alice2" {
		t.Fatalf("retry joined as %q, want alice2", j.Name)
	}
	r.mustNotShow(reason)
}

func TestInvalidFormIsRefusedLocally(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost"})
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	if in := r.take(); len(in) != 0 {
		t.Fatalf("a server without port gave %#v", in)
	}
	r.mustShow("needs a host and a port")
	// The focus went to the server field, and the text input stayed open
	// (see TestChatScreenTakesTypingAtOnce): the fix can be typed at once.
	if !r.TextInput || r.TextInputCloses != 0 {
		t.Fatalf("the text input is open=%v, closed %d times", r.TextInput, r.TextInputCloses)
	}
	r.Type(":7878")
	r.Press(key.NameReturn, 0)
	if j := only[ui.JoinIntent](t, r.take()); j.Server != "localhost:7878" {
		t.Fatalf("joined %q after fixing the server field", j.Server)
	}

	r = newRig(t, ui.Config{Server: "localhost:7878"})
	r.Press(key.NameReturn, 0)
	r.mustShow("Enter the name")
	r.Type("al\u200bice") // a zero-width space: invisible, so refused
	r.Press(key.NameReturn, 0)
	if in := r.take(); len(in) != 0 {
		t.Fatalf("an invisible character gave %#v", in)
	}
	r.mustShow("That name cannot be used: it " + protocol.ErrInvisible.Error())
}

func TestEventsOfAnAbandonedJoinAreIgnored(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878", Name: "dave"})
	r.Press(key.NameReturn, 0)
	j := only[ui.JoinIntent](t, r.take())
	if err := r.ClickOn("Cancel"); err != nil {
		t.Fatal(err)
	}
	r.u.Apply(j.Session, ui.RoomJoined{Room: "general", Name: "dave", Count: 1})
	r.Frame()
	if r.u.InChat() {
		t.Fatal("a cancelled join still opened the chat")
	}
}

func TestEnterSendsAndClears(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	s := r.joined()
	r.mustShow("#general")
	r.mustShow("connected")
	r.Type("hello there")
	r.Press(key.NameReturn, 0)
	in := only[ui.SendIntent](t, r.take())
	if in.Text != "hello there" {
		t.Fatalf("send intent text %q", in.Text)
	}
	r.mustShow("hello there")
	r.mustShow("sending…")
	// The editor is empty: its hint shows, and Enter sends nothing.
	r.mustShow("Message #general")
	r.Press(key.NameReturn, 0)
	if in := r.take(); len(in) != 0 {
		t.Fatalf("Enter in an empty editor gave %#v", in)
	}

	// The library names the message, the server acknowledges it, and its
	// copy comes back: one row, no longer pending.
	r.u.Apply(s, ui.SendResult{Token: in.Token, Room: "general", ID: "id1"})
	r.Frame()
	r.mustShow("sending…")
	at := time.Date(2026, 1, 2, 15, 4, 0, 0, time.Local)
	r.u.Apply(s, client.Acked{Room: "general", ID: "id1", Seq: 7, Time: at})
	r.Frame()
	r.mustNotShow("sending…")
	r.u.Apply(s, client.Message{Room: "general", Seq: 7, Time: at, Sender: "alice", ID: "id1", Text: "hello there", Own: true})
	r.Frame()
	if n := uitest.Count(r.Texts(), "hello there"); n != 1 {
		t.Fatalf("the message shows %d times, want once", n)
	}
}

// TestChatScreenTakesTypingAtOnce: the first frame of the chat screen
// leaves the composer focused with the text input open. A frame that
// closed it and a later one that reopened it would drop, in the browser,
// the keys typed in between (the first letter of a quick first message)
// and flash the soft keyboard on Android.
func TestChatScreenTakesTypingAtOnce(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	j := only[ui.JoinIntent](t, r.take())
	r.u.Apply(j.Session, ui.RoomJoined{Room: "general", Name: "alice", Members: []string{"alice"}, Count: 1})
	closes := r.TextInputCloses
	r.Step()
	if !r.u.InChat() {
		t.Fatal("not on the chat screen after Joined")
	}
	if !r.TextInput || r.TextInputCloses != closes {
		t.Fatalf("after the first frame the text input is open=%v, closed %d times; want open, never closed",
			r.TextInput, r.TextInputCloses-closes)
	}
	r.Type("hello")
	r.Press(key.NameReturn, 0)
	if in := only[ui.SendIntent](t, r.take()); in.Text != "hello" {
		t.Fatalf("sent %q, want %q", in.Text, "hello")
	}

	// Sending with the button keeps the keyboard up for the next message.
	r.Type("again")
	if err := r.ClickOn("Send"); err != nil {
		t.Fatal(err)
	}
	if in := only[ui.SendIntent](t, r.take()); in.Text != "again" {
		t.Fatalf("sent %q, want %q", in.Text, "again")
	}
	if !r.TextInput || r.TextInputCloses != closes {
		t.Fatalf("after Send the text input is open=%v, closed %d times; want open, never closed",
			r.TextInput, r.TextInputCloses-closes)
	}

	// A message the server refused goes back into the composer, which
	// takes the focus without closing the text input either.
	r.u.Apply(j.Session, ui.SendResult{Token: 2, Room: "general", Err: errors.New("too long")})
	r.Step()
	if !r.TextInput || r.TextInputCloses != closes {
		t.Fatalf("after a refusal the text input is open=%v, closed %d times", r.TextInput, r.TextInputCloses-closes)
	}
}

func TestShiftEnterInsertsNewline(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	r.joined()
	r.Type("line one")
	r.Press(key.NameReturn, key.ModShift)
	r.Type("line two")
	for _, in := range r.take() {
		if _, ok := in.(ui.TypingIntent); !ok { // typing is told to the room
			t.Fatalf("Shift+Enter gave %#v", in)
		}
	}
	r.Press(key.NameReturn, 0)
	in := only[ui.SendIntent](t, r.take())
	if in.Text != "line one\nline two" {
		t.Fatalf("sent %q, want two lines", in.Text)
	}
}

func TestSendButton(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	r.joined()
	r.Type("by click")
	if err := r.ClickOn("Send"); err != nil {
		t.Fatal(err)
	}
	if in := only[ui.SendIntent](t, r.take()); in.Text != "by click" {
		t.Fatalf("sent %q", in.Text)
	}
	// Focus went back to the composer: typing and Enter send again.
	r.Frame()
	r.Type("again")
	r.Press(key.NameReturn, 0)
	if in := only[ui.SendIntent](t, r.take()); in.Text != "again" {
		t.Fatalf("sent %q", in.Text)
	}
}

func TestRefusedMessageGoesBackToEditor(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	s := r.joined()
	long := strings.Repeat("x", 5000)
	r.Type(long)
	r.Press(key.NameReturn, 0)
	in := only[ui.SendIntent](t, r.take())
	r.u.Apply(s, ui.SendResult{Token: in.Token, Room: "general", Err: errors.New("the message is 5000 bytes; the server allows 4096")})
	r.Frame()
	r.Frame()
	r.mustShow("Not sent: the message is 5000 bytes; the server allows 4096")
	r.mustNotShow("sending…")
	// The text is back in the editor: Enter offers it again.
	r.Press(key.NameReturn, 0)
	if again := only[ui.SendIntent](t, r.take()); again.Text != long {
		t.Fatalf("the editor held %d bytes, want the 5000 typed", len(again.Text))
	}
}

// TestRetentionRemovedIsShown: a resumed join whose missed messages the
// server's retention removed says so in the conversation.
func TestRetentionRemovedIsShown(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	s := r.joined()
	const said = "Some messages you had not seen were removed by the server"
	r.u.Apply(s, client.Message{Room: "general", Seq: 9, Time: time.Now(), Sender: "bob", ID: "b9", Text: "the last one seen"})
	r.Frame()
	r.mustNotShow(said)
	// Offline since 9; the server kept only 31..40.
	r.u.Apply(s, ui.RoomJoined{Room: "general", Name: "alice", Count: 2, Members: []string{"alice", "bob"},
		Resumed: true, Head: 40, Removed: 30})
	r.Frame()
	r.mustShow(said)
}

func TestPresenceAndMembers(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	s := r.joined()
	r.u.Apply(s, ui.Presence{Room: "general", Count: 3, Changes: []ui.PresenceChange{{Name: "carol", Joined: true}}})
	r.Frame()
	r.mustShow("carol joined")
	if err := r.ClickOn("Members"); err != nil {
		t.Fatal(err)
	}
	r.mustShow("3 in #general")
	r.mustShow("alice (you)")
	r.mustShow("bob")
	r.mustShow("carol")
	r.Press(key.NameBack, 0) // Back closes the panel first
	r.mustNotShow("3 in #general")
	if r.Frame(); !r.u.InChat() {
		t.Fatal("Back with the member list open left the room")
	}
}

// TestBackGoesToListThenSignOut: in the narrow layout Back goes from the
// conversation to the list; there it is the platform's (Android leaves
// the app). Signing out goes back to the form.
func TestBackGoesToListThenSignOut(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	s := r.joined()
	r.Press(key.NameBack, 0)
	if !r.u.InChat() || !r.u.ShowsList() {
		t.Fatal("Back in a conversation did not show the list")
	}
	r.mustShow("Direct messages")
	if in := r.take(); len(in) != 0 {
		t.Fatalf("Back asked for %#v", in)
	}
	if err := r.ClickOn("Sign out"); err != nil {
		t.Fatal(err)
	}
	only[ui.SignOutIntent](t, r.take())
	if r.u.InChat() {
		t.Fatal("still in the chat after signing out")
	}
	r.mustShow("Join")
	// Late events of the session that ended change nothing.
	r.u.Apply(s, client.Message{Room: "general", Seq: 1, Sender: "bob", Text: "late"})
	r.Frame()
	r.mustNotShow("late")
}

func TestLeaveButton(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	r.joined()
	if err := r.ClickOn("Leave room"); err != nil {
		t.Fatal(err)
	}
	if in := only[ui.LeaveRoomIntent](t, r.take()); in.Room != "general" {
		t.Fatalf("left %q", in.Room)
	}
	if !r.u.InChat() || !r.u.ShowsList() {
		t.Fatal("leaving the only room did not show the list")
	}
	r.mustShow("No rooms yet.")
}

func TestConnectionStates(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	if got := r.u.Title(); got != "Chat" {
		t.Errorf("title on the form: %q", got)
	}
	s := r.joined()
	if got := r.u.Title(); got != "#general — Chat" {
		t.Errorf("title in the room: %q", got)
	}
	r.u.Apply(s, ui.Connection{State: ui.Reconnecting, Err: errors.New("EOF"), RetryIn: 300 * time.Millisecond})
	r.Frame()
	r.mustShow("reconnecting…")
	if got := r.u.Title(); got != "#general — Chat (reconnecting…)" {
		t.Errorf("title while reconnecting: %q", got)
	}
	r.u.Apply(s, ui.Connection{State: ui.Reconnecting, Err: errors.New("connection refused"), RetryIn: 8 * time.Second})
	r.Frame()
	r.mustShow("offline")
	r.mustShow("connection refused.")
	r.mustShow("Retrying in 8 s.")
	// Sending while offline works: the message waits as pending.
	r.Type("queued")
	r.Press(key.NameReturn, 0)
	only[ui.SendIntent](t, r.take())
	r.mustShow("1 waiting")
	if err := r.ClickOn("Retry now"); err != nil {
		t.Fatal(err)
	}
	only[ui.RetryIntent](t, r.take())
	r.u.Apply(s, ui.Connection{State: ui.Connected})
	r.Frame()
	r.mustShow("connected")
	r.mustNotShow("offline")
}

func TestDisconnectedReturnsToForm(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	s := r.joined()
	r.u.Apply(s, ui.Disconnected{Reason: "You joined #general from somewhere else."})
	r.Frame()
	if r.u.InChat() {
		t.Fatal("still in the chat")
	}
	r.mustShow("You joined #general from somewhere else.")
}

func TestThemeToggle(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	if r.u.Theme().Dark {
		t.Fatal("starts dark")
	}
	if err := r.ClickOn("Switch theme"); err != nil {
		t.Fatal(err)
	}
	if in := only[ui.ThemeIntent](t, r.take()); !in.Dark || !r.u.Theme().Dark {
		t.Fatalf("after the toggle: intent %+v, theme dark %v", in, r.u.Theme().Dark)
	}
}

func TestListFollowsAndOffersJump(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	s := r.joined()
	at := time.Now()
	msg := func(i int) client.Message {
		return client.Message{Room: "general", Seq: uint64(i), Time: at, Sender: "bob", ID: fmt.Sprint(i), Text: fmt.Sprintf("message %d", i)}
	}
	for i := 1; i <= 200; i++ {
		r.u.Apply(s, msg(i))
	}
	r.Frame()
	r.mustShow("message 200") // at the bottom
	r.u.Apply(s, msg(201))
	r.Frame()
	r.mustShow("message 201") // follows while at the bottom
	r.mustNotShow("new message")

	mid := f32.Pt(200, 300)
	for range 5 {
		r.Scroll(mid, -400)
	}
	r.mustNotShow("message 201")
	r.u.Apply(s, msg(202))
	r.u.Apply(s, msg(203))
	r.Frame()
	r.mustNotShow("message 203") // stays put
	r.mustShow("2 new messages")
	if err := r.ClickOn("2 new messages"); err != nil {
		t.Fatal(err)
	}
	r.Frame()
	r.mustShow("message 203")
	r.mustNotShow("new messages")
	if !slices.Contains(r.Texts(), "message 203") {
		t.Fatal("message 203 not shown as its own text")
	}
}

// TestRejoinAfterReconnect: a re-join lists the members again, which adds
// no notices (the client library reports the difference as a Presence),
// and while the connection is down the member count is not shown as if it
// were current.
func TestRejoinAfterReconnect(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	s := r.joined() // alice and bob
	r.mustShowExactly("2")

	r.u.Apply(s, ui.Connection{State: ui.Reconnecting, Err: errors.New("EOF"), RetryIn: 8 * time.Second})
	r.Frame()
	if n := uitest.Count(r.Texts(), "2"); n != 0 {
		t.Fatalf("offline, the header still shows the member count 2: %q", r.Texts())
	}
	r.mustShowExactly("–")
	if err := r.ClickOn("Members"); err != nil {
		t.Fatal(err)
	}
	r.mustShow("In #general when last connected")
	r.mustNotShow("2 in #general")
	r.Press(key.NameBack, 0)

	// Connected again: the count is still old until the room is joined.
	r.u.Apply(s, ui.Connection{State: ui.Connected})
	r.Frame()
	r.mustShowExactly("–")
	r.u.Apply(s, ui.RoomJoined{Room: "general", Name: "alice", Members: []string{"alice", "carol"}, Count: 2})
	r.Frame()
	r.mustShowExactly("2")
	for _, s := range []string{"joined", "left"} {
		if r.Shows(s) {
			t.Fatalf("the re-join added a notice: %q", r.Texts())
		}
	}
	r.u.Apply(s, ui.Presence{Room: "general", Count: 2, Changes: []ui.PresenceChange{
		{Name: "bob"}, {Name: "carol", Joined: true}}})
	r.Frame()
	r.mustShow("bob left")
	r.mustShow("carol joined")
	if err := r.ClickOn("Members"); err != nil {
		t.Fatal(err)
	}
	r.mustShow("2 in #general")
	r.mustShowExactly("carol")
	if n := uitest.Count(r.Texts(), "bob"); n != 0 {
		t.Fatalf("bob is still listed: %q", r.Texts())
	}
}

func (r *rig) mustShowExactly(s string) {
	r.t.Helper()
	if uitest.Count(r.Texts(), s) == 0 {
		r.t.Fatalf("the screen does not show %q by itself; it shows %q", s, r.Texts())
	}
}

// The offline banner counts down to the next attempt.
func TestOfflineBannerCountsDown(t *testing.T) {
	now := time.Date(2026, 3, 14, 10, 0, 0, 0, time.Local)
	r := newRig(t, ui.Config{Server: "localhost:7878", Now: func() time.Time { return now }})
	s := r.joined()
	r.u.Apply(s, ui.Connection{State: ui.Reconnecting, Err: errors.New("Cannot reach the server at localhost:7878"), RetryIn: 8 * time.Second})
	r.Frame()
	r.mustShow("Cannot reach the server at localhost:7878. Retrying in 8 s.")
	now = now.Add(5500 * time.Millisecond)
	r.Frame()
	r.mustShow("Retrying in 3 s.")
	now = now.Add(3 * time.Second)
	r.Frame()
	r.mustShow("Retrying…")
}
