package main

import (
	"regexp"
	"testing"
	"time"

	"chat/internal/testserver"
)

// TestModerationCommands: the terminal's moderation commands against the
// real server. ann made #mods (its first name: its operator) and sets the
// topic, deletes bob's message by its number, mutes bob (his line is not
// sent, and the exit says so), kicks him (he is told how to come back, and
// does), makes an invite code and the room invite-only (carol is refused
// without the code and let in with it), and bans bob (who cannot come
// back). bob, not an operator, is refused with a sentence; so is a kick
// of nobody. Every member sees each action as a line.
func TestModerationCommands(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})

	ann := startChat(t, "-server", srv.Addr, "-name", "ann", "-room", "mods")
	ann.waitLine(`^-- joined mods as ann; 1 here`, 0)
	ann.waitLine(`^-- you are an operator of #mods$`, 0)
	ann.say("/help")
	for _, cmd := range []string{"/kick NAME [reason]", "/ban NAME [DURATION] [reason]", "/mute NAME [DURATION]",
		"/topic [TEXT]", "/invite [DURATION]", "/inviteonly on|off", "/oper TOKEN", "/delete SEQ"} {
		ann.waitLine(`^--   `+regexp.QuoteMeta(cmd)+` `, 0)
	}

	bob := startChat(t, "-server", srv.Addr, "-name", "bob", "-room", "mods")
	bob.waitLine(`^-- joined mods as bob; 2 here`, 0)

	ann.say("/topic Release on Friday")
	ann.waitLine(`^\* ann set the topic: Release on Friday$`, 0)
	bob.waitLine(`^\* ann set the topic: Release on Friday$`, 0)
	bob.say("/topic")
	bob.waitLine(`^-- topic of #mods: Release on Friday$`, 0)

	bob.say("/kick ann")
	bob.waitErr("chat: /kick in #mods: not allowed")
	ann.say("/kick nobody")
	ann.waitErr("chat: /kick in #mods: not found")
	ann.say("/mute bob soon", "/delete x")
	ann.waitErr("chat: usage: /mute NAME [DURATION]")
	ann.waitErr("chat: usage: /delete SEQ")

	ann.say("/seqs on")
	ann.waitLine(`^-- messages now show their number \[SEQ\]`, 0)
	m := ann.mark()
	bob.say("buy cheap watches")
	seqRe := regexp.MustCompile(`(?m)^` + hhmm + `\[(\d+)\] bob: buy cheap watches$`)
	waitMatch(t, &ann.out, seqRe, m)
	seq := seqRe.FindStringSubmatch(ann.out.String()[m:])[1]
	ann.say("/delete " + seq)
	ann.waitLine(`^\* ann deleted \[`+seq+`\]$`, m)
	bob.waitLine(`^\* ann deleted \[`+seq+`\]$`, 0)

	ann.say("/mute bob 10m")
	bob.waitLine(`^\* ann muted you until \d{4}-\d\d-\d\d \d\d:\d\d$`, 0)
	ann.waitLine(`^\* ann muted bob until `, m)
	bob.say("am I muted?")
	bob.waitLine(`^-- 1 messages not sent$`, 0)
	bob.waitLine(`^-- not sent: you are muted in mods until .*; the message was not sent$`, 0)

	ann.say("/kick bob flooding")
	bob.waitLine(`^\* ann kicked you \(flooding\)$`, 0)
	bob.waitLine(`^-- you were removed from mods by ann \(flooding\).*; /join mods to come back$`, 0)
	ann.waitLine(`^\* ann kicked bob \(flooding\)$`, m)
	b := bob.mark()
	bob.say("/join mods")
	bob.waitLine(`^-- rejoined mods as bob`, b)
	bob.waitLine(`^-- .*you are muted in #mods`, b)

	m = ann.mark()
	ann.say("/invite 1h")
	inviteRe := regexp.MustCompile(`(?m)^-- invite code for #mods: (\S+) \(valid 1h\); to join with it: /join mods (\S+)$`)
	waitMatch(t, &ann.out, inviteRe, m)
	code := inviteRe.FindStringSubmatch(ann.out.String()[m:])
	if code[1] != code[2] {
		t.Fatalf("invite line %q", code[0])
	}
	ann.say("/inviteonly on")
	ann.waitLine(`^\* ann made the room invite-only$`, m)

	carol := startChat(t, "-server", srv.Addr, "-name", "carol", "-room", "hall")
	carol.waitLine(`^-- joined hall as carol`, 0)
	carol.say("/join mods")
	carol.waitLine(`^-- cannot join #mods: .*invite-only.*; with a code: /join mods CODE$`, 0)
	carol.say("/join mods " + code[1])
	carol.waitLine(`^-- joined mods as carol`, 0)
	carol.waitLine(`^-- topic: Release on Friday$`, 0)

	ann.say("/ban bob 1h trolling")
	bob.waitLine(`^\* ann banned you until .* \(trolling\)$`, b)
	bob.waitLine(`^-- you are banned from mods by ann until .* \(trolling\)$`, b)
	carol.waitLine(`^\[#mods\] \* ann banned bob until .* \(trolling\)$`, 0)
	b = bob.mark()
	bob.say("/join mods")
	bob.waitLine(`^-- cannot join #mods: bob is banned from mods until`, b)

	t0 := time.Now()
	if code := ann.end(); code != 0 {
		t.Errorf("ann's exit %d; stderr:\n%s", code, ann.errs.String())
	}
	t.Logf("ann ended in %v", time.Since(t0))
	t0 = time.Now()
	if code := carol.end(); code != 0 {
		t.Errorf("carol's exit %d; stderr:\n%s", code, carol.errs.String())
	}
	t.Logf("carol ended in %v", time.Since(t0))
	t0 = time.Now()
	if code := bob.end(); code != 1 {
		t.Errorf("bob's exit %d, want 1 (a line was not sent)", code)
	}
	t.Logf("bob ended in %v", time.Since(t0))
	t.Logf("ann:\n%s\nbob:\n%s", ann.out.String(), bob.out.String())
}

// TestOperCommand: /oper with the server's token makes the terminal a
// server operator, which a wrong token does not.
func TestOperCommand(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{Args: []string{"-operator-token", "t0ken"}})
	ann := startChat(t, "-server", srv.Addr, "-name", "ann", "-room", "lobby")
	ann.waitLine(`^-- joined lobby as ann`, 0)
	root := startChat(t, "-server", srv.Addr, "-name", "root", "-room", "lobby")
	root.waitLine(`^-- joined lobby as root`, 0)
	root.say("/oper nope")
	root.waitErr("chat: /oper: not allowed")
	root.say("/oper t0ken")
	root.waitLine(`^-- you are a server operator: you may moderate every room$`, 0)
	root.say("/kick ann bye")
	ann.waitLine(`^-- you were removed from lobby by root \(bye\).*; /join lobby to come back$`, 0)
	root.waitLine(`^\* root kicked ann \(bye\)$`, 0)
	root.end()
	ann.end()
}

// TestInviteFlag: an invite-only room as -room refuses the terminal
// without a code (exit 1, saying how to give one) and takes it with
// -invite.
func TestInviteFlag(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	ann := startChat(t, "-server", srv.Addr, "-name", "ann", "-room", "club")
	ann.waitLine(`^-- you are an operator of #club$`, 0)
	ann.say("/inviteonly on")
	ann.waitLine(`^\* ann made the room invite-only$`, 0)
	m := ann.mark()
	ann.say("/invite")
	inviteRe := regexp.MustCompile(`(?m)^-- invite code for #club: (\S+) \(valid 7 days`)
	waitMatch(t, &ann.out, inviteRe, m)
	code := inviteRe.FindStringSubmatch(ann.out.String()[m:])[1]

	bob := startChat(t, "-server", srv.Addr, "-name", "bob", "-room", "club")
	bob.waitLine(`^-- with an invite code: chat -room club -invite CODE$`, 0)
	if c := bob.end(); c != 1 {
		t.Fatalf("exit %d without the code, want 1", c)
	}
	bob = startChat(t, "-server", srv.Addr, "-name", "bob", "-room", "club", "-invite", code)
	bob.waitLine(`^-- joined club as bob`, 0)
	bob.end()
	ann.end()
}
