// Package textdir tells which way a paragraph runs, so that the UI can lay
// out a message in Hebrew or Arabic right to left: pass the direction to
// Gio in the layout context's locale,
//
//	gtx.Locale.Direction = textdir.Of(msg)
//
// before laying out the paragraph's text. Gio then takes the paragraph as
// right to left in its bidi algorithm, which places what has no direction
// of its own at the right end (the "!" ending a Hebrew sentence goes to
// its left, not after its first word), and its Start alignment is the
// right edge. Within a paragraph Gio orders runs of either direction
// whatever the paragraph's: a Latin word in a Hebrew sentence reads left
// to right, the words of a Hebrew line right to left.
package textdir

import (
	"gioui.org/io/system"
	"golang.org/x/text/unicode/bidi"
)

// Of returns the direction of paragraph s by the Unicode bidi rules P2
// and P3: that of its first strongly directional character (a letter, not
// a digit, space, punctuation or emoji), left to right if it has none.
func Of(s string) system.TextDirection {
	for _, r := range s {
		p, _ := bidi.LookupRune(r)
		switch p.Class() {
		case bidi.L:
			return system.LTR
		case bidi.R, bidi.AL:
			return system.RTL
		}
	}
	return system.LTR
}

// IsRTL reports whether paragraph s runs right to left.
func IsRTL(s string) bool { return Of(s) == system.RTL }
