package ui

import (
	"strings"
	"time"

	"chat/client"
	"chat/internal/modcmd"
	"chat/protocol"
)

// Commands typed in the composer: /join ROOM [CODE], /help, and the
// moderation commands of internal/modcmd (/kick, /ban, /topic…), which
// the UI parses and hands to the app loop as a ModerateIntent. "//"
// starts a message that begins with "/".

// command handles a line of the composer that starts with "/". A line
// that cannot be done stays in the composer, with the reason above it,
// for the user to fix.
func (c *chatScreen) command(u *UI, line string) {
	now := u.now()
	name, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	arg = strings.TrimSpace(arg)
	done := func() {
		c.composer.SetText("")
		c.problem = ""
	}
	switch strings.ToLower(name) {
	case "/join":
		room, code, _ := strings.Cut(arg, " ")
		if p := u.shell.joinRoomWith(u, room, strings.TrimSpace(code)); p != "" {
			c.problem = p
			return
		}
		done()
		return
	case "/help":
		done()
		c.log.notice("Commands: /join ROOM [INVITE-CODE] joins a room; //text sends a line that starts with /", now)
		for _, h := range modcmd.Help {
			c.log.notice(h[0]+": "+h[1], now)
		}
		c.scrollToEnd()
		return
	}
	cmd, ok, err := modcmd.Parse(line)
	switch {
	case !ok:
		c.problem = "Unknown command " + name + ": /help lists the commands; start a message with // to send a line that begins with /."
		return
	case err != nil:
		c.problem = strings.ToUpper(err.Error()[:1]) + err.Error()[1:] + "."
		return
	}
	done()
	if cmd.ShowTopic {
		if c.topic == "" {
			c.log.notice("No topic is set in "+c.title(), now)
		} else {
			c.log.notice("Topic: "+c.topic, now)
		}
		c.scrollToEnd()
		return
	}
	u.emit(ModerateIntent{Room: c.room, Command: cmd})
}

// modEvent shows what an operator did as a line of the conversation and
// keeps what the header shows.
func (c *chatScreen) modEvent(e client.ModEvent, now time.Time) {
	switch e.Action {
	case protocol.ModTopic:
		c.topic = e.Text
	case protocol.ModDelete:
		c.log.deleteSeq(e.Seq)
	case protocol.ModInviteOnlyOn, protocol.ModInviteOnlyOff:
		c.inviteOnly = e.Action == protocol.ModInviteOnlyOn
	case protocol.ModOp, protocol.ModDeop:
		if e.Self {
			c.operator = e.Action == protocol.ModOp
		}
	case protocol.ModMute, protocol.ModUnmute:
		if e.Self {
			c.muted = e.Action == protocol.ModMute
		}
	}
	if text := modcmd.EventText(e); text != "" {
		c.log.notice(text, now)
	}
}
