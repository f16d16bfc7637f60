// Package modcmd reads the moderation commands people type (/kick NAME
// spam, /ban NAME 2h, /topic …) into client.Moderation requests, and
// words what comes back (MODEVENTs, refusals) as sentences. The terminal
// client and the app share it, so the commands and what they print are
// the same in both.
package modcmd

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"chat/client"
	"chat/protocol"
)

// Command is a moderation command as typed.
type Command struct {
	Name string // the command as typed, lower case: "/kick"
	// Oper is set for /oper: Token is the operator token, and Moderation
	// is unused (client.Oper does it).
	Oper  bool
	Token string
	// ShowTopic is set for /topic without text: show the room's topic;
	// nothing is asked of the server.
	ShowTopic  bool
	Moderation client.Moderation
}

// Help lists the commands, one per line: the form, then what it does.
var Help = [][2]string{
	{"/oper TOKEN", "become a server operator with the server's operator token"},
	{"/op NAME, /deop NAME", "make NAME an operator of the room, or no longer one"},
	{"/kick NAME [reason]", "remove NAME from the room (it may come back)"},
	{"/ban NAME [DURATION] [reason]", "remove NAME and keep it out, for DURATION (10m, 2h, 7d) or for good"},
	{"/banip NAME [DURATION]", "ban the addresses NAME is connected from"},
	{"/unban NAME|ADDRESS", "lift a ban"},
	{"/mute NAME [DURATION]", "refuse NAME's messages in the room (for DURATION or for good)"},
	{"/unmute NAME", "let NAME's messages through again"},
	{"/delete SEQ", "delete message number SEQ"},
	{"/topic [TEXT]", "show the topic, or set it; /topic - clears it"},
	{"/inviteonly on|off", "let only invited names and operators join, or everyone again"},
	{"/invite [DURATION]", "make an invite code (valid 7 days unless DURATION); /join ROOM CODE uses it"},
}

var usage = map[string]string{
	"/oper": "/oper TOKEN", "/op": "/op NAME", "/deop": "/deop NAME", "/kick": "/kick NAME [reason]",
	"/ban":    "/ban NAME [DURATION] [reason], DURATION like 10m, 2h or 7d (none: for good)",
	"/banip":  "/banip NAME [DURATION], DURATION like 10m, 2h or 7d (none: for good)",
	"/unban":  "/unban NAME or /unban ADDRESS",
	"/mute":   "/mute NAME [DURATION], DURATION like 10m, 2h or 7d (none: for good)",
	"/unmute": "/unmute NAME", "/delete": "/delete SEQ, the message's number",
	"/topic": "/topic [TEXT], or /topic - to clear it", "/inviteonly": "/inviteonly on|off",
	"/invite": "/invite [DURATION], how long the code is valid, like 1h or 7d (none: 7 days)",
}

// IsCommand reports whether name ("/kick") is a moderation command.
func IsCommand(name string) bool {
	_, ok := usage[strings.ToLower(name)]
	return ok
}

// Parse reads line. ok is false when the line is not a moderation
// command; err says how to type one that is wrong.
func Parse(line string) (cmd Command, ok bool, err error) {
	name, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	name = strings.ToLower(name)
	if !IsCommand(name) {
		return Command{}, false, nil
	}
	arg = strings.TrimSpace(arg)
	cmd.Name = name
	bad := fmt.Errorf("usage: %s", usage[name])
	target, rest, _ := strings.Cut(arg, " ")
	rest = strings.TrimSpace(rest)
	m := &cmd.Moderation
	switch name {
	case "/oper":
		if arg == "" {
			return cmd, true, bad
		}
		cmd.Oper, cmd.Token = true, arg
	case "/op", "/deop", "/unmute", "/unban":
		if target == "" || rest != "" {
			return cmd, true, bad
		}
		m.Action = map[string]protocol.ModAction{"/op": protocol.ModOp, "/deop": protocol.ModDeop,
			"/unmute": protocol.ModUnmute, "/unban": protocol.ModUnban}[name]
		m.Target = target
	case "/kick":
		if target == "" {
			return cmd, true, bad
		}
		m.Action, m.Target, m.Text = protocol.ModKick, target, rest
	case "/ban", "/banip", "/mute":
		d, reason, derr := durationArg(rest)
		if target == "" || derr != nil || name != "/ban" && reason != "" {
			return cmd, true, bad
		}
		m.Action = map[string]protocol.ModAction{"/ban": protocol.ModBan, "/banip": protocol.ModBanAddress, "/mute": protocol.ModMute}[name]
		m.Target, m.For, m.Text = target, d, reason
	case "/delete":
		seq, perr := strconv.ParseUint(strings.TrimPrefix(arg, "#"), 10, 64)
		if perr != nil || seq == 0 {
			return cmd, true, bad
		}
		m.Action, m.Seq = protocol.ModDelete, seq
	case "/topic":
		switch arg {
		case "":
			cmd.ShowTopic = true
		case "-":
			m.Action = protocol.ModTopic
		default:
			m.Action, m.Text = protocol.ModTopic, arg
		}
	case "/inviteonly":
		switch strings.ToLower(arg) {
		case "on":
			m.Action = protocol.ModInviteOnlyOn
		case "off":
			m.Action = protocol.ModInviteOnlyOff
		default:
			return cmd, true, bad
		}
	case "/invite":
		d, extra, derr := durationArg(arg)
		if derr != nil || extra != "" {
			return cmd, true, bad
		}
		m.Action, m.For = protocol.ModInvite, d
	}
	return cmd, true, nil
}

// durationArg reads an optional leading duration (10m, 2h, 7d, 2w) off
// s and returns it with the rest.
func durationArg(s string) (time.Duration, string, error) {
	first, rest, _ := strings.Cut(s, " ")
	if first == "" || first[0] < '0' || first[0] > '9' {
		return 0, s, nil // no duration: the reason starts here
	}
	d, err := ParseDuration(first)
	if err != nil {
		return 0, "", err
	}
	return d, strings.TrimSpace(rest), nil
}

// ParseDuration is time.ParseDuration with days (d) and weeks (w).
func ParseDuration(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseUint(n, 10, 16)
			if err != nil || v == 0 {
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

// FormatDuration says d the way a person types it: 7d, 2h, 10m.
func FormatDuration(d time.Duration) string {
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

// InviteText is what the invite command answers: the code, how long it
// is valid and how to join with it.
func InviteText(room, code string, valid time.Duration) string {
	how := "7 days (the server's default)"
	if valid > 0 {
		how = FormatDuration(valid)
	}
	return fmt.Sprintf("invite code for #%s: %s (valid %s); to join with it: /join %s %s", room, code, how, room, code)
}

// EventText is a MODEVENT in words, with the actor first: "alice kicked
// bob (spam)". It is "" for an action of a later revision, which the
// spec says to ignore. Self targets are "you".
func EventText(e client.ModEvent) string {
	target := e.Target
	if e.Self {
		target = "you"
	}
	until := " for good"
	if !e.Until.IsZero() {
		until = " until " + e.Until.Local().Format("2006-01-02 15:04")
	}
	reason := ""
	if e.Text != "" {
		reason = " (" + e.Text + ")"
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
			what = "set the topic: " + e.Text
		}
	case protocol.ModInviteOnlyOn:
		what = "made the room invite-only"
	case protocol.ModInviteOnlyOff:
		what = "opened the room to everyone (no longer invite-only)"
	default:
		return ""
	}
	return e.Actor + " " + what
}

// ErrorText words the refusal of a moderation command: the server's
// sentence, with what its code means.
func ErrorText(err error) string {
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

// RoomText words a moderation error that ends or refuses a room, or a
// message refused as muted: label is how the room is shown (#general),
// key what /join takes, wasIn whether the room was joined.
//
// The server's text is a sentence of its own (who, until when, why): it
// is used as it is where there is one, with how to come back.
func RoomText(label, key string, e *protocol.Error, wasIn bool) string {
	text := func(def string) string {
		if e.Text != "" {
			return e.Text
		}
		return def
	}
	switch {
	case e.Code == protocol.CodeKicked:
		return fmt.Sprintf("%s; /join %s to come back", text("you were kicked from "+label), key)
	case e.Code == protocol.CodeBanned && wasIn:
		return text("you were banned from " + label)
	case e.Code == protocol.CodeBanned:
		return "cannot join " + label + ": " + text("you are banned")
	case e.Code == protocol.CodeInviteOnly:
		return fmt.Sprintf("cannot join %s: %s; with a code: /join %s CODE", label, text("it is invite-only: ask one of its operators for an invite code"), key)
	case e.Code == protocol.CodeMuted:
		return "not sent: " + text("you are muted in "+label)
	}
	return e.Error()
}
