// Package fontmanifest is the list of font files the server offers for
// scripts the Go fonts lack (Hebrew, Arabic, Devanagari, emoji, CJK), and
// which characters each one is for. internal/fontpack writes it at build
// time (fonts/manifest.json), the server adds each file's version, and
// the apps read it to fetch only the files the text on screen needs.
//
// The file looks like
//
//	{"files": [{"file": "noto-sans-hebrew-hebrew.woff", "family": "Noto Sans Hebrew",
//	            "ranges": "591-5c7,5d0-5ea,…", "size": 8952, "v": "0123456789abcdef"}, …]}
//
// ranges are hexadecimal code points and inclusive ranges, sorted and
// disjoint: a character belongs to at most one file.
package fontmanifest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Name is the manifest's file name, next to the font files.
const Name = "manifest.json"

// Manifest lists the font files.
type Manifest struct {
	Files []File `json:"files"`
}

// File is one font file and the characters to fetch it for.
type File struct {
	File   string `json:"file"`   // its name, next to the manifest
	Family string `json:"family"` // the font family, for people reading the manifest
	Ranges Ranges `json:"ranges"`
	Size   int64  `json:"size"`
	// V is the file's content version, which the server adds: a request
	// for File?v=V may be cached for good.
	V string `json:"v,omitempty"`
}

// URL is the file's address relative to the manifest.
func (f File) URL() string {
	if f.V == "" {
		return f.File
	}
	return f.File + "?v=" + f.V
}

// Parse reads a manifest and checks that no two files claim a character.
func Parse(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("font manifest: %w", err)
	}
	var all Ranges
	for _, f := range m.Files {
		if !validName(f.File) {
			return nil, fmt.Errorf("font manifest: bad file name %q", f.File)
		}
		all = append(all, f.Ranges...)
	}
	slices.SortFunc(all, func(a, b [2]rune) int { return int(a[0] - b[0]) })
	for i := 1; i < len(all); i++ {
		if all[i][0] <= all[i-1][1] {
			return nil, fmt.Errorf("font manifest: %X-%X is claimed twice", all[i][0], min(all[i][1], all[i-1][1]))
		}
	}
	return &m, nil
}

// validName accepts "name.woff" and "dir/name.woff": lower-case letters,
// digits, '-', '_' and '.', no name starting with a dot.
func validName(name string) bool {
	parts := strings.Split(name, "/")
	if len(parts) > 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || p[0] == '.' {
			return false
		}
		for _, c := range p {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
				return false
			}
		}
	}
	return true
}

// Lookup returns the index of the file for r, or -1.
func (m *Manifest) Lookup(r rune) int {
	for i, f := range m.Files {
		if f.Ranges.Contains(r) {
			return i
		}
	}
	return -1
}

// Ranges is a sorted list of disjoint inclusive ranges of code points.
type Ranges [][2]rune

// Contains reports whether r is in one of the ranges.
func (rs Ranges) Contains(r rune) bool {
	i, _ := slices.BinarySearchFunc(rs, r, func(rg [2]rune, r rune) int {
		switch {
		case rg[1] < r:
			return -1
		case rg[0] > r:
			return 1
		}
		return 0
	})
	return i < len(rs) && rs[i][0] <= r && r <= rs[i][1]
}

// Normalize sorts the ranges and merges those that overlap or touch.
func (rs Ranges) Normalize() Ranges {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b [2]rune) int { return int(a[0] - b[0]) })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && r[0] <= merged[n-1][1]+1 {
			merged[n-1][1] = max(merged[n-1][1], r[1])
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// Minus returns the parts of rs not in other (both normalized).
func (rs Ranges) Minus(other Ranges) Ranges {
	var out Ranges
	for _, r := range rs {
		lo, hi := r[0], r[1]
		for _, o := range other {
			if o[1] < lo || o[0] > hi {
				continue
			}
			if o[0] > lo {
				out = append(out, [2]rune{lo, o[0] - 1})
			}
			lo = o[1] + 1
			if lo > hi {
				break
			}
		}
		if lo <= hi {
			out = append(out, [2]rune{lo, hi})
		}
	}
	return out
}

// Intersect returns the parts of rs also in other (both normalized).
func (rs Ranges) Intersect(other Ranges) Ranges {
	var out Ranges
	for _, r := range rs {
		for _, o := range other {
			lo, hi := max(r[0], o[0]), min(r[1], o[1])
			if lo <= hi {
				out = append(out, [2]rune{lo, hi})
			}
		}
	}
	return out.Normalize()
}

// Count is the number of code points in the ranges.
func (rs Ranges) Count() int {
	n := 0
	for _, r := range rs {
		n += int(r[1]-r[0]) + 1
	}
	return n
}

// String is the ranges as the manifest writes them: "5d0-5ea,fb1d".
func (rs Ranges) String() string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(int64(r[0]), 16))
		if r[1] != r[0] {
			b.WriteByte('-')
			b.WriteString(strconv.FormatInt(int64(r[1]), 16))
		}
	}
	return b.String()
}

// ParseRanges reads ranges as String writes them; it also accepts CSS
// unicode-range syntax ("U+0590-05FF, U+20AA").
func ParseRanges(s string) (Ranges, error) {
	var rs Ranges
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		part = strings.TrimPrefix(strings.TrimPrefix(part, "U+"), "u+")
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.ParseUint(a, 16, 32)
		if err != nil {
			return nil, fmt.Errorf("bad code point %q", part)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseUint(b, 16, 32); err != nil || hi < lo {
				return nil, fmt.Errorf("bad range %q", part)
			}
		}
		if hi > 0x10FFFF {
			return nil, fmt.Errorf("code point out of range in %q", part)
		}
		rs = append(rs, [2]rune{rune(lo), rune(hi)})
	}
	return rs.Normalize(), nil
}

// MarshalJSON writes the ranges as a string (see String).
func (rs Ranges) MarshalJSON() ([]byte, error) { return json.Marshal(rs.String()) }

// UnmarshalJSON reads what MarshalJSON writes.
func (rs *Ranges) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	r, err := ParseRanges(s)
	if err != nil {
		return err
	}
	*rs = r
	return nil
}
