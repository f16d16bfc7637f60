package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// edit runs the editor over keys and returns the lines entered, the
// drafts reported, how input ended and what was echoed.
func edit(t *testing.T, keys string) (lines, drafts []string, ended bool, echo string) {
	t.Helper()
	var out bytes.Buffer
	e := &editor{in: strings.NewReader(keys), out: &out}
	lc, dc, done := make(chan string), make(chan string), make(chan error, 1)
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
			return lines, drafts, true, out.String()
		}
	}
}

// TestEditorEditsLikeATerminal: typing, erasing a character (DEL and
// backspace), a word (Ctrl-W) and the line (Ctrl-U), arrow keys ignored,
// Enter entering the line, Ctrl-D ending input only on an empty line;
// the draft after each key that changed it.
func TestEditorEditsLikeATerminal(t *testing.T) {
	lines, drafts, ended, echo := edit(t, "hi\x7fo\r"+"say hello wor\x17there\r"+"gone\x15\x1b[Dok\x08\x08\x08\r"+"é\x04\r\x04")
	if want := []string{"ho", "say hello there", "", "é"}; !slices.Equal(lines, want) {
		t.Errorf("lines %q, want %q", lines, want)
	}
	if !ended {
		t.Error("Ctrl-D on an empty line did not end input")
	}
	if want := []string{"h", "hi", "h", "ho", ""}; !slices.Equal(drafts[:5], want) {
		t.Errorf("drafts %q, want them to start with %q", drafts, want)
	}
	if !slices.Contains(drafts, "say hello ") || slices.Contains(drafts, "[D") {
		t.Errorf("drafts %q", drafts)
	}
	if !strings.HasPrefix(echo, "hi\r\x1b[Kho\r\n") {
		t.Errorf("echo %q", echo)
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
