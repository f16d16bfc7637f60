package history

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"chat/protocol"
)

// Search limits: a Query's Limit of 0 (or less) asks for
// DefaultSearchLimit hits, and no search returns more than
// MaxSearchLimit.
const (
	DefaultSearchLimit = 20
	MaxSearchLimit     = 50
)

// SearchLimit is q's Limit within the bounds above.
func SearchLimit(q Query) int {
	switch {
	case q.Limit <= 0:
		return DefaultSearchLimit
	case q.Limit > MaxSearchLimit:
		return MaxSearchLimit
	}
	return q.Limit
}

// A word is a run of letters, digits, private-use characters and
// combining marks, as SQLite FTS5's unicode61 tokenizer cuts text; every
// other character (space, punctuation, symbols, emoji) separates words.
// Words compare folded: lower case, without diacritics ("Café" is
// "cafe"), as the tokenizer's remove_diacritics 2 option folds them.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Co, r) || unicode.Is(unicode.Mn, r)
}

// Fold returns word as searches compare it: decomposed, without its
// combining marks, in lower case.
func Fold(word string) string {
	d := norm.NFD.String(word)
	var b strings.Builder
	b.Grow(len(d))
	for _, r := range d {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// span is one word of a text: its byte range and folded form.
type span struct {
	start, end int
	folded     string
}

// wordsOf cuts text into its words.
func wordsOf(text string) []span {
	var out []span
	start := -1
	for i, r := range text {
		word := r != utf8.RuneError && isWordRune(r)
		switch {
		case word && start < 0:
			start = i
		case !word && start >= 0:
			out = append(out, span{start, i, Fold(text[start:i])})
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, span{start, len(text), Fold(text[start:])})
	}
	// A word whose every rune is a combining mark folds to nothing.
	return deleteEmpty(out)
}

func deleteEmpty(ws []span) []span {
	out := ws[:0]
	for _, w := range ws {
		if w.folded != "" {
			out = append(out, w)
		}
	}
	return out
}

// QueryWords returns the folded words of a search's text, in order; none
// means the query has nothing to look for (ErrBadQuery).
func QueryWords(text string) []string {
	ws := wordsOf(text)
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.folded
	}
	return out
}

// IsPrefix reports whether the last of the query words also matches as
// the beginning of a word: when it has two characters or more (one
// letter would begin nearly every message).
func IsPrefix(words []string) bool {
	return len(words) > 0 && utf8.RuneCountInString(words[len(words)-1]) >= 2
}

// Match reports whether text matches the query words (QueryWords): each
// of them is a word of text, the last one (IsPrefix) also the beginning
// of one; and where, as the byte ranges of text's matching words, in
// order.
func Match(text string, words []string) (bool, []protocol.Span) {
	if len(words) == 0 {
		return false, nil
	}
	last, prefix := words[len(words)-1], IsPrefix(words)
	found := make([]bool, len(words))
	var spans []protocol.Span
	for _, w := range wordsOf(text) {
		hit := false
		for i, q := range words {
			if w.folded == q || (prefix && i == len(words)-1 && strings.HasPrefix(w.folded, last)) {
				found[i], hit = true, true
			}
		}
		if hit {
			spans = append(spans, protocol.Span{Start: uint64(w.start), End: uint64(w.end)})
		}
	}
	for _, f := range found {
		if !f {
			return false, nil
		}
	}
	return true, spans
}
