package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAndroidTypeChecks type-checks the app for Android (arm64) without
// an NDK: go vet cannot, as Gio's Android code needs cgo and the NDK's
// headers. The packages are loaded with go list for GOOS=android and
// checked from source with go/types, C declarations faked; errors in
// the Android-only files of this module (platform/notify_android.go, …)
// fail the test, those in Gio's cgo internals (C typedefs the fake
// cannot know) are ignored.
func TestAndroidTypeChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks every dependency from source")
	}
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Dir,GoFiles,CgoFiles,ImportMap,Standard,Error", "./")
	cmd.Env = append(os.Environ(), "GOOS=android", "GOARCH=arm64", "CGO_ENABLED=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	type pkg struct {
		ImportPath, Dir   string
		GoFiles, CgoFiles []string
		ImportMap         map[string]string
		Standard          bool
		Error             *struct{ Err string }
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}

	fset := token.NewFileSet()
	checked := map[string]*types.Package{"unsafe": types.Unsafe}
	// The standard library comes from the toolchain's export data for this
	// machine (Android is Linux: what the app uses of it is the same); the
	// rest is checked here, dependencies first, as go list orders them.
	std := importer.ForCompiler(fset, "gc", nil)
	var ours []string
	for _, p := range pkgs {
		if p.Standard || p.ImportPath == "unsafe" {
			continue
		}
		if p.Error != nil {
			t.Fatalf("%s: %s", p.ImportPath, p.Error.Err)
		}
		var files []*ast.File
		for _, name := range append(append([]string{}, p.GoFiles...), p.CgoFiles...) {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		var errs []string
		conf := types.Config{
			FakeImportC: true,
			Importer: importerFunc(func(path string) (*types.Package, error) {
				if mapped, ok := p.ImportMap[path]; ok {
					path = mapped
				}
				if tp, ok := checked[path]; ok {
					return tp, nil
				}
				tp, err := std.Import(path)
				if err == nil {
					checked[path] = tp
				}
				return tp, err
			}),
			Error: func(err error) { errs = append(errs, err.Error()) },
		}
		tp, _ := conf.Check(p.ImportPath, fset, files, nil)
		checked[p.ImportPath] = tp
		if strings.HasPrefix(p.ImportPath, "chat/") {
			ours = append(ours, p.ImportPath)
			for _, e := range errs {
				t.Errorf("GOOS=android: %s", e)
			}
		}
	}
	if len(ours) == 0 {
		t.Fatal("no package of this module was checked")
	}
	t.Logf("checked for Android: %s", strings.Join(ours, ", "))
	for _, want := range []string{"chat/app/internal/platform", "chat/app/internal/chatapp", "chat/app"} {
		if !contains(ours, want) {
			t.Errorf("%s was not checked", want)
		}
	}
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
