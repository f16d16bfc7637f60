package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"chat/client"
	"chat/protocol"
)

// Moderation commands: /oper, /op, /deop, /kick, /ban, /banip, /unban,
// /mute, /unmute, /delete, /topic, /inviteonly, /invite. Each asks the
// server in the background (the transcript goes on meanwhile) and prints
// the answer: the room's MODEVENT line for actions the room hears of,
// the invite code or "you are a server operator" for those it does not,
// or the server's refusal as a sentence.

// modTimeout bounds the wait for the server's answer to a command.
const modTimeout = 30 * time.Second

// modCommand handles a moderation command; it reports false for a
// command that is not one.
func (t *term) modCommand(cmd, arg string) bool {
	name, rest, _ := strings.Cut(arg, " ")
	rest = strings.TrimSpace(rest)
	switch cmd {
	case "/oper":
		if arg == "" {
			t.fail("usage: /oper TOKEN (the operator token the server was started with)")
			return true
		}
		t.mods++
		go func() {
			err := t.c.Oper(context.Background(), arg)
			t.later(func() {
				t.mods--
				if err != nil {
					t.fail("/oper: %s", modError(err))
					return
				}
				fmt.Fprintln(t.out, "-- you are a server operator: you may moderate every room")
			})
		}()
	case "/op", "/deop", "/unmute":
		if name == "" || rest != "" {
			t.fail("usage: %s NAME", cmd)
			return true
		}
		action := map[string]protocol.ModAction{"/op": protocol.ModOp, "/deop": protocol.ModDeop, "/unmute": protocol.ModUnmute}[cmd]
		t.moderate(cmd, client.Moderation{Action: action, Target: name})
	case "/kick":
		if name == "" {
			t.fail("usage: /kick NAME [reason]")
			return true
		}
		t.moderate(cmd, client.Moderation{Action: protocol.ModKick, Target: name, Text: rest})
	case "/ban", "/banip", "/mute":
		d, reason, err := durationArg(rest)
		if name == "" || err != nil || cmd != "/ban" && reason != "" {
			switch cmd {
			case "/ban":
				t.fail("usage: /ban NAME [DURATION] [reason], DURATION like 10m, 2h or 7d (none: for good)")
			default:
				t.fail("usage: %s NAME [DURATION], DURATION like 10m, 2h or 7d (none: for good)", cmd)
			}
			return true
		}
		action := map[string]protocol.ModAction{"/ban": protocol.ModBan, "/banip": protocol.ModBanAddress, "/mute": protocol.ModMute}[cmd]
		t.moderate(cmd, client.Moderation{Action: action, Target: name, For: d, Text: reason})
	case "/unban":
		if name == "" || rest != "" {
			t.fail("usage: /unban NAME or /unban ADDRESS")
			return true
		}
		t.moderate(cmd, client.Moderation{Action: protocol.ModUnban, Target: name})
	case "/delete":
		seq, err := strconv.ParseUint(strings.TrimPrefix(arg, "#"), 10, 64)
		if err != nil || seq == 0 {
			t.fail("usage: /delete SEQ, the message's number (/seqs on shows them)")
			return true
		}
		t.moderate(cmd, client.Moderation{Action: protocol.ModDelete, Seq: seq})
	case "/topic":
		switch arg {
		case "":
			t.showTopic()
		case "-":
			t.moderate(cmd, client.Moderation{Action: protocol.ModTopic})
		default:
			t.moderate(cmd, client.Moderation{Action: protocol.ModTopic, Text: arg})
		}
	case "/inviteonly":
		switch strings.ToLower(arg) {
		case "on":
			t.moderate(cmd, client.Moderation{Action: protocol.ModInviteOnlyOn})
		case "off":
			t.moderate(cmd, client.Moderation{Action: protocol.ModInviteOnlyOff})
		default:
			t.fail("usage: /inviteonly on|off")
		}
	case "/invite":
		d, extra, err := durationArg(arg)
		if err != nil || extra != "" {
			t.fail("usage: /invite [DURATION], how long the code is valid, like 1h or 7d (none: the server's default, 7 days)")
			return true
		}
		t.moderate(cmd, client.Moderation{Action: protocol.ModInvite, For: d})
	case "/seqs":
		switch strings.ToLower(arg) {
		case "on", "":
			t.seqs = true
			fmt.Fprintln(t.out, "-- messages now show their number, for /delete")
		case "off":
			t.seqs = false
		default:
			t.fail("usage: /seqs on|off")
		}
	default:
		return false
	}
	return true
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
	if !v.joined {
		// A script's lines come before the room is joined: the
		// command waits for it, as the lines typed for the room do.
		t.mods++
		v.waiting = append(v.waiting, func() { t.mods--; t.moderate(cmd, m) })
		return
	}
	t.mods++
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), modTimeout)
		defer cancel()
		ans, err := t.c.Moderate(ctx, room, m)
		t.later(func() {
			t.mods--
			switch {
			case err != nil:
				t.fail("%s in %s: %s", cmd, label, modError(err))
			case ans.Action == protocol.ModInvite:
				valid := "for the server's default time (7 days)"
				if m.For > 0 {
					valid = "for " + fmtDuration(m.For)
				}
				fmt.Fprintf(t.out, "-- invite code for %s: %s (valid %s); to join with it: /join %s %s\n",
					label, clean(ans.Invite), valid, clean(room), clean(ans.Invite))
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

// modError words a refusal for the user: the server's sentence, with
// what it means.
func modError(err error) string {
	var perr *protocol.Error
	if !errors.As(err, &perr) || errors.Is(err, client.ErrConnectionLost) {
		return err.Error()
	}
	text := perr.Text
	switch perr.Code {
	case protocol.CodeForbidden:
		if text == "" {
			text = "you are not an operator here"
		}
		return "not allowed: " + text
	case protocol.CodeNotFound:
		if text == "" {
			text = "no such member, message or ban"
		}
		return "not found: " + text
	}
	if text == "" {
		return perr.Error()
	}
	return text
}

// durationArg reads an optional leading duration (10m, 2h, 7d, 2w) off
// s and returns it with the rest.
func durationArg(s string) (time.Duration, string, error) {
	first, rest, _ := strings.Cut(s, " ")
	if first == "" {
		return 0, "", nil
	}
	if first[0] < '0' || first[0] > '9' {
		return 0, s, nil // no duration: the reason starts here
	}
	d, err := parseDuration(first)
	if err != nil {
		return 0, "", err
	}
	return d, strings.TrimSpace(rest), nil
}

// parseDuration is time.ParseDuration with days (d) and weeks (w).
func parseDuration(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseUint(n, 10, 32)
			if err != nil {
				return 0, fmt.Errorf("%q is not a duration", s)
			}
			return time.Duration(v) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return d, nil
}

// fmtDuration says d the way a person would: 7d, 2h, 10m.
func fmtDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// modEventLine is a MODEVENT as a transcript line, without its room
// prefix: "* alice kicked bob (spam)".
func modEventLine(e client.ModEvent) string {
	target := clean(e.Target)
	if e.Self {
		target = "you"
	}
	until := " for good"
	if !e.Until.IsZero() {
		until = " until " + e.Until.Local().Format("2006-01-02 15:04")
	}
	reason := ""
	if e.Text != "" {
		reason = " (" + clean(e.Text) + ")"
	}
	var what string
	switch e.Action {
	case protocol.ModOp:
		what = "made " + target + " an operator"
	case protocol.ModDeop:
		what = "took the operator right from " + target
	case protocol.ModKick:
		what = "kicked " + target + reason
	case protocol.ModBan:
		what = "banned " + target + until + reason
	case protocol.ModBanAddress:
		what = "banned the address of " + target + until
	case protocol.ModUnban:
		if target == "" {
			what = "lifted a ban of an address"
		} else {
			what = "lifted the ban of " + target
		}
	case protocol.ModMute:
		what = "muted " + target + until
	case protocol.ModUnmute:
		what = "unmuted " + target
	case protocol.ModDelete:
		what = fmt.Sprintf("deleted message %d", e.Seq)
	case protocol.ModTopic:
		if e.Text == "" {
			what = "cleared the topic"
		} else {
			what = "set the topic: " + clean(e.Text)
		}
	case protocol.ModInviteOnlyOn:
		what = "made the room invite-only"
	case protocol.ModInviteOnlyOff:
		what = "opened the room to everyone (no longer invite-only)"
	default:
		return "" // an action of a later revision: the spec says ignore it
	}
	return "* " + clean(e.Actor) + " " + what
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
	if line := modEventLine(e); line != "" {
		fmt.Fprintf(t.out, "%s%s\n", t.prefix(e.Room), line)
	}
}
