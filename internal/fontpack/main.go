// Command fontpack picks the font files the apps fetch for scripts the Go
// fonts lack, from the @fontsource npm packages that ./build.sh fonts
// installs (assets/fonts/package.json), and writes them with their
// manifest (internal/fontmanifest) and licences:
//
//	go run ./internal/fontpack -npm assets/fonts/node_modules -out assets/fonts
//
// The manifest, the licences and most fonts go to base/; the Korean and
// Chinese ones (4.4 MB of the 5.2) to cjk/, which the Android build
// leaves out (Android has CJK fonts of its own). The manifest names those
// files cjk/NAME.
//
// Google Fonts cuts each family into files by character range, as a
// browser's @font-face unicode-range does; those cuts are what make lazy
// loading cheap: a message in Chinese fetches the few 20–60 kB pieces
// holding its characters, not a 16 MB font. Only the regular weight (400)
// is taken, as WOFF 1 (which Gio's font parser reads; it cannot read
// WOFF 2). A character goes to the first source that covers it, in the
// order of sources below, so no two files claim one.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"chat/internal/fontmanifest"
)

// source is one npm package and the subsets to take from it.
type source struct {
	pkg     string   // @fontsource/<pkg>
	subsets []string // keys of its unicode.json; nil: the numbered slices "[0]", "[1]", …
	// only, if set, limits the characters the files are fetched for.
	only fontmanifest.Ranges
	dir  string // "cjk" or the base directory, ""
}

// hangul: the Korean font is fetched for Hangul only; its slices also hold
// Han characters and kana, which the Chinese font's slices cover.
var hangul = fontmanifest.Ranges{{0x1100, 0x11FF}, {0x3130, 0x318F}, {0xA960, 0xA97F}, {0xAC00, 0xD7FF}}

var sources = []source{
	{pkg: "noto-sans-hebrew", subsets: []string{"hebrew"}},
	{pkg: "noto-sans-arabic", subsets: []string{"arabic"}},
	{pkg: "noto-sans-devanagari", subsets: []string{"devanagari"}},
	{pkg: "noto-emoji"}, // monochrome outlines: Gio draws them in the text's colour
	{pkg: "noto-sans-kr", only: hangul, dir: "cjk"},
	{pkg: "noto-sans-sc", dir: "cjk"}, // simplified Chinese, the common traditional characters, kana
}

func main() {
	npm := flag.String("npm", "assets/fonts/node_modules", "the npm packages (node_modules)")
	out := flag.String("out", "assets/fonts", "where to write base/ (the manifest, licences and most fonts) and cjk/")
	licenses := flag.String("licenses", "assets/fonts/LICENSES", "the licences kept in the source tree, one per package; each must equal the package's")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("fontpack: ")
	if err := run(*npm, *out, *licenses); err != nil {
		log.Fatal(err)
	}
}

type packageMeta struct {
	Version string `json:"version"`
}

type fontMeta struct {
	Family string `json:"family"`
}

var numbered = regexp.MustCompile(`^\[(\d+)\]$`)

// outName is the manifest's name of file in directory sub of the output.
func outName(sub, file string) string {
	if sub == "base" {
		return file
	}
	return sub + "/" + file
}

func run(npm, out, licenses string) error {
	var m fontmanifest.Manifest
	var claimed fontmanifest.Ranges
	want := map[string][]byte{} // output name → content
	var total int64
	for _, src := range sources {
		dir := filepath.Join(npm, "@fontsource", src.pkg)
		var pm packageMeta
		var fm fontMeta
		var subsets map[string]string
		for name, v := range map[string]any{"package.json": &pm, "metadata.json": &fm, "unicode.json": &subsets} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return fmt.Errorf("%v (run ./build.sh fonts, which installs the packages with npm ci)", err)
			}
			if err := json.Unmarshal(b, v); err != nil {
				return fmt.Errorf("%s/%s: %v", dir, name, err)
			}
		}
		lic, err := os.ReadFile(filepath.Join(dir, "LICENSE"))
		if err != nil {
			return err
		}
		kept, err := os.ReadFile(filepath.Join(licenses, src.pkg+".txt"))
		if err != nil {
			return fmt.Errorf("the licence of %s is not kept in the tree: %v (copy %s/LICENSE there)", src.pkg, err, dir)
		}
		if !bytes.Equal(lic, kept) {
			return fmt.Errorf("%s/%s.txt differs from the licence of @fontsource/%s %s: check the new licence and copy it", licenses, src.pkg, src.pkg, pm.Version)
		}
		want["LICENSE-"+src.pkg+".txt"] = lic

		names := src.subsets
		if names == nil {
			for k := range subsets {
				if numbered.MatchString(k) {
					names = append(names, k)
				}
			}
			// The highest numbers hold the most common characters: list
			// them first, for people reading the manifest.
			slices.SortFunc(names, func(a, b string) int {
				var x, y int
				fmt.Sscan(numbered.FindStringSubmatch(a)[1], &x)
				fmt.Sscan(numbered.FindStringSubmatch(b)[1], &y)
				return y - x
			})
		}
		for _, subset := range names {
			spec, ok := subsets[subset]
			if !ok {
				return fmt.Errorf("@fontsource/%s has no subset %q", src.pkg, subset)
			}
			rs, err := fontmanifest.ParseRanges(spec)
			if err != nil {
				return fmt.Errorf("@fontsource/%s %s: %v", src.pkg, subset, err)
			}
			if src.only != nil {
				rs = rs.Intersect(src.only.Normalize())
			}
			rs = rs.Minus(claimed)
			if len(rs) == 0 {
				continue // all its characters are another file's
			}
			tag := strings.Trim(subset, "[]")
			from := filepath.Join(dir, "files", fmt.Sprintf("%s-%s-400-normal.woff", src.pkg, tag))
			data, err := os.ReadFile(from)
			if err != nil {
				return err
			}
			name := fmt.Sprintf("%s-%s.woff", src.pkg, tag)
			if src.dir != "" {
				name = src.dir + "/" + name
			}
			want[name] = data
			total += int64(len(data))
			m.Files = append(m.Files, fontmanifest.File{File: name, Family: fm.Family, Ranges: rs, Size: int64(len(data))})
			claimed = append(claimed, rs...).Normalize()
		}
	}
	manifest, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := fontmanifest.Parse(manifest); err != nil {
		return err
	}
	want[fontmanifest.Name] = append(manifest, '\n')

	written := 0
	for _, sub := range []string{"base", "cjk"} {
		dir := filepath.Join(out, sub)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		// Remove what an older run wrote and this one does not (README.md
		// is the directory's own, committed so that the embedding compiles
		// before the first build).
		old, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range old {
			if _, ok := want[outName(sub, e.Name())]; !ok && e.Name() != "README.md" && !e.IsDir() {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	for name, data := range want {
		p := filepath.Join(out, "base", name)
		if strings.HasPrefix(name, "cjk/") {
			p = filepath.Join(out, name)
		}
		if cur, err := os.ReadFile(p); err == nil && bytes.Equal(cur, data) {
			continue
		}
		// Renamed into place: a build embedding the directory meanwhile
		// sees the old or the new file, never half of one.
		tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp")
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
		written++
	}
	fmt.Fprintf(os.Stderr, "fontpack: %d font files, %.1f MB, manifest %d bytes, in %s (%d changed)\n",
		len(m.Files), float64(total)/1e6, len(manifest), out, written)
	return nil
}
