package main

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// editor is the line editing of an interactive terminal. The terminal's
// own line discipline hands a program nothing until Enter, so a program
// cannot tell that the user is typing; with it off (rawInput), the editor
// reads each key, does the editing the terminal did (echo, erase, erase
// word, erase line, end of input) and reports the draft after each key
// (drafts): chat tells the room the user is typing. What chat prints goes
// through it too (over), above the line being typed, which is drawn again
// below.
type editor struct {
	in  io.Reader
	out io.Writer // the terminal

	mu   sync.Mutex
	line []rune // the draft
}

// Keys the editor acts on.
const (
	keyEOF       = 0x04 // Ctrl-D: end of input on an empty line
	keyBackspace = 0x08
	keyRedraw    = 0x0c // Ctrl-L
	keyEraseLine = 0x15 // Ctrl-U
	keyEraseWord = 0x17 // Ctrl-W
	keyEscape    = 0x1b
	keyDelete    = 0x7f
)

// run reads keys until the end of input: each line on lines, the draft
// after each key that changed it on drafts, and the end (nil for Ctrl-D
// on an empty line) on done.
func (e *editor) run(lines, drafts chan<- string, done chan<- error) {
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
		draft, line, changed, end := e.key(ch, r)
		if end {
			done <- nil
			return
		}
		if line != nil {
			lines <- *line
		}
		if changed {
			drafts <- draft
		}
	}
}

// key applies one key; it returns the draft after it, the line entered
// (Enter), whether the draft changed, and whether input ended.
func (e *editor) key(ch rune, r *bufio.Reader) (draft string, line *string, changed, end bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	before := len(e.line)
	switch {
	case ch == '\r' || ch == '\n':
		s := string(e.line)
		e.line = e.line[:0]
		io.WriteString(e.out, "\r\n")
		return "", &s, before > 0, false
	case ch == keyEOF:
		if len(e.line) == 0 {
			io.WriteString(e.out, "\r\n")
			return "", nil, false, true
		}
		return string(e.line), nil, false, false
	case ch == keyDelete || ch == keyBackspace:
		if len(e.line) > 0 {
			e.line = e.line[:len(e.line)-1]
			e.redraw()
		}
	case ch == keyEraseLine:
		e.line = e.line[:0]
		e.redraw()
	case ch == keyEraseWord:
		s := strings.TrimRightFunc(string(e.line), unicode.IsSpace)
		s = s[:strings.LastIndexFunc(s, unicode.IsSpace)+1]
		e.line = []rune(s)
		e.redraw()
	case ch == keyRedraw:
		e.redraw()
	case ch == keyEscape:
		skipEscape(r) // arrow keys and the like: no cursor movement here
	case ch == utf8.RuneError || unicode.IsControl(ch):
		// Tab and other control keys: not part of a chat line.
	default:
		e.line = append(e.line, ch)
		io.WriteString(e.out, string(ch))
		return string(e.line), nil, true, false
	}
	return string(e.line), nil, len(e.line) != before, false
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
