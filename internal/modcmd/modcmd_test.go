package modcmd

import (
	"testing"
	"time"

	"chat/protocol"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		line    string
		ok, bad bool
		action  protocol.ModAction
		target  string
		d       time.Duration
		text    string
	}{
		{line: "hello", ok: false},
		{line: "/names", ok: false},
		{line: "/kick bob", ok: true, action: protocol.ModKick, target: "bob"},
		{line: "/KICK bob  spam and eggs ", ok: true, action: protocol.ModKick, target: "bob", text: "spam and eggs"},
		{line: "/kick", ok: true, bad: true},
		{line: "/ban bob", ok: true, action: protocol.ModBan, target: "bob"},
		{line: "/ban bob 7d trolling", ok: true, action: protocol.ModBan, target: "bob", d: 7 * 24 * time.Hour, text: "trolling"},
		{line: "/ban bob 2w", ok: true, action: protocol.ModBan, target: "bob", d: 14 * 24 * time.Hour},
		{line: "/ban bob 1x", ok: true, bad: true},
		{line: "/banip bob 10m", ok: true, action: protocol.ModBanAddress, target: "bob", d: 10 * time.Minute},
		{line: "/mute bob 2h", ok: true, action: protocol.ModMute, target: "bob", d: 2 * time.Hour},
		{line: "/mute bob because", ok: true, bad: true},
		{line: "/unban 2001:db8::1", ok: true, action: protocol.ModUnban, target: "2001:db8::1"},
		{line: "/delete #42", ok: true, action: protocol.ModDelete},
		{line: "/delete 0", ok: true, bad: true},
		{line: "/topic Release on Friday", ok: true, action: protocol.ModTopic, text: "Release on Friday"},
		{line: "/topic -", ok: true, action: protocol.ModTopic},
		{line: "/inviteonly ON", ok: true, action: protocol.ModInviteOnlyOn},
		{line: "/inviteonly maybe", ok: true, bad: true},
		{line: "/invite", ok: true, action: protocol.ModInvite},
		{line: "/invite 1h", ok: true, action: protocol.ModInvite, d: time.Hour},
		{line: "/op bob extra", ok: true, bad: true},
	} {
		cmd, ok, err := Parse(c.line)
		if ok != c.ok || (err != nil) != c.bad {
			t.Errorf("%q: ok %v, err %v", c.line, ok, err)
			continue
		}
		if !ok || err != nil {
			continue
		}
		m := cmd.Moderation
		if m.Action != c.action || m.Target != c.target || m.For != c.d || m.Text != c.text {
			t.Errorf("%q: %+v", c.line, m)
		}
	}
	if cmd, _, _ := Parse("/delete 42"); cmd.Moderation.Seq != 42 {
		t.Errorf("/delete 42: seq %d", cmd.Moderation.Seq)
	}
	if cmd, _, _ := Parse("/topic"); !cmd.ShowTopic {
		t.Error("/topic alone does not show the topic")
	}
	if cmd, _, _ := Parse("/oper tok en"); !cmd.Oper || cmd.Token != "tok en" {
		t.Errorf("/oper: %+v", cmd)
	}
}
