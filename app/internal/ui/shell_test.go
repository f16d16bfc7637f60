package ui_test

import (
	"errors"
	"fmt"
	"image"
	"testing"
	"time"

	"gioui.org/io/key"
	"gioui.org/layout"

	"chat/app/internal/platform"
	"chat/app/internal/ui"
	"chat/app/internal/uitest"
	"chat/client"
	"chat/protocol"
)

// Window sizes: a desktop window and a phone (in dp, one pixel per dp).
var (
	wide   = image.Pt(1000, 700)
	narrow = image.Pt(400, 800)
)

// newRigSized is newRig in a window of size.
func newRigSized(t *testing.T, size image.Point) *rig {
	t.Helper()
	cfg := ui.Config{Server: "localhost:7878"}
	cfg.Shaper, cfg.Face = platform.Fonts()
	cfg.ShowServer = true
	r := &rig{t: t, u: ui.New(cfg)}
	r.Driver = uitest.New(size, func(gtx layout.Context) {
		r.intents = append(r.intents, r.u.Layout(gtx)...)
	})
	r.Frame()
	r.Frame()
	return r
}

// inRooms joins the rig as alice into #general (the form's room) and
// #random, with the read state given for #random.
func (r *rig) inRooms(read, head uint64, mentions int) uint64 {
	r.t.Helper()
	s := r.joined()
	r.u.Apply(s, ui.RoomJoined{Room: "random", Name: "alice", Members: []string{"alice", "bob"}, Count: 2, Read: read, Head: head, Mentions: mentions})
	r.history(s, "random", head)
	r.Frame()
	r.take()
	return s
}

// history replays messages 1 to head of room, as a join does: what the
// list shows, and what the user can read.
func (r *rig) history(session uint64, room string, head uint64) {
	for seq := uint64(1); seq <= head; seq++ {
		m := bobSays(room, seq, fmt.Sprintf("%s %d", room, seq))
		m.History = true
		r.u.Apply(session, m)
	}
}

func (r *rig) wantUnread(room string, unread, mentions int) {
	r.t.Helper()
	if n, m := r.u.Unread(room); n != unread || m != mentions {
		r.t.Fatalf("%s: %d unread, %d mentions; want %d, %d", room, n, m, unread, mentions)
	}
}

func bobSays(room string, seq uint64, text string) client.Message {
	return client.Message{Room: room, Seq: seq, Time: time.Now(), Sender: "bob", ID: text, Text: text,
		Mention: protocol.Mentions(text, "alice")}
}

// TestWideShowsListBesideConversation: in a wide window the list and the
// open conversation show together; a click on a room opens it.
func TestWideShowsListBesideConversation(t *testing.T) {
	r := newRigSized(t, wide)
	r.inRooms(0, 0, 0)
	r.mustShow("Rooms")
	r.mustShow("Direct messages")
	r.mustShow("Message #general") // the composer of the open room
	if r.u.ShowsList() {
		t.Fatal("the wide layout says it shows the list alone")
	}
	r.click("#random")
	if got := r.u.Open(); got != "random" {
		t.Fatalf("open: %q", got)
	}
	r.mustShow("Message #random")
	r.mustShow("Rooms") // the list stays
	if in := only[ui.OpenIntent](t, r.take()); in.Room != "random" {
		t.Fatalf("open intent %+v", in)
	}
	// Escape and Back have nothing to go back to here.
	r.Press(key.NameEscape, 0)
	if r.u.Open() != "random" || r.u.ShowsList() {
		t.Fatal("Escape closed the conversation in the wide layout")
	}
}

// TestNarrowListAndConversationAreScreens: on a phone the conversation is
// a screen of its own; Back and Escape (and the back arrow) return to the
// list, where a tap opens another conversation.
func TestNarrowListAndConversationAreScreens(t *testing.T) {
	r := newRigSized(t, narrow)
	r.inRooms(0, 0, 0)
	r.mustShow("Message #general")
	r.mustNotShow("Direct messages")
	r.Press(key.NameBack, 0)
	if !r.u.ShowsList() {
		t.Fatal("Back did not show the list")
	}
	r.mustShow("Direct messages")
	r.mustNotShow("Message #general")
	r.click("#random")
	if r.u.ShowsList() || r.u.Open() != "random" {
		t.Fatalf("tapping #random: list %v, open %q", r.u.ShowsList(), r.u.Open())
	}
	r.mustShow("Message #random")
	r.Press(key.NameEscape, 0)
	if !r.u.ShowsList() {
		t.Fatal("Escape did not show the list")
	}
	r.click("#general")
	r.click("Back to conversations")
	if !r.u.ShowsList() {
		t.Fatal("the back arrow did not show the list")
	}
	// The member list closes before the conversation does.
	r.click("#general")
	r.click("Members")
	r.mustShow("2 in #general")
	r.Press(key.NameBack, 0)
	r.mustNotShow("2 in #general")
	if r.u.ShowsList() {
		t.Fatal("Back with the member list open left the conversation")
	}
}

// TestUnreadCounts: the count is the messages after the read marker, from
// the join's state and live messages, without our own; mentions are
// counted apart; a marker from another device clears them; the title
// shows the total.
func TestUnreadCounts(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(3, 5, 1) // two unread in #random, one of them a mention
	r.wantUnread("random", 2, 1)
	r.mustShow("#random: 2 unread, 1 mention")
	if got := r.u.Title(); got != "(2) #general — Chat" {
		t.Fatalf("title %q", got)
	}
	r.u.Apply(s, bobSays("random", 6, "hi"))
	r.u.Apply(s, bobSays("random", 7, "@alice look"))
	r.u.Apply(s, client.Message{Room: "random", Seq: 8, Sender: "alice", Text: "from my phone", Own: true})
	r.Frame()
	r.wantUnread("random", 4, 2)
	r.mustShow("#random: 4 unread, 2 mentions")
	if got := r.u.Title(); got != "(4) #general — Chat" {
		t.Fatalf("title %q", got)
	}
	// History replayed at a re-join is not counted twice.
	r.u.Apply(s, ui.RoomJoined{Room: "random", Name: "alice", Count: 2, Read: 3, Head: 8, Mentions: 2})
	r.u.Apply(s, client.Message{Room: "random", Seq: 7, Sender: "bob", Text: "@alice look", Mention: true, History: true})
	r.Frame()
	r.wantUnread("random", 4, 2)
	// Read on the phone: the marker comes back here.
	r.u.Apply(s, ui.ReadMarker{Room: "random", Seq: 6})
	r.Frame()
	r.wantUnread("random", 1, 1)
	r.u.Apply(s, ui.ReadMarker{Room: "random", Seq: 4}) // markers never go back
	r.u.Apply(s, ui.ReadMarker{Room: "random", Seq: 8})
	r.Frame()
	r.wantUnread("random", 0, 0)
	r.mustNotShow("unread")
	if got := r.u.Title(); got != "#general — Chat" {
		t.Fatalf("title %q", got)
	}
}

// TestViewingMarksRead: the open conversation, at its bottom, in a
// focused window, is read: one MarkReadIntent per new head; none while the
// window is not focused, one when it comes back.
func TestViewingMarksRead(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(3, 5, 0)
	r.click("#random")
	in := only[ui.MarkReadIntent](t, r.take())
	if in.Room != "random" || in.Seq != 5 {
		t.Fatalf("mark %+v", in)
	}
	r.wantUnread("random", 0, 0)
	r.Frame()
	for _, in := range r.take() {
		if _, ok := in.(ui.MarkReadIntent); ok {
			t.Fatalf("a second frame marked %+v", in)
		}
	}
	r.u.SetFocused(false)
	r.u.Apply(s, bobSays("random", 6, "are you there?"))
	r.Frame()
	r.wantUnread("random", 1, 0)
	for _, in := range r.take() {
		if _, ok := in.(ui.MarkReadIntent); ok {
			t.Fatalf("unfocused, the window marked %+v", in)
		}
	}
	r.u.SetFocused(true)
	r.Frame()
	if in := only[ui.MarkReadIntent](t, r.take()); in.Seq != 6 {
		t.Fatalf("mark %+v", in)
	}
	r.mustNotShow("#random: 1 unread") // the list drawn again, read
	// A message arriving while the user looks is read at once.
	r.u.Apply(s, bobSays("random", 7, "still there"))
	r.Frame()
	r.mustNotShow("unread")
	if in := only[ui.MarkReadIntent](t, r.take()); in.Seq != 7 {
		t.Fatalf("mark %+v", in)
	}
	// A conversation not shown is not read: #general stays unread.
	r.u.Apply(s, bobSays("general", 1, "in general"))
	r.Frame()
	r.wantUnread("general", 1, 0)
}

// TestNarrowListIsNotReading: on a phone, the list screen reads nothing.
func TestNarrowListIsNotReading(t *testing.T) {
	r := newRigSized(t, narrow)
	s := r.inRooms(0, 0, 0)
	r.Press(key.NameBack, 0)
	r.u.Apply(s, bobSays("general", 1, "hello"))
	r.Frame()
	r.wantUnread("general", 1, 0)
	r.mustShow("#general: 1 unread")
	for _, in := range r.take() {
		if _, ok := in.(ui.MarkReadIntent); ok {
			t.Fatalf("the list marked %+v read", in)
		}
	}
	r.click("#general")
	only[ui.MarkReadIntent](t, r.take())
}

// TestCtrlKJumps: Ctrl+K opens the filter over the conversations' names,
// typing narrows it, the arrows choose, Enter opens, Escape closes.
func TestCtrlKJumps(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(0, 0, 0)
	r.u.Apply(s, ui.RoomJoined{Room: "rust", Name: "alice", Count: 1})
	r.u.Apply(s, ui.RoomJoined{Room: protocol.DMRoom("alice", "Rob"), Name: "alice", Members: []string{"alice", "Rob"}, Count: 2})
	r.Frame()
	r.Press("K", key.ModShortcut)
	r.mustShow("Jump to a conversation")
	r.Type("ro")
	// Rob matches; the rooms do not.
	if n := uitest.Count(r.Texts(), "Rob"); n != 2 { // in the list and in the panel
		t.Fatalf("Rob shows %d times; the screen shows %q", n, r.Texts())
	}
	if n := uitest.Count(r.Texts(), "#random"); n != 2 { // in the list, and its description
		t.Fatalf("#random shows %d times; the screen shows %q", n, r.Texts())
	}
	r.Press(key.NameReturn, 0)
	if got := r.u.Open(); got != protocol.DMRoom("alice", "rob") {
		t.Fatalf("open %q, want the conversation with Rob", got)
	}
	r.mustNotShow("Jump to a conversation")

	r.Press("K", key.ModShortcut)
	r.Type("r") // #general, #random, #rust, Rob
	r.Press(key.NameDownArrow, 0)
	r.Press(key.NameDownArrow, 0)
	r.Press(key.NameDownArrow, 0)
	r.Press(key.NameUpArrow, 0)
	r.Press(key.NameReturn, 0)
	if got := r.u.Open(); got != "rust" {
		t.Fatalf("Down, Down, Down, Up and Enter opened %q, want rust", got)
	}
	r.Press("K", key.ModShortcut)
	r.Press(key.NameEscape, 0)
	r.mustNotShow("Jump to a conversation")
	if got := r.u.Open(); got != "rust" {
		t.Fatalf("Escape changed the open conversation to %q", got)
	}
	// The composer has the keyboard again.
	r.Type("typed after")
	if got := r.Focused(); got != "typed after" {
		t.Fatalf("the focused editor holds %q", got)
	}
}

// TestAltArrowsGoToUnread: Alt+Down and Alt+Up open the next and the
// previous conversation with unread messages, going round the list.
func TestAltArrowsGoToUnread(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(0, 0, 0)
	dm := protocol.DMRoom("alice", "bob")
	r.u.Apply(s, ui.RoomJoined{Room: "quiet", Name: "alice", Count: 1})
	r.u.Apply(s, ui.RoomJoined{Room: "rust", Name: "alice", Count: 1, Head: 2})
	r.history(s, "rust", 2)
	r.u.Apply(s, ui.RoomJoined{Room: dm, Name: "alice", Count: 1, Head: 1})
	r.history(s, dm, 1)
	r.Frame()
	r.Press(key.NameDownArrow, key.ModAlt)
	if got := r.u.Open(); got != "rust" {
		t.Fatalf("Alt+Down opened %q, want rust (quiet has nothing unread)", got)
	}
	r.Press(key.NameDownArrow, key.ModAlt)
	if got := r.u.Open(); got != dm {
		t.Fatalf("Alt+Down opened %q, want the conversation with bob", got)
	}
	r.u.Apply(s, bobSays("general", 1, "back in general"))
	r.Frame()
	r.Press(key.NameDownArrow, key.ModAlt) // round to the top
	if got := r.u.Open(); got != "general" {
		t.Fatalf("Alt+Down opened %q, want general", got)
	}
	r.u.Apply(s, bobSays("rust", 3, "more rust"))
	r.Frame()
	r.Press(key.NameUpArrow, key.ModAlt) // round to the bottom and up
	if got := r.u.Open(); got != "rust" {
		t.Fatalf("Alt+Up opened %q, want rust", got)
	}
	// Nothing unread: it stays.
	r.Press(key.NameUpArrow, key.ModAlt)
	if got := r.u.Open(); got != "rust" {
		t.Fatalf("with nothing unread Alt+Up opened %q", got)
	}
}

// TestJoinOrCreateRoom: the room panel lists the server's rooms, filters
// them as the user types, and joins the one clicked or creates the one
// typed.
func TestJoinOrCreateRoom(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(0, 0, 0)
	r.click("Join or create a room")
	if in := only[ui.ListRoomsIntent](t, r.take()); in.Query != "" {
		t.Fatalf("list %+v", in)
	}
	r.mustShow("Looking for rooms")
	r.u.Apply(s, ui.Directory{Rooms: []ui.DirectoryRoom{{Room: "gophers", Members: 12}, {Room: "golf", Members: 1}, {Room: "music", Members: 3}}})
	r.Frame()
	r.mustShow("12 members")
	r.mustShow("#music")
	r.Type("gol")
	r.mustNotShow("#music")
	r.mustShow("#golf")
	r.mustShow("Create #gol")
	r.click("#golf")
	if in := only[ui.JoinRoomIntent](t, r.take()); in.Room != "golf" {
		t.Fatalf("join %+v", in)
	}
	if r.u.Open() != "golf" {
		t.Fatalf("open %q", r.u.Open())
	}
	r.mustNotShow("Join or create a room: ") // closed
	r.mustShow("Message #golf")

	r.click("Join or create a room")
	r.take()
	r.Type("new room")
	r.Press(key.NameReturn, 0)
	if in := only[ui.JoinRoomIntent](t, r.take()); in.Room != "new room" {
		t.Fatalf("join %+v", in)
	}
	if r.u.Open() != "new room" {
		t.Fatalf("open %q", r.u.Open())
	}
	// A name the protocol refuses is refused in the panel.
	r.click("Join or create a room")
	r.Type("@x")
	r.Press(key.NameReturn, 0)
	r.mustShow("That room name cannot be used")
	r.Press(key.NameEscape, 0)
	r.mustNotShow("That room name cannot be used")
}

// TestRoomPanelAsksAsTheUserTypes: the panel asks the server for the
// rooms matching the typed name once the typing pauses.
func TestRoomPanelAsksAsTheUserTypes(t *testing.T) {
	r := newRigSized(t, wide)
	r.inRooms(0, 0, 0)
	r.click("Join or create a room")
	r.take()
	r.Type("mus")
	for range 40 { // frames of 16 ms or more: past the delay
		r.Frame()
	}
	var queries []string
	for _, in := range r.take() {
		if l, ok := in.(ui.ListRoomsIntent); ok {
			queries = append(queries, l.Query)
		}
	}
	if len(queries) != 1 || queries[0] != "mus" {
		t.Fatalf("queries %q, want one for mus", queries)
	}
}

// TestDirectMessages: a conversation the server lists shows under the
// peer's name, with its unread count; "Message someone" and a member's
// name open one.
func TestDirectMessages(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(0, 0, 0)
	withCarol := protocol.DMRoom("alice", "carol")
	r.u.Apply(s, ui.Identity{Name: "alice", DMs: []ui.Conversation{{Room: withCarol, Peer: "carol", Head: 4, Read: 1}}})
	r.Frame()
	r.mustShow("Direct messages with carol: 3 unread")
	r.u.Apply(s, ui.RoomJoined{Room: withCarol, Name: "alice", Members: []string{"alice"}, Count: 1, Head: 4, Read: 1})
	r.u.Apply(s, client.Message{Room: withCarol, Seq: 5, Sender: "Carol", Text: "psst"})
	r.Frame()
	r.mustShow("Direct messages with Carol: 4 unread") // her spelling
	r.click("Carol")
	r.mustShow("Message Carol")
	r.mustNotShow("Leave room") // a direct conversation stays

	r.click("Message someone")
	r.Type("dave")
	r.Press(key.NameReturn, 0)
	in := only[ui.DirectIntent](t, r.take())
	if in.Peer != "dave" || in.Room != protocol.DMRoom("alice", "dave") || r.u.Open() != in.Room {
		t.Fatalf("direct %+v, open %q", in, r.u.Open())
	}
	r.mustShow("Message dave")

	r.click("#general")
	r.click("Members")
	r.click("Message bob")
	if in := only[ui.DirectIntent](t, r.take()); in.Peer != "bob" {
		t.Fatalf("direct %+v", in)
	}
	if r.u.Open() != protocol.DMRoom("alice", "bob") {
		t.Fatalf("open %q", r.u.Open())
	}
}

// TestLostRoomKeepsTheOthers: a room refused after the join says why in
// its place; the other conversations go on.
func TestLostRoomKeepsTheOthers(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(0, 0, 0)
	r.click("#random")
	r.u.Apply(s, ui.RoomFailed{Room: "random", Reason: "The name alice is already taken in #random. Pick another name."})
	r.Frame()
	r.mustShow("The name alice is already taken in #random")
	r.mustNotShow("Message #random")
	r.click("#general")
	r.mustShow("Message #general")
	if !r.u.InChat() {
		t.Fatal("a lost room ended the chat")
	}
}

// TestQuietAndNotificationsAsk: the bell turns a conversation's
// notifications off; the list offers to turn notifications on where the
// platform needs the user's permission, and the first message sent asks.
func TestQuietAndNotificationsAsk(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(0, 0, 0)
	r.click("Turn off notifications")
	if in := only[ui.QuietIntent](t, r.take()); in.Room != "general" || !in.Quiet {
		t.Fatalf("quiet %+v", in)
	}
	r.click("Turn on notifications")
	if in := only[ui.QuietIntent](t, r.take()); in.Quiet {
		t.Fatalf("quiet %+v", in)
	}
	r.u.Apply(s, ui.NotificationsAsk{Ask: true})
	r.Frame()
	r.Type("hello")
	r.Press(key.NameReturn, 0)
	in := r.take()
	only[ui.SendIntent](t, in)
	only[ui.NotificationsIntent](t, in)
	r.Type("again")
	r.Press(key.NameReturn, 0)
	for _, i := range r.take() {
		if _, ok := i.(ui.NotificationsIntent); ok {
			t.Fatal("asked twice")
		}
	}
}

// TestLostDirectConversationCanBeClosed: a direct conversation has no
// leave button, unless the server refused it.
func TestLostDirectConversationCanBeClosed(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(0, 0, 0)
	r.click("Message someone")
	r.Type("mallory")
	r.Press(key.NameReturn, 0)
	room := only[ui.DirectIntent](t, r.take()).Room
	r.mustNotShow("Close conversation")
	r.u.Apply(s, ui.RoomFailed{Room: room, Reason: "This direct conversation is not yours: only its two people can open it."})
	r.Frame()
	r.mustShow("only its two people can open it")
	r.click("Close conversation")
	if in := only[ui.LeaveRoomIntent](t, r.take()); in.Room != room {
		t.Fatalf("leave %+v", in)
	}
	r.mustNotShow("mallory")
}

// TestSwitchingConversationsKeepsTheTextInput: opening another
// conversation, with a click in the list, Alt+Down or Ctrl+K, gives its
// composer the keyboard without closing the text input in between. In
// the browser a close blurs the page's text input, which the app takes
// for the window losing the focus (Gio's ConfigEvent): each switch
// looked like the user turning away and back (a connection check, read
// marks held, a notification possible), and keys typed in between were
// lost.
func TestSwitchingConversationsKeepsTheTextInput(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(0, 0, 0)
	r.u.Apply(s, ui.RoomJoined{Room: "rust", Name: "alice", Count: 1, Head: 1})
	r.history(s, "rust", 1)
	r.Frame()
	keeps := func(how, room string) {
		t.Helper()
		if got := r.u.Open(); got != room {
			t.Fatalf("%s opened %q, want %q", how, got, room)
		}
		if !r.TextInput || r.TextInputCloses != 0 {
			t.Fatalf("%s: the text input is open=%v, closed %d times; want open, never closed", how, r.TextInput, r.TextInputCloses)
		}
	}
	keeps("joining", "general")
	r.click("#random")
	keeps("a click on #random", "random")
	r.Press(key.NameDownArrow, key.ModAlt)
	keeps("Alt+Down", "rust")
	r.Press("K", key.ModShortcut)
	keeps("Ctrl+K", "rust")
	r.Type("gen")
	r.Press(key.NameReturn, 0)
	keeps("Enter in the Ctrl+K panel", "general")
	r.Type("typed at once")
	if got := r.Focused(); got != "typed at once" {
		t.Fatalf("the composer of #general holds %q", got)
	}
}

// TestRoomPanelAsksAgainAfterReconnecting: the room panel opened while
// offline says so, and asks for the rooms again once connected.
func TestRoomPanelAsksAgainAfterReconnecting(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(0, 0, 0)
	r.u.Apply(s, ui.Connection{State: ui.Reconnecting, Err: errors.New("connection refused"), RetryIn: 8 * time.Second})
	r.Frame()
	r.click("Join or create a room")
	only[ui.ListRoomsIntent](t, r.take()) // lost: the client is offline
	r.mustShow("Not connected: the rooms show once the connection is back.")
	r.u.Apply(s, ui.Connection{State: ui.Connected})
	r.Frame()
	if in := only[ui.ListRoomsIntent](t, r.take()); in.Query != "" {
		t.Fatalf("list %+v", in)
	}
	r.mustShow("Looking for rooms")
	r.u.Apply(s, ui.Directory{Rooms: []ui.DirectoryRoom{{Room: "gophers", Members: 12}}})
	r.Frame()
	r.mustShow("#gophers")
	// Answered: another reconnection does not ask again.
	r.u.Apply(s, ui.Connection{State: ui.Connected})
	r.Frame()
	for _, in := range r.take() {
		if _, ok := in.(ui.ListRoomsIntent); ok {
			t.Fatalf("asked again after an answer")
		}
	}
}

// TestLeftRoomStaysLeft: a Joined on its way when the user left the room
// does not bring it back; after the user joins it again, it does.
func TestLeftRoomStaysLeft(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(0, 0, 0)
	if err := r.ClickOn("Leave room"); err != nil {
		t.Fatal(err)
	}
	if in := only[ui.LeaveRoomIntent](t, r.take()); in.Room != "general" {
		t.Fatalf("left %q", in.Room)
	}
	r.u.Apply(s, ui.RoomJoined{Room: "general", Name: "alice", Members: []string{"alice", "bob"}, Count: 2})
	r.Frame()
	r.mustNotShow("#general")

	r.click("Join or create a room")
	r.Type("general")
	r.Press(key.NameReturn, 0)
	if in := only[ui.JoinRoomIntent](t, r.take()); in.Room != "general" {
		t.Fatalf("join %+v", in)
	}
	r.u.Apply(s, ui.RoomJoined{Room: "general", Name: "alice", Members: []string{"alice", "bob"}, Count: 2})
	r.Frame()
	r.mustShow("#general")
	if r.u.Open() != "general" {
		t.Fatalf("open %q", r.u.Open())
	}
}
