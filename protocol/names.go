package protocol

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Default limits a server announces in WELCOME unless configured otherwise.
const (
	DefaultMaxName  = 32   // bytes
	DefaultMaxRoom  = 64   // bytes
	DefaultMaxText  = 4096 // bytes
	DefaultMaxRooms = 64   // an app holds its rooms and direct-message rooms on one connection
	// MaxIDLen is the longest client message id, in bytes.
	MaxIDLen = 64
	// DefaultRoom is the room clients join when the user names none.
	DefaultRoom = "general"
)

// Reasons a name or room is refused by CheckName.
var (
	ErrEmpty      = errors.New("is empty")
	ErrEdgeSpace  = errors.New("starts or ends with a space")
	ErrInvisible  = errors.New("contains a control or invisible character")
	ErrNoVisible  = errors.New("has no visible character")
	ErrWhitespace = errors.New("contains whitespace other than a plain space")
)

// CheckName reports why s cannot be used as a member or room name, or nil.
// Length limits are checked separately, against the announced maxima.
//
// The rules keep names readable and distinguishable: no control, format
// (bidi overrides, zero-width characters other than the emoji joiner),
// private-use, default-ignorable or non-character code points, no
// whitespace but single plain spaces inside, at least one visible character.
func CheckName(s string) error {
	if s == "" {
		return ErrEmpty
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return ErrEdgeSpace
	}
	visible := false
	for _, r := range s {
		switch {
		case r == ' ':
		case r == '\u200d': // zero-width joiner: part of emoji sequences
		case invisible(r):
			return ErrInvisible
		case unicode.IsSpace(r):
			return ErrWhitespace
		case !unicode.Is(unicode.M, r):
			visible = true
		}
	}
	if !visible {
		return ErrNoVisible
	}
	return nil
}

func invisible(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp,
		unicode.Other_Default_Ignorable_Code_Point) ||
		r == '\u2800' || // braille blank renders as nothing
		(r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE // non-characters
}

// Key returns the form of a name or room used for comparisons: names and
// rooms that differ only in case or Unicode compatibility form (fullwidth
// letters, ligatures) have the same key.
func Key(s string) string {
	switch ascii, lower := asciiCase(s); {
	case lower:
		return s
	case ascii:
		// NFKC leaves ASCII as it is and case folding lowers A-Z only.
		return strings.ToLower(s)
	}
	return norm.NFKC.String(cases.Fold().String(norm.NFKC.String(s)))
}

// asciiCase reports whether s is ASCII, and ASCII without capitals.
func asciiCase(s string) (ascii, lower bool) {
	lower = true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf:
			return false, false
		case 'A' <= c && c <= 'Z':
			lower = false
		}
	}
	return true, lower
}
