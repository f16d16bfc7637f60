package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"chat/client"
	"chat/internal/modcmd"
	"chat/protocol"
)

// Moderation commands (internal/modcmd): /oper, /op, /deop, /kick, /ban,
// /banip, /unban, /mute, /unmute, /delete, /topic, /inviteonly, /invite.
// Each asks the server in the background (the transcript goes on
// meanwhile) and prints the answer: the room's MODEVENT line for actions
// the room hears of, the invite code or "you are a server operator" for
// those it does not, or the server's refusal as a sentence.

// modTimeout bounds the wait for the server's answer to a command.
const modTimeout = 30 * time.Second

// modCommand handles a moderation command (and /seqs); it reports false
// for a line that is not one.
func (t *term) modCommand(line string) bool {
	if name, arg, _ := strings.Cut(strings.TrimSpace(line), " "); name == "/seqs" {
		switch strings.ToLower(strings.TrimSpace(arg)) {
		case "on", "":
			t.seqs = false
			t.numbersOn()
		case "off":
			t.seqs = false
		default:
			t.fail("usage: /seqs on|off")
		}
		return true
	}
	cmd, ok, err := modcmd.Parse(line)
	switch {
	case !ok:
		return false
	case err != nil:
		t.fail("%v", err)
	case cmd.Oper:
		t.oper(cmd.Token)
	case cmd.ShowTopic:
		t.showTopic()
	default:
		t.moderate(cmd.Name, cmd.Moderation)
	}
	return true
}

func (t *term) oper(token string) {
	t.mods++
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), modTimeout)
		defer cancel()
		err := t.c.Oper(ctx, token)
		t.later(func() {
			t.mods--
			if err != nil {
				t.fail("/oper: %s", modcmd.ErrorText(err))
				return
			}
			fmt.Fprintln(t.out, "-- you are a server operator: you may moderate every room")
		})
	}()
}

// moderate asks for m in the current room and prints the answer when it
// comes. The room's MODEVENT tells what was done; the answer itself is
// printed only where no MODEVENT comes (an invite, or a room the
// terminal is not in).
func (t *term) moderate(cmd string, m client.Moderation) {
	room := t.current
	if room == "" {
		t.fail("%s: you are in no room; /join one", cmd)
		return
	}
	v := t.views[room]
	label := v.label
	t.mods++
	if !v.joined {
		// A script's lines come before the room is joined: the
		// command waits for it, as the lines typed for the room do.
		v.waiting = append(v.waiting, func() { t.mods--; t.moderate(cmd, m) })
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), modTimeout)
		defer cancel()
		ans, err := t.c.Moderate(ctx, room, m)
		t.later(func() {
			t.mods--
			switch {
			case err != nil:
				t.fail("%s in %s: %s", cmd, label, clean(modcmd.ErrorText(err)))
			case ans.Action == protocol.ModInvite:
				fmt.Fprintf(t.out, "-- %s\n", clean(modcmd.InviteText(ans.Room, ans.Invite, m.For)))
			case t.views[room] == nil || !t.views[room].joined:
				fmt.Fprintf(t.out, "-- done: %s in %s\n", ans.Action, label)
			}
		})
	}()
}

// later runs f on the terminal's loop (it prints, and reads the views).
func (t *term) later(f func()) {
	select {
	case t.results <- f:
	case <-t.c.Done():
	}
}

func (t *term) showTopic() {
	v := t.views[t.current]
	switch {
	case v == nil:
		t.fail("/topic: you are in no room")
	case v.topic == "":
		fmt.Fprintf(t.out, "-- %s has no topic\n", v.label)
	default:
		fmt.Fprintf(t.out, "-- topic of %s: %s\n", v.label, clean(v.topic))
	}
}

// modEvent prints a MODEVENT and keeps the room's topic.
func (t *term) modEvent(e client.ModEvent) {
	v := t.views[e.Room]
	if v == nil {
		return
	}
	switch e.Action {
	case protocol.ModTopic:
		v.topic = e.Text
	case protocol.ModOp, protocol.ModDeop:
		if e.Self {
			v.operator = e.Action == protocol.ModOp
		}
	}
	if e.Action == protocol.ModDelete {
		// The deletion comes as an UPDATE too (from a server with
		// changes): printed once, the same way.
		if !v.deleted[e.Seq] {
			v.markDeleted(e.Seq)
			fmt.Fprintf(t.out, "%s* %s deleted %s\n", t.prefix(e.Room), clean(e.Actor), seqLabel(e.Seq))
		}
		return
	}
	if line := modcmd.EventText(e); line != "" {
		fmt.Fprintf(t.out, "%s* %s\n", t.prefix(e.Room), clean(line))
	}
}
