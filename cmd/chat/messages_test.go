package main

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"chat/client"
	"chat/internal/testserver"
	"chat/protocol"
)

// TestMessageCommands: the commands on messages against the real server.
// bob turns numbers on and replies to ann's message (ann sees the quote),
// ann edits it (both see the new text), bob's edit of it is refused with a
// sentence, bob reacts by short name and takes it back by emoji, ann
// searches (the hit as "#room [seq] time name: text", plain in a pipe),
// ann deletes her message and everybody sees it. bob's refused edit makes
// his exit non-zero; ann's is 0.
func TestMessageCommands(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	ann := startChat(t, "-server", srv.Addr, "-name", "ann", "-room", "acts")
	ann.waitLine(`^-- joined acts as ann`, 0)
	bob := startChat(t, "-server", srv.Addr, "-name", "bob", "-room", "acts")
	bob.waitLine(`^-- joined acts as bob`, 0)

	ann.say("/help")
	for _, cmd := range []string{"/reply SEQ TEXT", "/edit SEQ TEXT", "/delete SEQ", "/react SEQ EMOJI", "/unreact SEQ EMOJI", "/search WORDS", "/seqs on|off"} {
		ann.waitLine(`^--   `+regexp.QuoteMeta(cmd)+` `, 0)
	}
	if n := strings.Count(ann.out.String(), "--   /delete SEQ "); n != 1 {
		t.Errorf("/help lists /delete %d times", n)
	}

	bob.say("/seqs on")
	bob.waitLine(`^-- messages now show their number \[SEQ\]`, 0)
	ann.say("the first words of a long message about the plan")
	seqRe := regexp.MustCompile(`(?m)^` + hhmm + `\[(\d+)\] ann: the first words of a long message about the plan$`)
	waitMatch(t, &bob.out, seqRe, 0)
	seq := seqRe.FindStringSubmatch(bob.out.String())[1]
	s := regexp.QuoteMeta("[" + seq + "]")

	bob.say("/reply " + seq + " which plan?")
	ann.waitLine(`^`+hhmm+`bob \(reply to `+s+` ann: the first words of a long…\): which plan\?$`, 0)
	// ann's first command turns her numbers on.
	ann.say("/edit " + seq + " the plan: ship on Friday")
	ann.waitLine(`^-- messages now show their number \[SEQ\]`, 0)
	ann.waitLine(`^\* ann edited `+s+`: the plan: ship on Friday$`, 0)
	bob.waitLine(`^\* ann edited `+s+`: the plan: ship on Friday$`, 0)

	bob.say("/edit " + seq + " the plan: never")
	bob.waitErr("chat: /edit " + seq + " in #acts: not allowed: ")
	bob.say("/react " + seq + " +1")
	ann.waitLine(`^\* bob reacted 👍 to `+s+`$`, 0)
	bob.say("/unreact " + seq + " 👍")
	ann.waitLine(`^\* bob took back 👍 from `+s+`$`, 0)
	bob.say("/react " + seq + " unicorn")
	bob.waitErr("chat: usage: /react SEQ EMOJI, EMOJI one of 👍 +1")
	bob.say("/edit x text", "/reply 5")
	bob.waitErr(`chat: usage: /edit SEQ TEXT ("x" is not a message number)`)
	bob.waitErr(`chat: usage: /reply SEQ TEXT (nothing after the number)`)

	ann.say("/search friday")
	ann.waitLine(`^-- 1 result for "friday", newest first:$`, 0)
	ann.waitLine(`^#acts `+s+` \d\d:\d\d ann: the plan: ship on Friday$`, 0)
	ann.say("/search nothing-like-it")
	ann.waitLine(`^-- no results for "nothing-like-it"$`, 0)
	ann.say("/search ...")
	ann.waitErr("chat: /search: ")

	ann.say("/delete " + seq)
	ann.waitLine(`^\* ann deleted `+s+`$`, 0)
	bob.waitLine(`^\* ann deleted `+s+`$`, 0)
	if n := strings.Count(bob.out.String(), "deleted "+"["+seq+"]"); n != 1 {
		t.Errorf("bob saw the deletion %d times", n)
	}
	if code := ann.end(); code != 0 {
		t.Errorf("ann's exit %d\n%s", code, ann.errs.String())
	}
	if code := bob.end(); code == 0 {
		t.Error("bob's exit 0 after a refused edit")
	}
}

// TestPipedChangesWaitForTheirUpdate: a script's /edit and /react are
// printed (their UPDATEs) before chat exits at the end of input.
func TestPipedChangesWaitForTheirUpdate(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	if code, out := session(t, []string{"-server", srv.Addr, "-name", "ci"}, "first"); code != 0 {
		t.Fatalf("exit %d; output:\n%s", code, out)
	}
	// The next run knows the number (a script cannot before the message
	// is stored).
	code, out := session(t, []string{"-server", srv.Addr, "-name", "ci"}, "/edit 1 first, fixed", "/react 1 tada")
	if code != 0 || !strings.Contains(out, "* ci edited [1]: first, fixed\n") || !strings.Contains(out, "* ci reacted 🎉 to [1]\n") {
		t.Fatalf("exit %d; output:\n%s", code, out)
	}
}

func TestReactionNames(t *testing.T) {
	for in, want := range map[string]string{"+1": "👍", "heart": "❤️", ":tada:": "🎉", "❤": "❤️", "👀": "👀", "LAUGH": "😂", "pray": "🙏", "wow": "😮", "sad": "😢"} {
		if got, ok := reactionArg(in); !ok || got != want {
			t.Errorf("reactionArg(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "unicorn", "🦄", "+2"} {
		if got, ok := reactionArg(in); ok {
			t.Errorf("reactionArg(%q) = %q", in, got)
		}
	}
	for _, r := range protocol.Reactions {
		if !strings.Contains(reactionHelp, r) {
			t.Errorf("the help does not name %s", r)
		}
	}
}

func TestSnippetAndHighlight(t *testing.T) {
	for in, want := range map[string]string{
		"short": "short",
		"the first words of a long message about the plan": "the first words of a long…",
		"one\nline  only":       "one line only",
		strings.Repeat("x", 40): strings.Repeat("x", 30) + "…",
	} {
		if got := snippet(in); got != want {
			t.Errorf("snippet(%q) = %q, want %q", in, got, want)
		}
	}
	spans := []protocol.Span{{Start: 4, End: 9}, {Start: 14, End: 19}}
	if got := highlight("the plan, the plans\x07", spans, true); got != "the \x1b[1mplan,\x1b[0m the \x1b[1mplans\x1b[0m\\x07" {
		t.Errorf("highlight on a terminal: %q", got)
	}
	if got := highlight("the plan", spans, false); got != "the plan" {
		t.Errorf("highlight in a pipe: %q", got)
	}
	if got := highlight("ab", []protocol.Span{{Start: 1, End: 99}, {Start: 0, End: 1}}, true); got != "a\x1b[1mb\x1b[0m" {
		t.Errorf("highlight of spans out of range and order: %q", got)
	}
}

// TestTypingShownOnATerminalOnly: who is typing is printed once per
// stretch of typing, on a terminal; in a pipe never.
func TestTypingShownOnATerminalOnly(t *testing.T) {
	c, err := client.New(client.Config{Addr: "127.0.0.1:1", Name: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tty := range []bool{true, false} {
		var out bytes.Buffer
		tm := newTerm(c, "general", "", &out, &out)
		tm.tty = tty
		tm.event(client.Joined{Room: "general", Name: "ann", Count: 2})
		tm.event(client.Typing{Room: "general", Name: "bob"})
		tm.event(client.Typing{Room: "general", Name: "bob"}) // renewed: not printed again
		tm.event(client.Typing{Room: "general", Name: "bob", Stopped: true})
		tm.event(client.Typing{Room: "general", Name: "bob"}) // a new stretch
		tm.event(client.Message{Room: "general", Seq: 1, Sender: "bob", Text: "hi", Time: time.Now()})
		tm.event(client.Typing{Room: "general", Name: "bob"}) // after his message: new
		want := 0
		if tty {
			want = 3
		}
		if n := strings.Count(out.String(), "* bob is typing…\n"); n != want {
			t.Errorf("tty %v: printed %d times, want %d:\n%s", tty, n, want, out.String())
		}
	}
}

// TestChangeSettlesWhicheverComesFirst: a change is settled (no longer
// waited for at the end of input) by its UPDATE after its ACK, and at
// once by its ACK when the UPDATE came first; what waits is bounded.
func TestChangeSettlesWhicheverComesFirst(t *testing.T) {
	w := newChangeWaits(2)
	if done := w.acked("general", 5, "edit"); len(done) != 0 {
		t.Fatalf("settled %q before its UPDATE", done)
	}
	if id, ok := w.updated("general", 5); !ok || id != "edit" {
		t.Fatalf("the UPDATE settled %q %v, want the edit", id, ok)
	}
	if _, ok := w.updated("general", 6); ok {
		t.Fatal("an UPDATE of nothing acknowledged settled something")
	}
	if done := w.acked("general", 6, "react"); !slices.Equal(done, []string{"react"}) {
		t.Fatalf("the ACK after its UPDATE settled %q, want the reaction", done)
	}
	if _, ok := w.updated("general", 6); ok {
		t.Fatal("the same place settled twice")
	}
	w.acked("general", 7, "a")
	w.acked("random", 7, "b")
	if done := w.acked("general", 8, "c"); !slices.Equal(done, []string{"a"}) {
		t.Fatalf("over the bound, %q given up, want the oldest", done)
	}
	for i := range uint64(100) {
		w.updated("other", i)
		w.acked("busy", i, "x")
	}
	if len(w.waiting) > 2 || len(w.seen) > 2 || len(w.order) > 2*2+16 || len(w.seenFIF) > 2 {
		t.Errorf("grew: %d waiting, %d seen, order %d, seen order %d", len(w.waiting), len(w.seen), len(w.order), len(w.seenFIF))
	}
}
