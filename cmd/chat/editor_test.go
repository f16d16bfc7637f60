package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// edit runs the editor over keys and returns the lines entered, the
// typing reports, how input ended and what was echoed. The editor's
// clock stands still unless clock is given, so it reports changes only.
func edit(t *testing.T, keys string, limit int, clock func() time.Time) (lines []string, drafts []bool, ended bool, echo string) {
	t.Helper()
	var out bytes.Buffer
	e := &editor{in: strings.NewReader(keys), out: &out, now: clock}
	if clock == nil {
		e.now = func() time.Time { return time.Unix(0, 0) }
	}
	if limit > 0 {
		e.limit = func() int { return limit }
	}
	lc, dc, done := make(chan string), make(chan bool, 1), make(chan error, 1)
	go e.run(lc, dc, done)
	for {
		select {
		case l := <-lc:
			lines = append(lines, l)
		case d := <-dc:
			drafts = append(drafts, d)
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			select {
			case d := <-dc: // the last report, not taken yet
				drafts = append(drafts, d)
			default:
			}
			return lines, drafts, true, out.String()
		}
	}
}

// TestEditorEditsLikeATerminal: typing, erasing a character (DEL and
// backspace), a word (Ctrl-W) and the line (Ctrl-U), arrow keys ignored,
// Enter entering the line, Ctrl-D ending input only on an empty line;
// typing is reported when it starts and when it stops (the line is
// erased or entered, or is a command), not for every key.
func TestEditorEditsLikeATerminal(t *testing.T) {
	lines, drafts, ended, echo := edit(t, "hi\x7fo\r"+"say hello wor\x17there\r"+"gone\x15\x1b[Dok\x08\x08\x08\r"+"é\x04\r"+"/me\r\x04", 0, nil)
	if want := []string{"ho", "say hello there", "", "é", "/me"}; !slices.Equal(lines, want) {
		t.Errorf("lines %q, want %q", lines, want)
	}
	if !ended {
		t.Error("Ctrl-D on an empty line did not end input")
	}
	if len(drafts) == 0 || drafts[0] != true || drafts[len(drafts)-1] != false {
		t.Errorf("typing reports %v, want them to start with typing and end stopped", drafts)
	}
	// Five lines typed: at most a start and a stop each (fewer when a
	// report not taken yet is replaced by the next).
	if len(drafts) > 10 {
		t.Errorf("%d typing reports %v, want at most 10", len(drafts), drafts)
	}
	if !strings.HasPrefix(echo, "hi\r\x1b[Kho\r\n") {
		t.Errorf("echo %q", echo)
	}
}

// TestEditorTakesALongPaste: 100 KB pasted at once ends as one line of
// the longest text the server takes (what fits is kept, the rest refused
// with one bell), with at most two typing reports a line (started,
// stopped), not one per key; what is typed after the line was erased goes in again.
func TestEditorTakesALongPaste(t *testing.T) {
	paste := strings.Repeat("é", 50<<10) // 100 KB
	lines, drafts, _, echo := edit(t, paste+"\r"+"short\r\x04", 4097, nil)
	if len(lines) != 2 || lines[0] != paste[:4096] || lines[1] != "short" {
		t.Fatalf("lines of %d bytes, want 4096 and 5", len(strings.Join(lines, "")))
	}
	// A start and a stop for each line at most (a report not taken yet
	// is replaced by the next one).
	if len(drafts) == 0 || len(drafts) > 4 || !drafts[0] || drafts[len(drafts)-1] {
		t.Errorf("typing reports %v, want at most a start and a stop for each line", drafts)
	}
	if n := strings.Count(echo, "\a"); n != 1 {
		t.Errorf("the bell rang %d times, want once", n)
	}
}

// TestEditorRefreshesTyping: while the user keeps typing, typing is
// reported again once a second, so the room goes on hearing it; keys in
// between report nothing. A report not taken yet is replaced by the
// next, never waited for.
func TestEditorRefreshesTyping(t *testing.T) {
	now := time.Unix(100, 0)
	e := &editor{now: func() time.Time { return now }}
	drafts := make(chan bool, 1)
	took := func() []bool {
		select {
		case d := <-drafts:
			return []bool{d}
		default:
			return nil
		}
	}
	var got []bool
	for _, step := range []struct {
		after  time.Duration
		typing bool
	}{{0, true}, {300 * time.Millisecond, true}, {800 * time.Millisecond, true}, {100 * time.Millisecond, true}, {0, false}} {
		now = now.Add(step.after)
		e.report(step.typing, drafts)
		got = append(got, took()...)
	}
	// started; 0.3 s: nothing; 1.1 s: again; 1.2 s: nothing; stopped.
	if want := []bool{true, true, false}; !slices.Equal(got, want) {
		t.Errorf("reports %v, want %v", got, want)
	}
	e.report(true, drafts)
	e.report(false, drafts) // not taken: replaces the one before
	if got := took(); !slices.Equal(got, []bool{false}) {
		t.Errorf("after two reports not taken: %v, want the newest alone", got)
	}
}

// TestOutputGoesAboveTheDraft: what chat prints while a line is being
// typed erases the draft, and draws it again below.
func TestOutputGoesAboveTheDraft(t *testing.T) {
	var term bytes.Buffer
	e := &editor{out: &term, line: []rune("half a li")}
	w := e.over(&term)
	w.Write([]byte("[15:04] bob: hi\n"))
	if got := term.String(); got != "\r\x1b[K[15:04] bob: hi\nhalf a li" {
		t.Errorf("terminal got %q", got)
	}
	if !isTerminal(w) {
		t.Error("the writer above the draft is not taken for a terminal")
	}
}
