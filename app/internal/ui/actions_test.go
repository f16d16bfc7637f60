package ui_test

import (
	"image"
	"strconv"
	"testing"
	"time"

	"gioui.org/f32"
	"gioui.org/io/key"
	"gioui.org/io/pointer"

	"chat/app/internal/ui"
	"chat/client"
	"chat/protocol"
)

// hoverOn moves the mouse over the first text containing s, as a person
// pointing at a message does, and runs a frame.
func (r *rig) hoverOn(s string) {
	r.t.Helper()
	n, ok := r.Find(s)
	if !ok {
		r.t.Fatalf("nothing shows %q; shown: %q", s, r.Texts())
	}
	c := n.Bounds.Min.Add(n.Bounds.Max).Div(2)
	r.Router.Queue(pointer.Event{Kind: pointer.Move, Source: pointer.Mouse, Position: f32.Pt(float32(c.X), float32(c.Y))})
	r.Frame()
	r.Frame()
}

func (r *rig) mustClick(s string) {
	r.t.Helper()
	if err := r.ClickOn(s); err != nil {
		r.t.Fatal(err)
	}
}

// inGeneral joins alice into #general, with bob's message 1 and alice's
// own message 2.
func (r *rig) inGeneral() uint64 {
	r.t.Helper()
	s := r.joined()
	r.u.Apply(s, bobSays("general", 1, "hello from bob, first line"))
	own := client.Message{Room: "general", Seq: 2, Time: time.Now(), Sender: "alice", ID: "a2", Text: "my own words", Own: true}
	r.u.Apply(s, own)
	r.Frame()
	r.take()
	return s
}

// TestActionsShowOnHover: pointing at a message shows its actions; our
// own has Edit and Delete, another's not (we are no operator).
func TestActionsShowOnHover(t *testing.T) {
	r := newRigSized(t, wide)
	r.inGeneral()
	r.mustNotShow("Reply")
	r.hoverOn("hello from bob")
	r.mustShow("Reply")
	r.mustShow("React")
	r.mustShow("Copy link")
	r.mustNotShow("Edit")
	r.mustNotShow("Delete")
	r.hoverOn("my own words")
	r.mustShow("Edit")
	r.mustShow("Delete")

	r.mustClick("Copy link")
	if got, _ := r.Clipboard(); got != "chat://general/2" {
		t.Errorf("the link copied is %q, want chat://general/2", got)
	}
	r.hoverOn("hello from bob")
	r.mustClick("Copy text")
	if got, _ := r.Clipboard(); got != "hello from bob, first line" {
		t.Errorf("the text copied is %q", got)
	}
}

// TestReplyFromTheActions: Reply makes the composer answer the message,
// the reply is sent with it and shows a quote that jumps to it.
func TestReplyFromTheActions(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inGeneral()
	r.hoverOn("hello from bob")
	r.mustClick("Reply")
	r.mustShow("Replying to bob: hello from bob, first line")
	r.Type("yes indeed")
	r.Press(key.NameReturn, 0)
	send := only[ui.SendIntent](t, r.take())
	if send.Reply != 1 || send.Text != "yes indeed" {
		t.Fatalf("sent %+v, want the text with Reply 1", send)
	}
	r.mustNotShow("Replying to")
	r.mustShow("↩ bob: hello from bob, first line")
	r.u.Apply(s, ui.SendResult{Token: send.Token, Room: "general", ID: "a3"})
	r.u.Apply(s, client.Acked{Room: "general", ID: "a3", Seq: 3, Time: time.Now()})
	r.Frame()

	// Cancelled with Esc, or with its button.
	r.hoverOn("hello from bob")
	r.mustClick("Reply")
	r.mustShow("Replying to bob")
	r.Press(key.NameEscape, 0)
	r.mustNotShow("Replying to bob")
	r.hoverOn("hello from bob")
	r.mustClick("Reply")
	r.mustClick("Cancel reply")
	r.mustNotShow("Replying to bob")
}

// TestQuoteJumpsToAMessageNotLoaded: the quote of a reply to a message
// outside the window asks for the page around it, and shows it.
func TestQuoteJumpsToAMessageNotLoaded(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.joined()
	// The join replays 300..310; 310 answers 120.
	for seq := uint64(300); seq <= 310; seq++ {
		m := bobSays("general", seq, "later "+itoa(seq))
		m.History = true
		if seq == 310 {
			m.Reply = 120
		}
		r.u.Apply(s, m)
	}
	r.Frame()
	r.take()
	// The quote cannot be shown from the window: it says so, and jumps.
	r.mustShow("↩ an earlier message")
	r.take()
	r.mustClick("↩ an earlier message")
	r.Frame()
	var load *ui.LoadOlderIntent
	for _, in := range r.take() {
		if l, ok := in.(ui.LoadOlderIntent); ok {
			load = &l
		}
	}
	if load == nil || load.Before != 120+50 {
		t.Fatalf("the jump asked for %+v, want the page before 170", load)
	}
	page := client.Page{Room: "general", Before: load.Before}
	for seq := uint64(70); seq < 170; seq++ {
		page.Messages = append(page.Messages, bobSays("general", seq, "early "+itoa(seq)))
	}
	r.u.Apply(s, page)
	r.Frame()
	r.Frame()
	r.mustShow("early 120")
	if _, low, high, _, end := r.u.ListWindow(); low != 70 || high != 169 || end {
		t.Fatalf("window %d..%d (end %v), want 70..169 detached from the end", low, high, end)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestReactions: the picker sends a reaction; the chip shows the count,
// ours highlighted, who reacted; a click on it takes ours back.
func TestReactions(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inGeneral()
	r.hoverOn("hello from bob")
	r.mustClick("React")
	for _, e := range protocol.Reactions {
		r.mustShow("React " + e)
	}
	r.mustClick("React 👍")
	react := only[ui.ReactIntent](t, r.take())
	if react != (ui.ReactIntent{Room: "general", Seq: 1, Emoji: "👍", On: true}) {
		t.Fatalf("react intent %+v", react)
	}
	r.mustNotShow("React 🎉")
	r.u.Apply(s, ui.MessageChanged{Room: "general", Seq: 3, Target: 1, Kind: protocol.ChangeReact, Actor: "alice", Own: true,
		State: &ui.MessageState{Text: "hello from bob, first line", Reactions: []ui.Reaction{{Emoji: "👍", Count: 2, Names: []string{"carol", "alice"}, Mine: true}}}})
	r.Frame()
	r.mustShow("👍 2: carol, alice (yours)")
	r.mustClick("👍 2")
	react = only[ui.ReactIntent](t, r.take())
	if react.On || react.Emoji != "👍" || react.Seq != 1 {
		t.Fatalf("a click on our chip gave %+v, want our reaction taken back", react)
	}
	r.Frame()
	r.mustShow("👍 carol, alice") // the mouse is on the chip: who reacted
	r.wantUnread("general", 0, 0)
}

// TestEditWithUpArrow: Up in an empty composer edits our last message;
// Enter saves it, Esc cancels and gives back what was typed before.
func TestEditWithUpArrow(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inGeneral()
	r.Press(key.NameUpArrow, 0)
	r.mustShow("Editing your message")
	if got := r.Focused(); got != "my own words" {
		t.Fatalf("the composer holds %q, want the message to edit", got)
	}
	r.Type(" (fixed)")
	r.Press(key.NameReturn, 0)
	edit := only[ui.EditIntent](t, r.take())
	if edit != (ui.EditIntent{Room: "general", Seq: 2, Text: "my own words (fixed)"}) {
		t.Fatalf("edit intent %+v", edit)
	}
	r.mustNotShow("Editing your message")
	if got := r.Focused(); got != "" {
		t.Fatalf("the composer holds %q after saving", got)
	}
	r.u.Apply(s, ui.MessageChanged{Room: "general", Seq: 3, Target: 2, Kind: protocol.ChangeEdit, Actor: "alice", Own: true,
		State: &ui.MessageState{Text: "my own words (fixed)", Edited: time.Now()}})
	r.Frame()
	r.mustShow("my own words (fixed)")
	r.mustShow("(edited)")

	// Esc cancels, and what was typed comes back.
	r.Type("half a thought")
	r.Press(key.NameHome, 0)
	r.hoverOn("my own words")
	r.mustClick("Edit")
	if got := r.Focused(); got != "my own words (fixed)" {
		t.Fatalf("the composer holds %q", got)
	}
	r.Press(key.NameEscape, 0)
	r.mustNotShow("Editing your message")
	if got := r.Focused(); got != "half a thought" {
		t.Fatalf("after Esc the composer holds %q, want the draft back", got)
	}
	if in := r.take(); len(in) != 0 {
		for _, i := range in {
			if _, ok := i.(ui.EditIntent); ok {
				t.Fatalf("a cancelled edit was sent: %#v", in)
			}
		}
	}
}

// TestDeleteFromTheActions: Delete asks to delete; the change shows the
// placeholder, and an operator may delete another's message.
func TestDeleteFromTheActions(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inGeneral()
	r.hoverOn("my own words")
	r.mustClick("Delete")
	del := only[ui.DeleteIntent](t, r.take())
	if del != (ui.DeleteIntent{Room: "general", Seq: 2}) {
		t.Fatalf("delete intent %+v", del)
	}
	r.u.Apply(s, ui.MessageChanged{Room: "general", Seq: 3, Target: 2, Kind: protocol.ChangeDelete, Actor: "alice", Own: true,
		State: &ui.MessageState{Deleted: true, Edited: time.Now()}})
	r.Frame()
	r.mustNotShow("my own words")
	r.mustShow("message deleted")

	r.u.Apply(s, ui.RoomJoined{Room: "general", Name: "alice", Members: []string{"alice", "bob"}, Count: 2, Operator: true, Head: 3, Read: 3})
	r.Frame()
	r.hoverOn("hello from bob")
	r.mustClick("Delete")
	if del := only[ui.DeleteIntent](t, r.take()); del.Seq != 1 {
		t.Fatalf("an operator's delete gave %+v", del)
	}
}

// TestChangesAreNotUnread: changes have numbers of their own in the room
// but are not messages: they never count as unread.
func TestChangesAreNotUnread(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(2, 2, 0)
	r.wantUnread("random", 0, 0)
	r.u.Apply(s, ui.MessageChanged{Room: "random", Seq: 3, Target: 1, Kind: protocol.ChangeReact, Actor: "bob",
		State: &ui.MessageState{Text: "random 1", Reactions: []ui.Reaction{{Emoji: "🎉", Count: 1, Names: []string{"bob"}}}}})
	r.u.Apply(s, ui.MessageChanged{Room: "random", Seq: 4, Target: 2, Kind: protocol.ChangeEdit, Actor: "bob",
		State: &ui.MessageState{Text: "random 2 again", Edited: time.Now()}})
	r.wantUnread("random", 0, 0)
	r.u.Apply(s, bobSays("random", 5, "news"))
	r.wantUnread("random", 1, 0)
	// A replayed change (no state) is not news either.
	r.u.Apply(s, ui.MessageChanged{Room: "random", Seq: 6, Target: 5, Kind: protocol.ChangeReact, Actor: "bob"})
	r.wantUnread("random", 1, 0)
}

// TestTypingLine: "bob is typing…" shows above the composer until his
// message comes, his stop, or 6 s without another.
func TestTypingLine(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	r := newRig(t, ui.Config{Server: "localhost:7878", Now: clock})
	s := r.joined()
	r.u.Apply(s, ui.Typing{Room: "general", Name: "bob"})
	r.Frame()
	r.mustShow("bob is typing…")
	r.u.Apply(s, ui.Typing{Room: "general", Name: "carol"})
	r.Frame()
	r.mustShow("bob and carol are typing…")
	r.u.Apply(s, bobSays("general", 1, "done"))
	r.u.Apply(s, ui.Typing{Room: "general", Name: "carol", Stopped: true})
	r.Frame()
	r.mustNotShow("typing…")

	r.u.Apply(s, ui.Typing{Room: "general", Name: "bob"})
	r.Frame()
	r.mustShow("bob is typing…")
	r.Frame()
	r.mustShow("bob is typing…")
	// The typing line expires 6 s after the last event; the driver's
	// frames are 16 ms apart, so the UI's clock is moved instead.
	now = now.Add(6*time.Second + time.Millisecond)
	r.Frame()
	r.mustNotShow("typing…")
}

// TestTypingIntents: typing in the composer tells the room; sending or
// clearing it tells it the user stopped.
func TestTypingIntents(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878"})
	r.joined()
	r.take()
	r.Type("h")
	if in := only[ui.TypingIntent](t, r.take()); in.Stopped || in.Room != "general" {
		t.Fatalf("typing gave %+v", in)
	}
	r.Press(key.NameReturn, 0)
	if in := only[ui.TypingIntent](t, r.take()); !in.Stopped {
		t.Fatalf("sending gave %+v, want stopped", in)
	}
	r.Type("/help")
	for _, in := range r.take() {
		if _, ok := in.(ui.TypingIntent); ok {
			t.Fatalf("a command counts as typing: %#v", in)
		}
	}
}

// TestSearchPanel: Ctrl+F opens the search; Enter asks; the hits show
// with where, who and the words; a click opens the conversation at that
// message; an error shows as a sentence.
func TestSearchPanel(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(0, 3, 0)
	r.Press("F", key.ModShortcut)
	r.mustShow("Words to look for")
	r.Type("deploy")
	r.Press(key.NameReturn, 0)
	q := only[ui.SearchIntent](t, r.take())
	if q.Query != "deploy" || !q.Before.IsZero() {
		t.Fatalf("search intent %+v", q)
	}
	r.mustShow("Searching…")
	at := time.Date(2026, 3, 4, 10, 30, 0, 0, time.Local)
	r.u.Apply(s, ui.SearchResults{Query: "deploy", More: true, Hits: []ui.SearchHit{
		{Room: "random", Seq: 2, Time: at, Sender: "bob", Text: "we deploy on Friday", Matches: []protocol.Span{{Start: 3, End: 9}}},
	}})
	r.Frame()
	r.mustShow("#random · bob · 4 Mar 10:30")
	r.mustShow("we deploy on Friday")
	r.mustClick("Older results")
	if more := only[ui.SearchIntent](t, r.take()); !more.Before.Equal(at) {
		t.Fatalf("older results asked with %+v", more)
	}
	r.u.Apply(s, ui.SearchResults{Query: "deploy", Before: at, Err: "The server cannot search: it was started without search."})
	r.Frame()
	r.mustShow("The server cannot search")

	r.mustClick("we deploy on Friday")
	r.mustNotShow("Words to look for")
	if r.u.Open() != "random" {
		t.Fatalf("the hit opened %q, want random", r.u.Open())
	}
	r.mustShow("random 2")
}

// TestMessageLinkOpensTheMessage: a chat:// link in a message opens its
// conversation at the message instead of a browser.
func TestMessageLinkOpensTheMessage(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(3, 3, 0)
	r.u.Apply(s, bobSays("general", 1, "look chat://random/2 here"))
	r.Frame()
	r.take()
	n, ok := r.Find("chat://random/2")
	if !ok {
		t.Fatalf("no link shown: %q", r.Texts())
	}
	r.Click(f32.Pt(float32(n.Target.Min.X+4), float32(n.Target.Min.Y+4)))
	for _, in := range r.take() {
		if _, ok := in.(ui.OpenURLIntent); ok {
			t.Fatalf("a message link went to the browser: %#v", in)
		}
	}
	if r.u.Open() != "random" {
		t.Fatalf("the link opened %q, want random", r.u.Open())
	}
	if ui.MessageLink("Random", 2) != "chat://random/2" {
		t.Fatal(ui.MessageLink("Random", 2))
	}
}

// TestLongPressShowsActions: on a touch screen a long press shows the
// actions.
func TestLongPressShowsActions(t *testing.T) {
	r := newRigSized(t, narrow)
	r.inGeneral()
	n, _ := r.Find("hello from bob")
	p := n.Bounds.Min.Add(image.Pt(10, 5))
	r.Router.Queue(pointer.Event{Kind: pointer.Press, Source: pointer.Touch, Buttons: pointer.ButtonPrimary, Position: f32.Pt(float32(p.X), float32(p.Y))})
	// The driver's clock moves 16 ms a frame: hold for the long press.
	for range 40 {
		r.Step()
	}
	r.mustShow("Reply")
	r.Router.Queue(pointer.Event{Kind: pointer.Release, Source: pointer.Touch, Position: f32.Pt(float32(p.X), float32(p.Y))})
	r.Frame()
	r.mustShow("Reply")
	r.Press(key.NameBack, 0)
	r.mustNotShow("Reply")
}

// TestRenderActingOnMessages draws a conversation with a reply, an
// edited message, reactions, the action bar of a message pointed at, the
// typing line and the reply banner, then the search panel with a hit's
// words highlighted (dist/screenshots/actions*.png).
func TestRenderActingOnMessages(t *testing.T) {
	s := newScene(t, false, image.Pt(960, 600), 1.5)
	th := s.u.Theme()
	s.join(t)
	at := func(min int) time.Time { return sceneNow.Add(time.Duration(min-20) * time.Minute) }
	s.u.Apply(s.session, client.Message{Room: "general", Seq: 1, Time: at(0), Sender: "grace", ID: "g1", Text: "Shall we deploy the release tonight?", History: true,
		Reactions: []client.Reaction{{Emoji: "👍", Count: 2, Names: []string{"linus", "ada"}, Mine: true}, {Emoji: "🎉", Count: 1, Names: []string{"ken"}}}})
	s.u.Apply(s.session, client.Message{Room: "general", Seq: 2, Time: at(2), Sender: "ada", ID: "a2", Text: "Yes, after the freeze at noon.", Own: true, Reply: 1, Edited: at(3), History: true})
	s.u.Apply(s.session, client.Message{Room: "general", Seq: 3, Time: at(4), Sender: "linus", ID: "l3", Text: "I will watch the dashboards.", History: true})
	s.u.Apply(s.session, ui.Typing{Room: "general", Name: "ken"})
	s.Frame()
	n, ok := s.Find("I will watch the dashboards.")
	if !ok {
		t.Fatalf("no message shown: %q", s.Texts())
	}
	c := n.Bounds.Min.Add(n.Bounds.Max).Div(2)
	s.Router.Queue(pointer.Event{Kind: pointer.Move, Source: pointer.Mouse, Position: f32.Pt(float32(c.X), float32(c.Y))})
	s.Frame()
	s.Frame()
	if !s.Shows("Reply") || !s.Shows("(edited)") || !s.Shows("↩ grace: Shall we deploy") || !s.Shows("ken is typing…") {
		t.Fatalf("the scene lacks a part; it shows %q", s.Texts())
	}
	if err := s.ClickOn("Reply"); err != nil {
		t.Fatal(err)
	}
	s.Frame()
	img := render(t, s)
	checkNotBlank(t, img, th.Bg)
	checkText(t, s, img, "(edited)", th.Muted, th.Own)
	checkText(t, s, img, "ken is typing…", th.Muted, th.Bg)
	save(t, img, "actions.png")

	s.Press("F", key.ModShortcut)
	s.Type("deploy")
	s.Press(key.NameReturn, 0)
	s.u.Apply(s.session, ui.SearchResults{Query: "deploy", Hits: []ui.SearchHit{
		{Room: "general", Seq: 1, Time: at(0), Sender: "grace", Text: "Shall we deploy the release tonight?", Matches: []protocol.Span{{Start: 9, End: 15}}},
	}})
	s.Frame()
	img = render(t, s)
	save(t, img, "actions-search.png")
}

// TestReplyWhileEditingGivesTheDraftBack: Reply during an edit ends the
// edit: the composer gets back what was typed before it, and the edited
// text is not sent as the reply.
func TestReplyWhileEditingGivesTheDraftBack(t *testing.T) {
	r := newRigSized(t, wide)
	r.inGeneral()
	r.Type("half a thought")
	r.hoverOn("my own words")
	r.mustClick("Edit")
	if got := r.Focused(); got != "my own words" {
		t.Fatalf("the composer holds %q", got)
	}
	r.hoverOn("hello from bob")
	r.mustClick("Reply")
	r.mustNotShow("Editing your message")
	r.mustShow("Replying to bob")
	if got := r.Focused(); got != "half a thought" {
		t.Fatalf("replying, the composer holds %q, want the draft back", got)
	}
	r.Press(key.NameReturn, 0)
	send := only[ui.SendIntent](t, r.take())
	if send.Reply != 1 || send.Text != "half a thought" {
		t.Fatalf("sent %+v, want the draft as the reply to 1", send)
	}
}

// TestSearchOlderResultsKeepTheQuery: "Older results" pages the query
// the hits answer, even when the field was changed since; its answer is
// taken.
func TestSearchOlderResultsKeepTheQuery(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(0, 3, 0)
	r.Press("F", key.ModShortcut)
	r.Type("deploy")
	r.Press(key.NameReturn, 0)
	only[ui.SearchIntent](t, r.take())
	at := time.Date(2026, 3, 4, 10, 30, 0, 0, time.Local)
	r.u.Apply(s, ui.SearchResults{Query: "deploy", More: true, Hits: []ui.SearchHit{
		{Room: "random", Seq: 2, Time: at, Sender: "bob", Text: "we deploy on Friday"},
	}})
	r.Frame()
	r.Type(" tomorrow") // changed, not asked
	r.mustClick("Older results")
	more := only[ui.SearchIntent](t, r.take())
	if more.Query != "deploy" || !more.Before.Equal(at) {
		t.Fatalf("older results asked with %+v, want deploy before %v", more, at)
	}
	r.u.Apply(s, ui.SearchResults{Query: "deploy", Before: at, Hits: []ui.SearchHit{
		{Room: "random", Seq: 1, Time: at.Add(-time.Hour), Sender: "bob", Text: "deploy notes"},
	}})
	r.Frame()
	r.mustShow("deploy notes")
}

// TestMessageLinkToABadRoomSaysSo: a chat:// link to a room that cannot
// be joined says why in the conversation, instead of doing nothing.
func TestMessageLinkToABadRoomSaysSo(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.inRooms(3, 3, 0)
	r.u.Apply(s, bobSays("general", 1, "look chat://no\u200bsuch/2 here"))
	r.Frame()
	r.take()
	n, ok := r.Find("chat://no\u200bsuch/2")
	if !ok {
		t.Fatalf("no link shown: %q", r.Texts())
	}
	r.Click(f32.Pt(float32(n.Target.Min.X+4), float32(n.Target.Min.Y+4)))
	r.Frame()
	if in := r.take(); len(in) != 0 {
		t.Fatalf("the link asked for %#v", in)
	}
	if r.u.Open() != "general" {
		t.Fatalf("the link opened %q", r.u.Open())
	}
	r.Frame()
	r.mustShow("cannot be opened. That room name cannot be used")
}
