package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"chat/client"
	"chat/internal/modcmd"
	"chat/protocol"
)

// Acting on messages: /reply, /edit, /delete, /react, /unreact and
// /search, and how the terminal prints what others do (edits, deletions,
// reactions, replies, typing).
//
// A message is named by its number in the room, shown as [12]: numbers
// appear on every message once one of these commands is used (or with
// /seqs on), and always in the lines about changes, so that a transcript
// in a pipe stays readable: "* alice edited [12]: new text".

// reactionNames are the short names /react takes for protocol.Reactions.
var reactionNames = map[string]string{
	"+1": "👍", "thumbsup": "👍", "like": "👍",
	"heart": "❤️", "love": "❤️", "<3": "❤️",
	"laugh": "😂", "joy": "😂", "lol": "😂",
	"wow": "😮", "surprised": "😮",
	"sad": "😢", "cry": "😢",
	"tada": "🎉", "party": "🎉",
	"pray": "🙏", "thanks": "🙏",
	"eyes": "👀", "look": "👀",
}

// reactionArg turns what the user typed after /react into one of
// protocol.Reactions: the emoji itself (with or without its variation
// selector), or a short name.
func reactionArg(s string) (string, bool) {
	if protocol.IsReaction(s) {
		return s, true
	}
	if e, ok := reactionNames[strings.ToLower(strings.Trim(s, ":"))]; ok {
		return e, true
	}
	for _, r := range protocol.Reactions {
		if strings.TrimSuffix(r, "\ufe0f") == s {
			return r, true
		}
	}
	return "", false
}

// reactionHelp lists the reactions with a short name of each.
const reactionHelp = "👍 +1, ❤️ heart, 😂 laugh, 😮 wow, 😢 sad, 🎉 tada, 🙏 pray, 👀 eyes"

// recent is what the terminal remembers of a printed message, for the
// quote of a reply to it.
type recent struct {
	sender, text string
}

// maxRecent bounds the messages remembered per room.
const maxRecent = 1000

func (v *view) remember(seq uint64, sender, text string) {
	if v.recent == nil {
		v.recent = map[uint64]recent{}
	}
	if _, ok := v.recent[seq]; !ok {
		v.recentOrder = append(v.recentOrder, seq)
		if len(v.recentOrder) > maxRecent {
			delete(v.recent, v.recentOrder[0])
			v.recentOrder = v.recentOrder[1:]
		}
	}
	v.recent[seq] = recent{sender, text}
}

// actCommand handles the commands on messages; it reports false for a
// line that is not one. It returns the id of a message or change sent.
func (t *term) actCommand(cmd, arg string) (id string, ok bool) {
	switch cmd {
	case "/reply":
		seq, text, err := seqArg(arg, true)
		if err != nil {
			t.fail("usage: /reply SEQ TEXT (%v)", err)
			return "", true
		}
		return t.act(cmd, seq, func(room string) (string, error) { return t.c.SendReply(room, text, seq) }), true
	case "/edit":
		seq, text, err := seqArg(arg, true)
		if err != nil {
			t.fail("usage: /edit SEQ TEXT (%v)", err)
			return "", true
		}
		return t.act(cmd, seq, func(room string) (string, error) { return t.c.Edit(room, seq, text) }), true
	case "/delete":
		seq, rest, err := seqArg(arg, false)
		if err != nil || rest != "" {
			t.fail("usage: /delete SEQ")
			return "", true
		}
		return t.act(cmd, seq, func(room string) (string, error) {
			id, err := t.c.Delete(room, seq)
			if errors.Is(err, client.ErrUnsupported) {
				// A server of before changes: an operator deletes
				// through moderation there.
				t.moderate(cmd, client.Moderation{Action: protocol.ModDelete, Seq: seq})
				return "", nil
			}
			return id, err
		}), true
	case "/react", "/unreact":
		seq, rest, err := seqArg(arg, true)
		emoji, known := reactionArg(strings.TrimSpace(rest))
		if err != nil || !known {
			t.fail("usage: %s SEQ EMOJI, EMOJI one of %s", cmd, reactionHelp)
			return "", true
		}
		return t.act(cmd, seq, func(room string) (string, error) { return t.c.React(room, seq, emoji, cmd == "/react") }), true
	case "/search":
		t.search(arg)
		return "", true
	}
	return "", false
}

// seqArg splits "SEQ rest"; withText: rest must not be empty.
func seqArg(arg string, withText bool) (uint64, string, error) {
	s, rest, _ := strings.Cut(strings.TrimSpace(arg), " ")
	seq, err := strconv.ParseUint(strings.Trim(s, "[]#"), 10, 64)
	if err != nil || seq == 0 {
		return 0, "", fmt.Errorf("%q is not a message number", s)
	}
	rest = strings.TrimSpace(rest)
	if withText && rest == "" {
		return 0, "", errors.New("nothing after the number")
	}
	return seq, rest, nil
}

// act runs a command on message seq of the current room and remembers
// its id, so that a refusal names the command. The first use turns the
// messages' numbers on.
func (t *term) act(cmd string, seq uint64, do func(room string) (string, error)) string {
	room := t.current
	if room == "" {
		t.fail("%s: you are in no room; /join one", cmd)
		return ""
	}
	t.numbersOn()
	id, err := do(room)
	if err != nil {
		t.refused++
		t.fail("%s %d: %v", cmd, seq, err)
		return ""
	}
	if id != "" && cmd != "/reply" {
		t.changes[id] = fmt.Sprintf("%s %d in %s", cmd, seq, t.views[room].label)
	}
	return id
}

// numbersOn shows the messages' numbers from now on, once.
func (t *term) numbersOn() {
	if !t.seqs {
		t.seqs = true
		fmt.Fprintln(t.out, "-- messages now show their number [SEQ], which /reply, /edit, /delete, /react and /download take; /seqs off hides them")
	}
}

// changeRefused prints the refusal of changes (by their ids) as the
// command's failure; it reports whether every id of e was one.
func (t *term) changeRefused(e client.RoomError) bool {
	if len(e.Unsent) == 0 || !e.Stays || e.Err == nil {
		return false
	}
	for _, id := range e.Unsent {
		if _, ok := t.changes[id]; !ok {
			return false
		}
	}
	for _, id := range e.Unsent {
		text := modcmd.ErrorText(e.Err)
		if e.Err.Code == protocol.CodeForbidden {
			text = "not allowed: " + clean(e.Err.Text)
			if e.Err.Text == "" {
				text = "not allowed: it is another name's message"
			}
		}
		t.fail("%s: %s", t.changes[id], clean(text))
		delete(t.changes, id)
	}
	return true
}

// seqLabel is how a message number is shown: [12].
func seqLabel(seq uint64) string { return "[" + strconv.FormatUint(seq, 10) + "]" }

// snippet is the start of a text for a quote: its first words, at most
// about 30 characters, on one line.
func snippet(text string) string {
	words := strings.Fields(text)
	var b strings.Builder
	for i, w := range words {
		if b.Len() > 0 && utf8.RuneCountInString(b.String())+1+utf8.RuneCountInString(w) > 30 {
			return b.String() + "…"
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		if utf8.RuneCountInString(w) > 30 {
			r := []rune(w)
			return b.String() + string(r[:30]) + "…"
		}
		b.WriteString(w)
	}
	return b.String()
}

// replyQuote is " (reply to [7] bob: first words…)" for a reply, or ""
// for a message that is none.
func (t *term) replyQuote(v *view, reply uint64) string {
	if reply == 0 {
		return ""
	}
	q := "reply to " + seqLabel(reply)
	if v != nil {
		if r, ok := v.recent[reply]; ok {
			if r.text == "" {
				q += " " + clean(r.sender) + ": (message deleted)"
			} else {
				q += " " + clean(r.sender) + ": " + clean(snippet(r.text))
			}
		}
	}
	return " (" + q + ")"
}

// reactionsText is " [👍 2, 👀 1]", or "" for none.
func reactionsText(rs []client.Reaction) string {
	if len(rs) == 0 {
		return ""
	}
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s %d", r.Emoji, r.Count))
	}
	return " [" + strings.Join(parts, ", ") + "]"
}

// updated prints a change to a message: "* alice edited [12]: new
// text", "* alice deleted [12]", "* bob reacted 👍 to [12]". A change
// replayed without the target's state (its final state is printed with
// the message itself, or by a later change) is not printed.
func (t *term) updated(e client.Updated) {
	v := t.views[e.Room]
	if v == nil {
		return
	}
	v.printed = max(v.printed, e.Seq)
	if e.History && e.Message == nil {
		return
	}
	if e.Message != nil {
		v.remember(e.Target, e.Message.Sender, e.Message.Text)
	}
	who, target := clean(e.Actor), seqLabel(e.Target)
	var line string
	switch e.Kind {
	case protocol.ChangeEdit:
		text := ""
		if e.Message != nil {
			text = ": " + strings.ReplaceAll(clean(e.Message.Text), "\n", "\n        ")
		}
		line = fmt.Sprintf("%s edited %s%s", who, target, text)
	case protocol.ChangeDelete:
		if v.deleted[e.Target] {
			return // printed with the operator's MODEVENT
		}
		v.markDeleted(e.Target)
		line = fmt.Sprintf("%s deleted %s", who, target)
	case protocol.ChangeReact:
		line = fmt.Sprintf("%s reacted %s to %s", who, clean(e.Emoji), target)
	case protocol.ChangeUnreact:
		line = fmt.Sprintf("%s took back %s from %s", who, clean(e.Emoji), target)
	default:
		return // a kind of a later revision
	}
	fmt.Fprintf(t.out, "%s* %s\n", t.prefix(e.Room), line)
}

// markDeleted notes that the deletion of seq was printed: the same
// deletion comes as an UPDATE and, from an operator, as a MODEVENT.
func (v *view) markDeleted(seq uint64) {
	if v.deleted == nil || len(v.deleted) >= maxRecent {
		v.deleted = map[uint64]bool{}
	}
	v.deleted[seq] = true
}

// typingFor is how long "is typing" holds without news.
const typingFor = 6 * time.Second

// typing prints "* bob is typing…" once per stretch of typing, on an
// interactive terminal only (a transcript in a pipe has no use for it).
func (t *term) typing(e client.Typing) {
	v := t.views[e.Room]
	if v == nil || !t.tty {
		return
	}
	key := protocol.Key(e.Name)
	if e.Stopped {
		delete(v.typing, key)
		return
	}
	if v.typing == nil {
		v.typing = map[string]time.Time{}
	}
	last, was := v.typing[key]
	v.typing[key] = time.Now()
	if was && time.Since(last) < typingFor {
		return
	}
	fmt.Fprintf(t.out, "%s* %s is typing…\n", t.prefix(e.Room), clean(e.Name))
}

// search asks for WORDS in the joined rooms; "/search" alone pages back
// through the last search's older results.
func (t *term) search(arg string) {
	opts := client.SearchOptions{}
	query := strings.TrimSpace(arg)
	if query == "" {
		if t.lastSearch == "" || t.searchFrom.IsZero() {
			t.fail("usage: /search WORDS; /search alone shows older results of the last search")
			return
		}
		query, opts.Before = t.lastSearch, t.searchFrom
	}
	t.searching++
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), modTimeout)
		defer cancel()
		res, err := t.c.Search(ctx, query, opts)
		t.later(func() {
			t.searching--
			if err != nil {
				t.fail("/search: %s", clean(modcmd.ErrorText(err)))
				return
			}
			t.results1(res, !opts.Before.IsZero())
		})
	}()
}

// results1 prints one page of search results, newest first:
// "#general [12] 14:03 alice: text", the matches in bold on a terminal.
func (t *term) results1(res client.SearchResults, older bool) {
	t.lastSearch, t.searchFrom = res.Query, time.Time{}
	what := "results"
	if older {
		what = "older results"
	}
	if len(res.Hits) == 0 {
		fmt.Fprintf(t.out, "-- no %s for %q\n", what, clean(res.Query))
		return
	}
	if len(res.Hits) == 1 {
		what = strings.TrimSuffix(what, "s")
	}
	fmt.Fprintf(t.out, "-- %d %s for %q, newest first:\n", len(res.Hits), what, clean(res.Query))
	now := time.Now()
	for _, h := range res.Hits {
		at := h.Time.Local()
		when := at.Format("15:04")
		if y, m, d := at.Date(); y != now.Year() || m != now.Month() || d != now.Day() {
			when = at.Format("2006-01-02 15:04")
		}
		text := strings.ReplaceAll(highlight(h.Text, h.Matches, t.tty), "\n", " ")
		fmt.Fprintf(t.out, "%s %s %s %s: %s\n", t.label(h.Room), seqLabel(h.Seq), when, clean(h.Sender), text)
	}
	if res.More {
		t.searchFrom = res.Hits[len(res.Hits)-1].Time
		fmt.Fprintln(t.out, "-- more: /search alone shows older results")
	}
}

// highlight makes text safe for the terminal, with the matched spans in
// ANSI bold when bold; without, the text is as it is.
func highlight(text string, spans []protocol.Span, bold bool) string {
	if !bold || len(spans) == 0 {
		return clean(text)
	}
	var b strings.Builder
	at := 0
	for _, s := range spans {
		start, end := int(min(s.Start, uint64(len(text)))), int(min(s.End, uint64(len(text))))
		if start < at || end <= start {
			continue // out of order or empty: the server's mistake, shown plain
		}
		b.WriteString(clean(text[at:start]))
		b.WriteString("\x1b[1m" + clean(text[start:end]) + "\x1b[0m")
		at = end
	}
	b.WriteString(clean(text[at:]))
	return b.String()
}

// draft tells the current room that the user is typing a message, or
// stopped (an empty draft, or a command).
func (t *term) draft(typing bool) {
	room := t.current
	if v := t.views[room]; v == nil || !v.joined {
		return
	}
	if !typing {
		_ = t.c.StopTyping(room) // sends only after a TYPING
		return
	}
	_ = t.c.Typing(room) // paced by the client; an older server has none
}

// isTerminal reports whether f is a terminal (a character device), or
// writes to one above the line being typed.
func isTerminal(f any) bool {
	if _, ok := f.(*overWriter); ok {
		return true
	}
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	st, err := file.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// messageHelp is the help of the commands above.
var messageHelp = [][2]string{
	{"/reply SEQ TEXT", "answer message SEQ (shown as [SEQ]) with TEXT"},
	{"/edit SEQ TEXT", "replace the text of your message SEQ"},
	{"/delete SEQ", "delete your message SEQ (operators: anyone's)"},
	{"/react SEQ EMOJI", "react to message SEQ: " + reactionHelp},
	{"/unreact SEQ EMOJI", "take your reaction back"},
	{"/search WORDS", "find messages with WORDS in your rooms; /search alone: older results"},
	{"/seqs on|off", "show the messages' numbers (on by itself once you use the commands above)"},
}

// withoutDelete is modcmd.Help without /delete, which messageHelp has.
func withoutDelete(help [][2]string) [][2]string {
	return slices.DeleteFunc(slices.Clone(help), func(h [2]string) bool { return strings.HasPrefix(h[0], "/delete") })
}
