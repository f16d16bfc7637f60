package protocol

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DMPrefix starts the name of every direct-message room, and only theirs.
const DMPrefix = "@"

// ErrAt: names may not contain '@', which marks mentions and the two names
// of a direct-message room.
var ErrAt = errors.New("contains @, which marks mentions and direct messages")

// ErrDMForm: a room name starting with '@' must be a direct-message room.
var ErrDMForm = errors.New("starts with @ but is not a direct-message room (@name@name)")

// CheckMemberName is CheckName for a member's name: names may also not
// contain '@' (in any compatibility form, such as the fullwidth ＠).
func CheckMemberName(s string) error {
	if err := CheckName(s); err != nil {
		return err
	}
	if strings.Contains(Key(s), "@") {
		return ErrAt
	}
	return nil
}

// CheckRoom reports why s cannot be used as a room name, or nil. A name
// that starts with '@' must be a direct-message room: '@', a name, '@', a
// name (see DMRoom).
func CheckRoom(s string) error {
	if err := CheckName(s); err != nil {
		return err
	}
	if strings.HasPrefix(Key(s), DMPrefix) {
		if _, _, ok := ParseDM(s); !ok {
			return ErrDMForm
		}
	}
	return nil
}

// IsDM reports whether room names a direct-message room.
func IsDM(room string) bool { return strings.HasPrefix(Key(room), DMPrefix) }

// DMRoom returns the canonical name of the direct-message room of names a
// and b: "@", the smaller key, "@", the larger key (keys compared byte by
// byte). Both orders and any spelling of the names give the same room.
func DMRoom(a, b string) string {
	ka, kb := Key(a), Key(b)
	if kb < ka {
		ka, kb = kb, ka
	}
	return DMPrefix + ka + DMPrefix + kb
}

// ParseDM splits a direct-message room name into the keys of its two
// names, in canonical order. ok is false for any other room name.
func ParseDM(room string) (a, b string, ok bool) {
	k := Key(room)
	rest, found := strings.CutPrefix(k, DMPrefix)
	if !found {
		return "", "", false
	}
	a, b, found = strings.Cut(rest, DMPrefix)
	if !found || CheckMemberName(a) != nil || CheckMemberName(b) != nil || Key(a) != a || Key(b) != b {
		return "", "", false
	}
	if b < a {
		a, b = b, a
	}
	return a, b, true
}

// DMPeer returns the key of the other name of a direct-message room, seen
// by the name me; a room with oneself returns me's key. ok is false when
// room is not a direct-message room of me.
func DMPeer(room, me string) (peer string, ok bool) {
	a, b, ok := ParseDM(room)
	if !ok {
		return "", false
	}
	switch Key(me) {
	case a:
		return b, true
	case b:
		return a, true
	}
	return "", false
}

// MaxDMRoom is the longest direct-message room name for a server whose
// names are at most maxName bytes; it may exceed the announced max room.
func MaxDMRoom(maxName int) int { return 2 + 2*maxName }

// The bounds of the mention rule, the same for Mentions and MentionedKeys
// so that a client and its server agree on every text.
const (
	// maxMentionAts: only the first '@' of a text that can start a
	// mention count.
	maxMentionAts = 16
	// maxMentionCandidates: only the first candidate names after an '@'
	// count (after "@bob smith hi": bob, bob smith, bob smith hi).
	maxMentionCandidates = 8
)

// Mentions reports whether text mentions name: an '@' at the start of the
// text or after a character that is not a letter, digit, combining mark or
// '_' (so that "a@b.org" mentions nobody), followed by the name in any
// spelling with the same key, followed by the end of the text or a
// character that cannot continue a name: not a letter, digit, combining
// mark, '_', zero width joiner or emoji skin-tone modifier. "@Bob," and
// "@ＢＯＢ" mention bob; "@bobby", "@bob_2" and "@राम" (र followed by the
// vowel sign ा) do not mention bob or र.
//
// Each such spelling after an '@' is a candidate: "@bob smith, hi" has the
// candidates "bob", "bob smith", "bob smith," and "bob smith, hi". Only the first 16 '@'
// that can start a mention count, and the first 8 candidates after each.
// A candidate ends at the latest before an '@' (in any form, such as ＠)
// or a control character, which no name contains.
func Mentions(text, name string) bool {
	key := Key(name)
	found := false
	// A spelling is at most about 3 times as long as its key (fullwidth
	// letters), and a longer candidate has a longer key: these limits
	// only skip candidates that cannot be the name.
	scanMentions(text, 4*len(key)+8, func(k string) scanAction {
		switch {
		case k == key:
			found = true
			return scanStop
		case len(k) > len(key):
			return scanNextAt
		}
		return scanNext
	})
	return found
}

// MentionedKeys returns the keys of the candidates of text (see Mentions)
// that are at most maxName bytes long: a server looks them up among its
// names, and finds exactly the names for which Mentions is true (names
// whose keys are longer than maxName aside). "@bob smith hi" gives bob,
// bob smith and bob smith hi; no text gives more than 128 keys (16 '@'
// with 8 candidates each), an ordinary one a few per '@'. The keys are
// not checked with CheckName: the key of a valid name may break its rules
// (NFKC turns "‾a" into " \u0305a").
func MentionedKeys(text string, maxName int) []string {
	var keys []string
	seen := map[string]bool{}
	scanMentions(text, 4*maxName+8, func(k string) scanAction {
		if len(k) > maxName {
			return scanNextAt
		}
		if !seen[k] && !strings.Contains(k, "@") {
			seen[k] = true
			keys = append(keys, k)
		}
		return scanNext
	})
	return keys
}

// scanAction tells scanMentions how to go on after a candidate.
type scanAction int

const (
	scanNext   scanAction = iota // the next candidate
	scanNextAt                   // the candidates of the next '@'
	scanStop                     // nothing more
)

// scanMentions calls f with the key of every candidate mention in text
// (see Mentions) whose spelling is at most span bytes.
func scanMentions(text string, span int, f func(key string) scanAction) {
	ats := 0
	for i := 0; i < len(text) && ats < maxMentionAts; i++ {
		if text[i] != '@' {
			continue
		}
		if i > 0 {
			prev, _ := utf8.DecodeLastRuneInString(text[:i])
			if wordRune(prev) {
				continue
			}
		}
		ats++
		start, candidates := i+1, 0
		for j := start; j < len(text) && candidates < maxMentionCandidates; {
			r, size := utf8.DecodeRuneInString(text[j:])
			if endsMention(r) || j+size-start > span {
				break
			}
			j += size
			if j < len(text) {
				if next, _ := utf8.DecodeRuneInString(text[j:]); continuesName(next) {
					continue
				}
			}
			candidates++
			switch f(Key(text[start:j])) {
			case scanNextAt:
				j = len(text)
			case scanStop:
				return
			}
		}
	}
}

// endsMention reports whether no name can go on past r: names contain no
// '@' (whose compatibility forms ＠ and ﹫ have it as their key) and no
// control character (which keys keep).
func endsMention(r rune) bool {
	return r == '@' || r == '\uFF20' || r == '\uFE6B' || unicode.Is(unicode.Cc, r)
}

// wordRune reports whether r, before an '@', makes it part of a word (an
// address such as a@b.org) rather than the start of a mention.
func wordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.M, r)
}

// continuesName reports whether r, after a candidate name, continues it:
// "@bobby", "@bob_2", "@bobé" (e, combining acute) and "@राम" (र, vowel
// sign ा, म) mention neither bob nor bobe nor र. The zero width joiner and
// the skin-tone modifiers continue emoji sequences.
func continuesName(r rune) bool {
	return wordRune(r) || r == '\u200d' || (r >= 0x1F3FB && r <= 0x1F3FF)
}
