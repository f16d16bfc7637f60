// Command typecheck type-checks Go packages as they are compiled for
// another GOOS/GOARCH with cgo, without a C toolchain: go list -deps
// selects the files (android-only ones included), go/types checks them
// in dependency order, and cgo's C names are faked (FakeImportC).
//
// It is a program of its own, not part of the buildtest test binary,
// because that binary runs with the race detector, which makes go/types
// several times slower.
//
//	go run ./internal/buildtest/testdata/typecheck -goos android -goarch arm64 -ours chat/ chat/...
//
// It prints a JSON report (see report) and exits 0 when go list worked,
// whatever the type errors.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// report is the output: errors in our packages, our packages checked, and
// counts for everything checked.
type report struct {
	Errors      []string // in packages whose path starts with -ours
	Checked     []string // our packages
	Packages    int      // all packages type-checked
	Cgo         int      // of which with cgo files
	OtherErrors int      // errors outside ours (not reported one by one)
}

// listedPackage is what go list -json says about a package.
type listedPackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	CgoFiles   []string
	ImportMap  map[string]string
	Error      *struct{ Err string }
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

func main() {
	goos := flag.String("goos", "android", "GOOS to check for")
	goarch := flag.String("goarch", "arm64", "GOARCH to check for")
	ours := flag.String("ours", "", "import path prefix of the packages whose errors count")
	flag.Parse()
	log.SetFlags(0)

	cmd := exec.Command("go", append([]string{"list", "-e", "-deps", "-json=ImportPath,Dir,GoFiles,CgoFiles,ImportMap,Error"}, flag.Args()...)...)
	cmd.Env = append(os.Environ(), "GOOS="+*goos, "GOARCH="+*goarch, "CGO_ENABLED=1", "GOWORK=off")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		log.Fatalf("go list for %s/%s: %v", *goos, *goarch, err)
	}
	var pkgs []*listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(listedPackage)
		if err := dec.Decode(p); err == io.EOF {
			break
		} else if err != nil {
			log.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}

	var r report
	fset := token.NewFileSet()
	done := map[string]*types.Package{"unsafe": types.Unsafe}
	failed := map[string]string{} // packages go list could not load
	sizes := types.SizesFor("gc", *goarch)
	// go list -deps prints every package after its dependencies.
	for _, p := range pkgs {
		if p.ImportPath == "unsafe" || p.ImportPath == "C" {
			continue
		}
		mine := strings.HasPrefix(p.ImportPath, *ours)
		if p.Error != nil {
			failed[p.ImportPath] = p.Error.Err
			if mine {
				r.Errors = append(r.Errors, fmt.Sprintf("%s: %s", p.ImportPath, p.Error.Err))
			}
			continue
		}
		var files []*ast.File
		for _, name := range append(append([]string{}, p.GoFiles...), p.CgoFiles...) {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				log.Fatalf("%s: %v", p.ImportPath, err)
			}
			files = append(files, f)
		}
		conf := types.Config{
			Importer: importerFunc(func(path string) (*types.Package, error) {
				if m, ok := p.ImportMap[path]; ok {
					path = m
				}
				if pkg := done[path]; pkg != nil {
					return pkg, nil
				}
				if e, ok := failed[path]; ok {
					return nil, fmt.Errorf("%s: %s", path, e)
				}
				return nil, fmt.Errorf("%s imported before it was checked", path)
			}),
			FakeImportC: true,
			// Only our own code is checked in full; the rest gives types.
			IgnoreFuncBodies: !mine,
			Sizes:            sizes,
			Error: func(err error) {
				if mine {
					r.Errors = append(r.Errors, err.Error())
				} else {
					r.OtherErrors++
				}
			},
		}
		pkg, _ := conf.Check(p.ImportPath, fset, files, nil)
		done[p.ImportPath] = pkg
		r.Packages++
		if len(p.CgoFiles) > 0 {
			r.Cgo++
		}
		if mine {
			r.Checked = append(r.Checked, p.ImportPath)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		log.Fatal(err)
	}
}
