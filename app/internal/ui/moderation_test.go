package ui_test

import (
	"image"
	"testing"
	"time"

	"gioui.org/io/key"

	"chat/app/internal/ui"
	"chat/client"
	"chat/protocol"
)

// typeLine types text in the open conversation's composer and presses
// Enter.
func (r *rig) typeLine(text string) {
	r.t.Helper()
	r.Type(text)
	r.Press(key.NameReturn, 0)
	r.Frame()
}

// TestModerationCommandsInTheComposer: a moderation command typed in the
// composer becomes a ModerateIntent for the open room, parsed (target,
// duration, reason), and leaves the composer empty; a wrong one stays
// there with how to type it; an unknown one says so; "//" sends a line
// that starts with "/"; /help lists the commands in the conversation.
func TestModerationCommandsInTheComposer(t *testing.T) {
	r := newRigSized(t, wide)
	r.inRooms(0, 0, 0)

	r.typeLine("/ban bob 2h flooding the room")
	in := only[ui.ModerateIntent](t, r.take())
	m := in.Command.Moderation
	if in.Room != "general" || m.Action != protocol.ModBan || m.Target != "bob" || m.For != 2*time.Hour || m.Text != "flooding the room" {
		t.Fatalf("intent %+v", in)
	}
	r.mustShow("Message #general") // the composer is empty again: its hint shows

	r.typeLine("/kick")
	if in := r.take(); len(in) != 0 {
		t.Fatalf("a /kick without a name asked %#v", in)
	}
	r.mustShow("Usage: /kick NAME [reason].")
	r.mustShow("/kick") // left in the composer to fix
	r.Type(" bob")
	r.Press(key.NameReturn, 0)
	r.Frame()
	if in := only[ui.ModerateIntent](t, r.take()); in.Command.Moderation.Action != protocol.ModKick || in.Command.Moderation.Target != "bob" {
		t.Fatalf("intent %+v", in)
	}
	r.mustNotShow("Usage: /kick NAME [reason].")

	r.typeLine("/frobnicate")
	r.mustShow("Unknown command /frobnicate: /help lists the commands; start a message with // to send a line that begins with /.")
	r.take()
	for range len("/frobnicate") {
		r.Press(key.NameDeleteBackward, 0)
	}
	r.typeLine("//frobnicate")
	if in := only[ui.SendIntent](t, r.take()); in.Text != "/frobnicate" {
		t.Fatalf("// sent %q", in.Text)
	}

	r.typeLine("/help")
	r.mustShow("/kick NAME [reason]: remove NAME from the room (it may come back)")
	r.mustShow("/invite [DURATION]: make an invite code (valid 7 days unless DURATION); /join ROOM CODE uses it")

	r.typeLine("/oper s3cret")
	if in := only[ui.ModerateIntent](t, r.take()); !in.Command.Oper || in.Command.Token != "s3cret" {
		t.Fatalf("oper intent %+v", in)
	}
	r.typeLine("/join club INVITE42")
	if in := only[ui.JoinRoomIntent](t, r.take()); in.Room != "club" || in.Invite != "INVITE42" {
		t.Fatalf("join intent %+v", in)
	}
}

// TestModerationShownInTheConversation: the topic under the room's title
// (from the join, then as an operator changes it), MODEVENTs as lines, a
// deleted message shown as "message deleted" without its text, a refused
// command's reason over the composer, an invite code as a line, and a
// kick: the room stays listed with why and a Join again that joins it.
func TestModerationShownInTheConversation(t *testing.T) {
	r := newRigSized(t, wide)
	s := r.joined()
	r.u.Apply(s, ui.RoomJoined{Room: "general", Name: "alice", Members: []string{"alice", "bob"}, Count: 2, Resumed: true,
		Topic: "Release on Friday", Operator: true})
	r.u.Apply(s, bobSays("general", 1, "buy cheap watches"))
	r.u.Apply(s, bobSays("general", 2, "a fine message"))
	r.Frame()
	r.mustShow("Release on Friday")
	r.mustShow("buy cheap watches")

	r.u.Apply(s, client.ModEvent{Room: "general", Action: protocol.ModTopic, Actor: "carol", Text: "Release moved to Monday"})
	r.u.Apply(s, client.ModEvent{Room: "general", Action: protocol.ModDelete, Actor: "carol", Seq: 1})
	r.Frame()
	r.mustShow("Release moved to Monday")
	r.mustNotShow("Release on Friday")
	r.mustShow("carol set the topic: Release moved to Monday")
	r.mustShow("carol deleted message 1")
	r.mustNotShow("buy cheap watches")
	r.mustShow("message deleted")
	r.mustShow("a fine message")

	// A message that arrives deleted (history) shows so too.
	r.u.Apply(s, client.Message{Room: "general", Seq: 3, Time: time.Now(), Sender: "bob", ID: "x", Deleted: true})
	r.u.Apply(s, client.ModEvent{Room: "general", Action: protocol.ModMute, Actor: "carol", Target: "bob", Until: time.Now().Add(time.Hour)})
	r.Frame()
	r.mustShow("carol muted bob until ")

	r.u.Apply(s, ui.ModerateResult{Room: "general", Err: "not allowed: you are not an operator of #general"})
	r.u.Apply(s, ui.ModerateResult{Room: "general", Text: "Invite code for #general: K3Y (valid 1h); to join with it: /join general K3Y."})
	r.Frame()
	r.mustShow("Not done: not allowed: you are not an operator of #general")
	r.mustShow("Invite code for #general: K3Y (valid 1h); to join with it: /join general K3Y.")

	r.u.Apply(s, client.ModEvent{Room: "general", Action: protocol.ModKick, Actor: "carol", Target: "alice", Self: true, Text: "spam"})
	r.u.Apply(s, ui.RoomFailed{Room: "general", Reason: "You were kicked from #general: spam; /join general to come back."})
	r.Frame()
	r.mustShow("carol kicked you (spam)")
	r.mustShow("You were kicked from #general: spam; /join general to come back.")
	r.mustShow("#general") // still listed
	r.take()
	r.click("Join again")
	if in := only[ui.JoinRoomIntent](t, r.take()); in.Room != "general" {
		t.Fatalf("join again %+v", in)
	}
	r.mustNotShow("You were kicked from #general")
	r.u.Apply(s, ui.RoomJoined{Room: "general", Name: "alice", Members: []string{"alice", "bob"}, Count: 2, Resumed: true, Muted: true,
		Topic: "Release moved to Monday"})
	r.Frame()
	r.mustShow("You are muted in #general: your messages are refused")
}

// TestRenderModeration draws a room with a topic, moderation lines and a
// deleted message, then the same room after a kick (why, and Join
// again), and checks the topic and the deleted message are drawn muted.
func TestRenderModeration(t *testing.T) {
	s := newScene(t, false, image.Pt(960, 600), 1.5)
	th := s.u.Theme()
	s.join(t)
	s.u.Apply(s.session, ui.RoomJoined{Room: "general", Name: "ada", Members: []string{"ada", "grace", "linus", "ken"}, Count: 4,
		Resumed: true, Topic: "Release on Friday: freeze at noon", Operator: true})
	s.conversation()
	s.u.Apply(s.session, client.Message{Room: "general", Seq: 6, Time: sceneNow, Sender: "ken", ID: "k6", Text: "buy cheap watches"})
	s.u.Apply(s.session, client.ModEvent{Room: "general", Action: protocol.ModDelete, Actor: "ada", Seq: 6})
	s.u.Apply(s.session, client.ModEvent{Room: "general", Action: protocol.ModMute, Actor: "ada", Target: "ken", Until: sceneNow.Add(time.Hour)})
	s.Frame()
	img := render(t, s)
	checkNotBlank(t, img, th.Bg)
	checkText(t, s, img, "Release on Friday: freeze at noon", th.Muted, th.Surface)
	checkText(t, s, img, "message deleted", th.Muted, th.Surface)
	if !s.Shows("#5 · ") {
		t.Errorf("an operator does not see the messages' numbers (for /delete); the screen shows %q", s.Texts())
	}
	save(t, img, "moderation.png")

	s.u.Apply(s.session, client.ModEvent{Room: "general", Action: protocol.ModKick, Actor: "grace", Target: "ada", Self: true, Text: "off topic"})
	s.u.Apply(s.session, ui.RoomFailed{Room: "general", Reason: "You were removed from general by grace (off topic); you may join again; /join general to come back."})
	s.Frame()
	img = render(t, s)
	checkText(t, s, img, "Join again", th.ContrastFg, th.ContrastBg)
	save(t, img, "moderation-kicked.png")
}

// TestInviteCodeInTheForm: an invite code typed after the room's name in
// the form goes with the join.
func TestInviteCodeInTheForm(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878", Name: "bob", Room: "club"})
	r.Press(key.NameTab, 0) // name → room
	r.Press(key.NameEnd, 0)
	r.Type(" K3Y")
	r.Press(key.NameReturn, 0)
	if j := only[ui.JoinIntent](t, r.take()); j.Room != "club" || j.Invite != "K3Y" {
		t.Fatalf("join intent = %+v; want club with the invite code K3Y", j)
	}
}
