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

// maxMentionScan bounds how many '@' of one text are considered, and
// maxMentions how many names one text can mention.
const (
	maxMentionScan = 32
	maxMentions    = 16
)

// Mentions reports whether text mentions name: an '@' at the start of the
// text or after a character that is not a letter, digit, combining mark or
// '_' (so that "a@b.org" mentions nobody), followed by the name in any
// spelling with the same key, followed by the end of the text or a
// character that cannot continue a name: not a letter, digit, combining
// mark, '_', zero width joiner or emoji skin-tone modifier. "@Bob," and
// "@ＢＯＢ" mention bob; "@bobby", "@bob_2" and "@राम" (र followed by the
// vowel sign ा) do not mention bob or र. Only the first 32 '@' of a text
// that can start a mention count.
func Mentions(text, name string) bool {
	key := Key(name)
	found := false
	scanMentions(text, 4*len(name)+8, func(k string) bool {
		found = k == key
		return !found
	})
	return found
}

// MentionedKeys returns the keys of the names that text could mention
// (by the rule of Mentions), each at most maxName bytes long and without
// '@': a server looks them up among its names. "@bob smith hi" gives bob,
// bob smith and bob smith hi. At most 64 keys are returned for any text;
// a text with more candidates loses the later ones. The keys are not
// checked with CheckName: the key of a valid name may break its rules
// (NFKC turns "‾a" into " \u0305a"), and only the lookup says whether a
// name has that key.
func MentionedKeys(text string, maxName int) []string {
	var keys []string
	seen := map[string]bool{}
	scanMentions(text, 4*maxName, func(k string) bool {
		if len(k) <= maxName && !seen[k] && !strings.Contains(k, "@") {
			seen[k] = true
			keys = append(keys, k)
		}
		return len(keys) < 4*maxMentions
	})
	return keys
}

// scanMentions calls f with the key of every candidate mention in text
// (up to span bytes after an '@'), until f returns false.
func scanMentions(text string, span int, f func(key string) bool) {
	scanned := 0
	for i := 0; i < len(text) && scanned < maxMentionScan; i++ {
		if text[i] != '@' {
			continue
		}
		if i > 0 {
			prev, _ := utf8.DecodeLastRuneInString(text[:i])
			if wordRune(prev) {
				continue
			}
		}
		scanned++
		start := i + 1
		for j := start; j <= len(text) && j-start <= span; {
			if j > start {
				next, _ := utf8.DecodeRuneInString(text[j:])
				if j == len(text) || !continuesName(next) {
					if !f(Key(text[start:j])) {
						return
					}
				}
			}
			if j == len(text) {
				break
			}
			_, size := utf8.DecodeRuneInString(text[j:])
			j += size
		}
	}
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
