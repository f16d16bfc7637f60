package ui

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// link is a web address in a message's text: the runes [start, end) of
// the text (rune offsets, as widget.Selectable counts), and the URL a
// click opens.
type link struct {
	start, end int // runes
	from, to   int // bytes
	url        string
}

// findLinks returns the web addresses in s, in order: words starting with
// http:// or https:// (any case) that name a host, and words starting
// with www. followed by a host, which open as https://. An address ends
// at white space or at a character that cannot be in one unescaped
// (<, >, ", `); trailing punctuation that ends the sentence rather than
// the address (. , ; : ! ? ' and a closing bracket without its opening
// one) is left out, so "see https://example.org/a_(b)." links
// https://example.org/a_(b).
func findLinks(s string) []link {
	if !strings.Contains(s, "://") && !containsFold(s, "www.") { // chat:// too
		return nil // most messages: one or two quick scans
	}
	var out []link
	runes := 0 // rune offset of s[i]
	for i := 0; i < len(s); {
		if start, ok := linkStart(s, i); ok {
			end := linkEnd(s, i, start)
			if end > 0 {
				word := s[i:end]
				url := word
				if start == len("www.") {
					url = "https://" + word
				}
				n := utf8.RuneCountInString(word)
				out = append(out, link{start: runes, end: runes + n, from: i, to: end, url: url})
				runes += n
				i = end
				continue
			}
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		runes++
	}
	return out
}

// linkStart reports whether an address starts at s[i], and the length of
// its prefix (the scheme and "://", or "www.").
func linkStart(s string, i int) (prefix int, ok bool) {
	c := s[i]
	if c != 'h' && c != 'H' && c != 'w' && c != 'W' && c != 'c' {
		return 0, false
	}
	if i > 0 {
		// Only at the start of a word: not "xhttp://" nor "a.www.b".
		r, _ := utf8.DecodeLastRuneInString(s[:i])
		if unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(".-_@/:+~", r) {
			return 0, false
		}
	}
	for _, p := range []string{"https://", "http://", "www.", messageLinkPrefix} {
		if len(s)-i >= len(p) && strings.EqualFold(s[i:i+len(p)], p) {
			return len(p), true
		}
	}
	return 0, false
}

// linkEnd returns where the address starting at s[i] with a prefix of
// the given length ends, or 0 when there is no host after the prefix.
func linkEnd(s string, i, prefix int) int {
	end := i + prefix
	for end < len(s) {
		r, size := utf8.DecodeRuneInString(s[end:])
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune("<>\"`", r) || r == utf8.RuneError {
			break
		}
		end += size
	}
	// Leave out what ends the sentence rather than the address.
	for end > i+prefix {
		c := s[end-1]
		switch {
		case strings.IndexByte(".,;:!?'*", c) >= 0:
			end--
			continue
		case c == ')' && strings.Count(s[i:end], "(") < strings.Count(s[i:end], ")"),
			c == ']' && strings.Count(s[i:end], "[") < strings.Count(s[i:end], "]"),
			c == '}' && strings.Count(s[i:end], "{") < strings.Count(s[i:end], "}"):
			end--
			continue
		}
		break
	}
	// A host: a letter or digit right after the prefix, and for www. a
	// dot later on ("www.example" is not an address, "www.example.org" is).
	host := s[i+prefix : end]
	if host == "" {
		return 0
	}
	if r, _ := utf8.DecodeRuneInString(host); !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '[' && !strings.HasPrefix(s[i:], messageLinkPrefix) {
		return 0
	}
	if prefix == len("www.") {
		name, _, _ := strings.Cut(host, "/")
		if !strings.Contains(strings.TrimRight(name, "."), ".") {
			return 0
		}
	}
	return end
}

// containsFold reports whether s contains sub (ASCII, any case).
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i]|0x20 == sub[0]|0x20 && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
