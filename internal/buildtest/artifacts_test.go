package buildtest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"debug/pe"
	"encoding/binary"
	"encoding/hex"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode/utf16"

	"chat/internal/disttest"
)

// checkBuildInfo compares the Go build information of a binary with what
// build.sh promises: our package, this Go, the platform, cgo, -trimpath.
func checkBuildInfo(t *testing.T, path, pkg, goos, goarch, cgo string) {
	t.Helper()
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: no Go build information: %v", path, err)
	}
	if bi.Path != pkg {
		t.Errorf("%s: built from %s, want %s", path, bi.Path, pkg)
	}
	if bi.GoVersion != runtime.Version() {
		t.Errorf("%s: built with %s, the tests run %s", path, bi.GoVersion, runtime.Version())
	}
	want := map[string]string{"GOOS": goos, "GOARCH": goarch, "CGO_ENABLED": cgo, "-trimpath": "true"}
	got := map[string]string{}
	for _, s := range bi.Settings {
		got[s.Key] = s.Value
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: build setting %s=%q, want %q", path, k, got[k], v)
		}
	}
}

// runVersion runs BINARY -version and checks it prints "NAME VERSION".
func runVersion(t *testing.T, bin, name string) {
	t.Helper()
	out, err := exec.Command(bin, "-version").CombinedOutput()
	want := name + " " + disttest.Version(t) + "\n"
	if err != nil || string(out) != want {
		t.Errorf("%s -version: %q (%v), want %q", bin, out, err, want)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// webFiles returns the files of dist/chat-web-VERSION.tar by name.
func webFiles(t *testing.T) map[string][]byte {
	t.Helper()
	f, err := os.Open(disttest.Artifact(t, "chat-web-VERSION.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chat-web tar: %v", err)
		}
		if h.Typeflag == tar.TypeDir {
			continue // fonts/, fonts/cjk/: only files are embedded
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
	return files
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	z, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	raw, err := io.ReadAll(z)
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	return raw
}

// TestWebClient checks ./build.sh wasm: the compressed web client in
// assets/web (what the server embeds) and its copy in dist, the wasm
// module built by this Go with the version in it, the loader from the same
// Go, deterministic gzip, and no uncompressed main.wasm to embed.
func TestWebClient(t *testing.T) {
	files := webFiles(t)
	version := disttest.Version(t)
	web := filepath.Join(repoRoot(), "assets", "web")
	need := []string{"index.html", "wasm_exec.js", "main.wasm.gz"}
	if _, err := exec.LookPath("brotli"); err == nil {
		need = append(need, "main.wasm.br")
	}
	for _, name := range need {
		b, ok := files[name]
		if !ok {
			t.Errorf("chat-web tar has no %s (has %v)", name, keys(files))
			continue
		}
		if onDisk, err := os.ReadFile(filepath.Join(web, name)); err != nil || !bytes.Equal(onDisk, b) {
			t.Errorf("assets/web/%s differs from the copy in dist (%v): the server would embed something else", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(web, "main.wasm")); err == nil {
		t.Errorf("assets/web/main.wasm exists: the server would embed the uncompressed module too")
	}

	gz := files["main.wasm.gz"]
	// gzip -n: no file name (FLG.FNAME) and no time stamp in the header,
	// so the same module gives the same bytes.
	if len(gz) < 10 || gz[3]&0x08 != 0 || binary.LittleEndian.Uint32(gz[4:8]) != 0 {
		t.Errorf("main.wasm.gz header % x: want no name and no mtime (gzip -n)", gz[:min(10, len(gz))])
	}
	raw := gunzip(t, gz)
	if !bytes.HasPrefix(raw, []byte("\x00asm\x01\x00\x00\x00")) {
		t.Fatalf("main.wasm.gz does not hold a WebAssembly module (starts % x)", raw[:min(8, len(raw))])
	}
	if !bytes.Contains(raw, []byte(version)) {
		t.Errorf("main.wasm does not contain the version %q", version)
	}
	if !bytes.Contains(raw, []byte(runtime.Version())) {
		t.Errorf("main.wasm was not built by %s, whose wasm_exec.js it ships", runtime.Version())
	}
	t.Logf("main.wasm %d bytes, gzip %d", len(raw), len(gz))

	goroot, err := exec.Command(goTool(), "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	loader := mustRead(t, filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"))
	if !bytes.Equal(files["wasm_exec.js"], loader) {
		t.Errorf("wasm_exec.js is not the one of %s", runtime.Version())
	}

	if br, ok := files["main.wasm.br"]; ok {
		cmd := exec.Command(tool(t, "brotli", "brotli"), "-dc")
		cmd.Stdin = bytes.NewReader(br)
		out, err := cmd.Output()
		if err != nil || !bytes.Equal(out, raw) {
			t.Errorf("main.wasm.br does not decompress to the module in main.wasm.gz (%v)", err)
		}
		t.Logf("brotli %d bytes", len(br))
	}
}

func keys(m map[string][]byte) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

// TestServerBinaries checks ./build.sh server: static linux binaries for
// amd64 and arm64, stamped with the version, with the web client inside.
func TestServerBinaries(t *testing.T) {
	web := webFiles(t)
	for _, arch := range []struct {
		goarch  string
		machine elf.Machine
	}{{"amd64", elf.EM_X86_64}, {"arm64", elf.EM_AARCH64}} {
		t.Run(arch.goarch, func(t *testing.T) {
			path := disttest.Artifact(t, "chat-server-VERSION-linux-"+arch.goarch)
			f, err := elf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != arch.machine || f.Class != elf.ELFCLASS64 {
				t.Errorf("ELF machine %v class %v, want %v 64-bit", f.Machine, f.Class, arch.machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("program header %v: the binary is not static", p.Type)
				}
			}
			if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
				t.Errorf("links shared libraries %v", libs)
			}
			checkBuildInfo(t, path, "chat/server", "linux", arch.goarch, "0")
			bin := mustRead(t, path)
			if !bytes.Contains(bin, []byte(disttest.Version(t))) {
				t.Errorf("the version %q is not in the binary", disttest.Version(t))
			}
			// go:embed stores files whole: each must appear byte for byte.
			for name, b := range web {
				if len(b) == 0 || !bytes.Contains(bin, b) {
					t.Errorf("the web client's %s (%d bytes) is not embedded", name, len(b))
				}
			}
			if arch.goarch == runtime.GOARCH && runtime.GOOS == "linux" {
				runVersion(t, path, "chat-server")
			}
		})
	}
}

// TestDesktopBinary checks ./build.sh desktop: the linux app, with cgo,
// answering -version. TestDesktopWindow runs it.
func TestDesktopBinary(t *testing.T) {
	path := disttest.Artifact(t, "chat-VERSION-linux-"+runtime.GOARCH)
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	checkBuildInfo(t, path, "chat/app", "linux", runtime.GOARCH, "1")
	runVersion(t, path, "chat-app")
}

// TestWindowsBinary checks ./build.sh windows: a GUI PE for amd64 without
// cgo, with the icon in all sizes, the manifest and the version resource
// that gogio embeds.
func TestWindowsBinary(t *testing.T) {
	path := disttest.Artifact(t, "chat-VERSION-windows-amd64.exe")
	f, err := pe.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		t.Errorf("PE machine %#x, want amd64", f.Machine)
	}
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		t.Fatalf("not a PE32+ binary")
	}
	if oh.Subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_GUI {
		t.Errorf("subsystem %d, want the GUI subsystem (no console window)", oh.Subsystem)
	}
	checkBuildInfo(t, path, "chat/app", "windows", "amd64", "0")
	if !bytes.Contains(mustRead(t, path), []byte(disttest.Version(t))) {
		t.Errorf("the version %q is not in the binary", disttest.Version(t))
	}

	res := resources(t, f)
	const (
		rtIcon      = 3
		rtGroupIcon = 14
		rtVersion   = 16
		rtManifest  = 24
	)
	for _, size := range []uint32{16, 32, 48, 64, 128, 256} {
		b, ok := res[[2]uint32{rtIcon, size}]
		if !ok {
			t.Errorf("no %dpx icon", size)
			continue
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() != int(size) {
			t.Errorf("%dpx icon: %v %v", size, err, img.Bounds())
		}
	}
	if _, ok := res[[2]uint32{rtGroupIcon, 1}]; !ok {
		t.Errorf("no icon group: Explorer would show no icon")
	}
	manifest := string(res[[2]uint32{rtManifest, 1}])
	for _, want := range []string{`<assemblyIdentity type="win32" name="Chat"`, "dpiAware", `level="asInvoker"`} {
		if !strings.Contains(manifest, want) {
			t.Errorf("manifest lacks %s:\n%s", want, manifest)
		}
	}
	if v := res[[2]uint32{rtVersion, 1}]; !bytes.Contains(v, utf16le("ProductName")) || !bytes.Contains(v, utf16le("Chat")) {
		t.Errorf("version resource without the product name Chat")
	}
}

func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return b
}

// resources reads the .rsrc section: (type, id) → data of the first
// language.
func resources(t *testing.T, f *pe.File) map[[2]uint32][]byte {
	t.Helper()
	sec := f.Section(".rsrc")
	if sec == nil {
		t.Fatalf("no .rsrc section: no icon, manifest or version")
	}
	data, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	u32 := func(off uint32) uint32 {
		if int(off)+4 > len(data) {
			t.Fatalf(".rsrc: offset %d out of range", off)
		}
		return binary.LittleEndian.Uint32(data[off:])
	}
	// entries lists a directory: id → offset (high bit: subdirectory).
	entries := func(dir uint32) map[uint32]uint32 {
		n := uint32(binary.LittleEndian.Uint16(data[dir+12:])) + uint32(binary.LittleEndian.Uint16(data[dir+14:]))
		m := map[uint32]uint32{}
		for i := uint32(0); i < n; i++ {
			e := dir + 16 + 8*i
			m[u32(e)] = u32(e + 4)
		}
		return m
	}
	const sub = 0x80000000
	out := map[[2]uint32][]byte{}
	for typ, typOff := range entries(0) {
		if typOff&sub == 0 {
			continue
		}
		for id, idOff := range entries(typOff &^ sub) {
			if idOff&sub == 0 {
				continue
			}
			for _, langOff := range entries(idOff &^ sub) {
				rva, size := u32(langOff), u32(langOff+4)
				start := rva - sec.VirtualAddress
				if int(start+size) > len(data) {
					t.Fatalf(".rsrc: resource %d/%d out of range", typ, id)
				}
				out[[2]uint32{typ, id}] = data[start : start+size]
				break
			}
		}
	}
	return out
}

// TestChecksums checks dist/SHA256SUMS: it lists every artifact of this
// version and each sum is right.
func TestChecksums(t *testing.T) {
	// dist/ may hold another version's build (a commit ago): that is "not
	// built" for this version, like any missing artifact.
	disttest.Artifact(t, "chat-server-VERSION-linux-amd64")
	sums := disttest.Artifact(t, "SHA256SUMS")
	dist := disttest.Dir()
	version := disttest.Version(t)
	listed := map[string]bool{}
	f, err := os.Open(sums)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("SHA256SUMS: bad line %q", sc.Text())
		}
		listed[name] = true
		b, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Errorf("SHA256SUMS lists %s: %v", name, err)
			continue
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
			t.Errorf("SHA256SUMS: %s does not match", name)
		}
	}
	// Everything build.sh can make for this version that is in dist.
	for _, name := range []string{
		"chat-web-" + version + ".tar", "chat-server-" + version + "-linux-amd64", "chat-server-" + version + "-linux-arm64",
		"chat-" + version + "-linux-" + runtime.GOARCH, "chat-" + version + "-windows-amd64.exe",
		"chat-" + version + "-android.apk", "chat-" + version + "-macos.zip", "chat.service", "chat.env.example",
	} {
		if _, err := os.Stat(filepath.Join(dist, name)); err == nil && !listed[name] {
			t.Errorf("%s is not in SHA256SUMS", name)
		}
	}
	// An artifact of another version (say VERSION-dirty) is not this version's.
	for name := range listed {
		if strings.HasPrefix(name, "chat-") && !strings.Contains(name, "-"+version+"-") && !strings.Contains(name, "-"+version+".") {
			t.Errorf("SHA256SUMS lists %s, not of version %s", name, version)
		}
		if strings.Contains(name, "-"+version+"-dirty") && !strings.HasSuffix(version, "-dirty") {
			t.Errorf("SHA256SUMS lists %s, a build of the dirty tree, for the clean version %s", name, version)
		}
	}
	for _, name := range []string{"chat.service", "chat.env.example"} {
		if !bytes.Equal(mustRead(t, filepath.Join(dist, name)), mustRead(t, filepath.Join(repoRoot(), "deploy", name))) {
			t.Errorf("dist/%s differs from deploy/%s", name, name)
		}
	}
}
