package protocol

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSpecTablesMatchDecoder reads the message tables of README.md section
// 3 and checks that specFields and specRecords, from which the golden
// vectors' JSON is checked, say field for field what the spec says: a
// field added to the code and the vectors but not to the spec, or written
// in the spec in another order or encoding, fails here.
func TestSpecTablesMatchDecoder(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	spec := specTables(t, string(data))
	for typ, fields := range specFields {
		name := typeNames[Type(typ)]
		got, ok := spec[typ]
		if !ok {
			t.Errorf("%s 0x%02x: no **%s `0x%02x`** in README.md section 3", name, typ, name, typ)
			continue
		}
		var want []string
		for _, f := range fields {
			want = append(want, f.name+": "+string(encoding(typ, f)))
		}
		if strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Errorf("%s: the spec has\n  %s\nthe test's decoder\n  %s", name, strings.Join(got, "; "), strings.Join(want, "; "))
		}
	}
	for typ := range spec {
		if _, ok := specFields[typ]; !ok {
			t.Errorf("the spec has type 0x%02x, the test's decoder does not", typ)
		}
	}
}

var (
	specHeading = regexp.MustCompile("^\\*\\*([A-Z-]+) `0x([0-9a-f]{2})`\\*\\*(.*)$")
	specInline  = regexp.MustCompile("— `([a-z ]+): ([a-z]+)`")
)

// specTables returns, by type byte, the fields of section 3 as
// "name: encoding" in the test decoder's spelling.
func specTables(t *testing.T, readme string) map[byte][]string {
	_, sec, ok := strings.Cut(readme, "\n## 3. Messages")
	if !ok {
		t.Fatal("README.md has no section 3")
	}
	sec, _, _ = strings.Cut(sec, "\n## 4.")
	lines := strings.Split(sec, "\n")
	tables := map[byte][]string{}
	for i := 0; i < len(lines); i++ {
		m := specHeading.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		var typ byte
		fmt.Sscanf(m[2], "%x", &typ)
		if typeNames[Type(typ)] != m[1] {
			t.Errorf("the spec calls 0x%02x %s, the code %s", typ, m[1], typeNames[Type(typ)])
		}
		fields := []string{}
		switch rest := m[3]; {
		case strings.Contains(rest, "no fields"):
		case specInline.MatchString(rest):
			f := specInline.FindStringSubmatch(rest)
			fields = append(fields, f[1]+": "+f[2])
		default:
			// The table that follows: a header row, a rule, then the fields.
			j := i + 1
			for j < len(lines) && !strings.HasPrefix(lines[j], "|") {
				j++
			}
			for j += 2; j < len(lines) && strings.HasPrefix(lines[j], "|"); j++ {
				cells := strings.Split(lines[j], "|")
				name, enc := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])
				switch {
				case strings.HasPrefix(enc, "4 bytes `43 48 41 54`"):
					enc = string(kindMagic)
				case enc == "n × (kind: byte, name: text)":
					enc = string(kindChanges) // PRESENCE's changes, as the test spells them
				}
				fields = append(fields, name+": "+enc)
			}
		}
		tables[typ] = fields
	}
	return tables
}

// TestSpecAnnotations checks the annotated frames of README.md section 8:
// the bytes of each (with "…" standing for bytes left out) are one of the
// frames of the example session, so the annotations cannot drift from it.
func TestSpecAnnotations(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(data), "\n## 8. Example session")
	sec, _, _ = strings.Cut(sec, "\n## 9.")
	var frames []string
	block, _, _ := strings.Cut(sec, "<!-- /example-session -->")
	for line := range strings.Lines(block) {
		if f := strings.Fields(line); len(f) > 1 && (f[0] == "C→S" || f[0] == "S→C") {
			hexPart, _, _ := strings.Cut(strings.Join(f[1:], " "), "#")
			frames = append(frames, strings.ReplaceAll(hexPart, " ", ""))
		}
	}
	annotated := regexp.MustCompile("(?s)The ([A-Z-]+), annotated:\n\n```\n(.*?)```")
	found := 0
	for _, m := range annotated.FindAllStringSubmatch(sec, -1) {
		found++
		var pattern strings.Builder
		for line := range strings.Lines(m[2]) {
			bytesPart, _, _ := strings.Cut(strings.TrimSpace(line), "   ")
			for _, tok := range strings.Fields(bytesPart) {
				if tok == "…" {
					pattern.WriteString("(?:..)*?")
				} else {
					pattern.WriteString(regexp.QuoteMeta(tok))
				}
			}
		}
		re := regexp.MustCompile("^" + pattern.String() + "$")
		matched := false
		for _, f := range frames {
			matched = matched || re.MatchString(f)
		}
		if !matched {
			t.Errorf("the annotated %s is no frame of the example session", m[1])
		}
	}
	if found < 4 {
		t.Errorf("found %d annotated frames in section 8, want at least 4", found)
	}
}
