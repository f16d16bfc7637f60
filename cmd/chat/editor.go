package main

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// editor is the line editing of an interactive terminal. The terminal's
// own line discipline hands a program nothing until Enter, so a program
// cannot tell that the user is typing; with it off (rawInput), the editor
// reads each key, does the editing the terminal did (echo, erase, erase
// word, erase line, end of input) and reports whether the user is typing
// a message (drafts): chat tells the room. What chat prints goes through
// it too (over), above the line being typed, which is drawn again below.
//
// A paste of a long text is many keys at once: each key costs the editor
// constant work (no copy of the line), the reports are coalesced (a
// change of state, or a refresh once a second while typing, never
// waiting for chat to take them), and the line stops at the longest text
// the server takes (limit): further keys ring the bell and are dropped,
// what was typed before stays.
type editor struct {
	in    io.Reader
	out   io.Writer        // the terminal
	limit func() int       // longest line in bytes; nil: no limit
	now   func() time.Time // nil: time.Now

	mu   sync.Mutex
	line []rune // the draft
	size int    // len(string(line))
	full bool   // the bell rang for a key refused; quiet until the line shrinks

	typing   bool      // the state last reported on drafts
	reported time.Time // when it was reported
}

// typingRefresh is how often the editor reports again that the user is
// still typing (the client sends at most one TYPING per 3 s; apps expire
// one after 6 s).
const typingRefresh = time.Second

// Keys the editor acts on.
const (
	keyEOF       = 0x04 // Ctrl-D: end of input on an empty line
	keyBell      = 0x07
	keyBackspace = 0x08
	keyRedraw    = 0x0c // Ctrl-L
	keyEraseLine = 0x15 // Ctrl-U
	keyEraseWord = 0x17 // Ctrl-W
	keyEscape    = 0x1b
	keyDelete    = 0x7f
)

// run reads keys until the end of input: each line on lines, whether
// the user is typing a message (a draft that is not empty and not a
// command) on drafts, and the end (nil for Ctrl-D on an empty line) on
// done. drafts should have room for one report: the editor never waits
// for it, a newer report replaces one not taken yet.
func (e *editor) run(lines chan<- string, drafts chan bool, done chan<- error) {
	r := bufio.NewReader(e.in)
	for {
		ch, _, err := r.ReadRune()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			done <- err
			return
		}
		typing, line, end := e.key(ch, r)
		if end {
			done <- nil
			return
		}
		if line != nil {
			lines <- *line
		}
		e.report(typing, drafts)
	}
}

// report puts typing on drafts if it differs from what was reported, or
// if the user is still typing after typingRefresh, without waiting: a
// report not taken yet is replaced (the editor is the only sender, so
// after taking it back there is room).
func (e *editor) report(typing bool, drafts chan bool) {
	now := time.Now
	if e.now != nil {
		now = e.now
	}
	t := now()
	if typing == e.typing && (!typing || t.Sub(e.reported) < typingRefresh) {
		return
	}
	e.typing, e.reported = typing, t
	select {
	case drafts <- typing:
	default:
		select {
		case <-drafts:
		default:
		}
		drafts <- typing
	}
}

// key applies one key; it returns whether the user is typing a message
// after it, the line entered (Enter), and whether input ended.
func (e *editor) key(ch rune, r *bufio.Reader) (typing bool, line *string, end bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case ch == '\r' || ch == '\n':
		s := string(e.line)
		e.line, e.size, e.full = e.line[:0], 0, false
		io.WriteString(e.out, "\r\n")
		return false, &s, false
	case ch == keyEOF:
		if len(e.line) == 0 {
			io.WriteString(e.out, "\r\n")
			return false, nil, true
		}
	case ch == keyDelete || ch == keyBackspace:
		if len(e.line) > 0 {
			e.line = e.line[:len(e.line)-1]
			e.resized()
			e.redraw()
		}
	case ch == keyEraseLine:
		e.line = e.line[:0]
		e.resized()
		e.redraw()
	case ch == keyEraseWord:
		s := strings.TrimRightFunc(string(e.line), unicode.IsSpace)
		s = s[:strings.LastIndexFunc(s, unicode.IsSpace)+1]
		e.line = []rune(s)
		e.resized()
		e.redraw()
	case ch == keyRedraw:
		e.redraw()
	case ch == keyEscape:
		skipEscape(r) // arrow keys and the like: no cursor movement here
	case ch == utf8.RuneError || unicode.IsControl(ch):
		// Tab and other control keys: not part of a chat line.
	case e.limit != nil && e.size+utf8.RuneLen(ch) > e.limit():
		// Longer than the server takes: refused, once with the bell
		// (a paste would ring it for every key).
		if !e.full {
			e.full = true
			io.WriteString(e.out, string(rune(keyBell)))
		}
	default:
		e.line = append(e.line, ch)
		e.size += utf8.RuneLen(ch)
		io.WriteString(e.out, string(ch))
	}
	return e.typingMessage(), nil, false
}

// resized recounts the line's size after it shrank. The caller holds mu.
func (e *editor) resized() {
	e.size, e.full = 0, false
	for _, ch := range e.line {
		e.size += utf8.RuneLen(ch)
	}
}

// typingMessage reports whether the draft is a message: not empty, and
// not a command (a "/" not doubled). The caller holds mu.
func (e *editor) typingMessage() bool {
	switch {
	case len(e.line) == 0:
		return false
	case e.line[0] != '/':
		return true
	default:
		return len(e.line) > 1 && e.line[1] == '/'
	}
}

// skipEscape reads the rest of an escape sequence (ESC [ … final, or
// ESC O x), if one is there already.
func skipEscape(r *bufio.Reader) {
	if r.Buffered() == 0 {
		return // ESC alone
	}
	b, _ := r.ReadByte()
	switch b {
	case '[':
		for r.Buffered() > 0 {
			c, _ := r.ReadByte()
			if c >= 0x40 && c <= 0x7e {
				return
			}
		}
	case 'O':
		if r.Buffered() > 0 {
			r.ReadByte()
		}
	}
}

// redrawDraft draws the draft again (after the terminal was someone
// else's: Ctrl-Z and fg).
func (e *editor) redrawDraft() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.redraw()
}

// redraw draws the draft again on its line. The caller holds mu.
func (e *editor) redraw() {
	io.WriteString(e.out, "\r\x1b[K"+clean(string(e.line)))
}

// over returns a writer that writes to w (the terminal, as stdout or
// stderr) above the line being typed: the draft is erased, the text
// written, and the draft drawn again after it.
func (e *editor) over(w io.Writer) io.Writer { return &overWriter{e, w} }

type overWriter struct {
	e *editor
	w io.Writer
}

func (o *overWriter) Write(p []byte) (int, error) {
	o.e.mu.Lock()
	defer o.e.mu.Unlock()
	if len(o.e.line) > 0 {
		io.WriteString(o.e.out, "\r\x1b[K")
	}
	n, err := o.w.Write(p)
	if len(o.e.line) > 0 && len(p) > 0 && p[len(p)-1] == '\n' {
		io.WriteString(o.e.out, clean(string(o.e.line)))
	}
	return n, err
}
