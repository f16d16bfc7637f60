package buildtest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// androidEnv clears every variable the android target looks at, then
// applies set.
func androidEnv(set ...string) []string {
	env := []string{"ANDROID_HOME=", "ANDROID_SDK_ROOT=", "ANDROID_NDK_ROOT=", "CHAT_ANDROID_KEYSTORE="}
	return append(env, set...)
}

// fakeSDK makes an SDK directory holding the given files; names ending in
// a tool name get an executable stub.
func fakeSDK(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestAndroidMissingPrerequisites runs ./build.sh android on machines
// without (parts of) the Android SDK: it must stop before building, exit
// non-zero and name every missing piece with how to install it, and
// nothing that is there.
func TestAndroidMissingPrerequisites(t *testing.T) {
	const ndkClangs = "ndk/27.2.12479018/toolchains/llvm/prebuilt/linux-x86_64/bin/"
	cases := []struct {
		name       string
		env        []string
		want, not  []string
		wantStatus int
	}{{
		name: "no SDK at all",
		env:  androidEnv(),
		want: []string{
			"android: cannot build the APK; missing:",
			"neither ANDROID_HOME nor ANDROID_SDK_ROOT is set",
			`sdkmanager "platforms;android-35"`,
			`build-tools with d8 aapt2 zipalign apksigner: sdkmanager "build-tools;35.0.0"`,
			"Debian's aapt2, zipalign and apksigner packages are not enough",
			`Android NDK (for the cgo part of Gio): sdkmanager "ndk;27.2.12479018"`,
			`sdkmanager --sdk_root=`,
		},
		not: []string{"==> android: "},
	}, {
		name: "empty SDK directory",
		env:  androidEnv("ANDROID_HOME=" + t.TempDir()),
		want: []string{`"platforms;android-35"`, `build-tools with d8 aapt2 zipalign apksigner`, `"ndk;27.2.12479018"`},
		not:  []string{"ANDROID_HOME nor", "does not exist"},
	}, {
		name: "SDK directory that does not exist",
		env:  androidEnv("ANDROID_SDK_ROOT=/nonexistent/android-sdk"),
		want: []string{"ANDROID_SDK_ROOT=/nonexistent/android-sdk does not exist", `"platforms;android-35"`, `"ndk;27.2.12479018"`},
	}, {
		name: "SDK with platform and half the build tools, via ANDROID_SDK_ROOT",
		env: androidEnv("ANDROID_SDK_ROOT=" + fakeSDK(t,
			"platforms/android-34/android.jar", "platforms/android-35/android.jar",
			"build-tools/34.0.0/d8", "build-tools/35.0.0/aapt2", "build-tools/35.0.0/zipalign")),
		want: []string{"build-tools with d8 apksigner (not in ", "/build-tools/35.0.0)", `"ndk;27.2.12479018"`},
		not:  []string{"Android SDK platform", "neither", "aapt2 zipalign"},
	}, {
		name: "NDK without the arm compilers, no JDK",
		env: androidEnv("JAVA_HOME="+t.TempDir(), "ANDROID_HOME="+fakeSDK(t,
			"platforms/android-35/android.jar",
			"build-tools/35.0.0/d8", "build-tools/35.0.0/aapt2", "build-tools/35.0.0/zipalign", "build-tools/35.0.0/apksigner",
			ndkClangs+"x86_64-linux-android21-clang")),
		want: []string{"NDK compilers for aarch64-linux-android armv7a-linux-androideabi", "a JDK 17 (javac, java, keytool in JAVA_HOME=", "openjdk-17-jdk-headless"},
		not:  []string{"Android SDK platform", "build-tools with"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, status := buildScript(t, c.env, "android")
			if status == 0 {
				t.Fatalf("./build.sh android succeeded without an SDK:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("the message lacks %q", w)
				}
			}
			for _, n := range c.not {
				if strings.Contains(out, n) {
					t.Errorf("the message has %q", n)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
	// The message the issue asks for, as CI sees it.
	out, _ := buildScript(t, androidEnv(), "android")
	t.Logf("./build.sh android without an SDK:\n%s", out)
}

// TestAndroidCheckComplete gives android-check a complete (stub) SDK, NDK
// and JDK: nothing is missing, and it picks the newest versions, as gogio
// will.
func TestAndroidCheckComplete(t *testing.T) {
	jdk := fakeSDK(t, "bin/javac", "bin/java", "bin/keytool")
	sdk := fakeSDK(t,
		"platforms/android-34/android.jar", "platforms/android-35/android.jar",
		"build-tools/34.0.0/d8", "build-tools/34.0.0/aapt2", "build-tools/34.0.0/zipalign", "build-tools/34.0.0/apksigner",
		"build-tools/35.0.0/d8", "build-tools/35.0.0/aapt2", "build-tools/35.0.0/zipalign", "build-tools/35.0.0/apksigner",
		"ndk/26.3.11579264/toolchains/llvm/prebuilt/linux-x86_64/bin/aarch64-linux-android21-clang",
		"ndk/27.2.12479018/toolchains/llvm/prebuilt/linux-x86_64/bin/aarch64-linux-android21-clang",
		"ndk/27.2.12479018/toolchains/llvm/prebuilt/linux-x86_64/bin/armv7a-linux-androideabi21-clang")
	out, status := buildScript(t, androidEnv("ANDROID_HOME="+sdk, "JAVA_HOME="+jdk), "android-check")
	if status != 0 {
		t.Fatalf("android-check with a complete SDK: exit %d\n%s", status, out)
	}
	for _, want := range []string{"platforms/android-35", "build-tools/35.0.0", "ndk/27.2.12479018"} {
		if !strings.Contains(out, want) {
			t.Errorf("android-check does not report %s:\n%s", want, out)
		}
	}
}

// typeCheckReport is the output of testdata/typecheck.
type typeCheckReport struct {
	Errors      []string // in our packages
	Checked     []string // our packages
	Packages    int      // all packages type-checked
	Cgo         int      // of which with cgo files
	OtherErrors int      // errors outside ours, not listed
}

var typeChecker struct {
	once sync.Once
	path string
	err  error
}

// typeCheckFor type-checks the packages matching patterns (go list run in
// dir) and their dependencies as they are compiled for goos/goarch with
// cgo, with testdata/typecheck (built without the race detector, which
// would make go/types several times slower). Errors count only in
// packages whose path starts with ours.
func typeCheckFor(t *testing.T, dir, goos, goarch, ours string, patterns ...string) typeCheckReport {
	t.Helper()
	typeChecker.once.Do(func() {
		d, err := os.MkdirTemp("", "chat-typecheck-")
		if err != nil {
			typeChecker.err = err
			return
		}
		typeChecker.path = filepath.Join(d, "typecheck")
		cmd := exec.Command(goTool(), "build", "-o", typeChecker.path, "./internal/buildtest/testdata/typecheck")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			typeChecker.err = fmt.Errorf("building testdata/typecheck: %v\n%s", err, out)
		}
	})
	if typeChecker.err != nil {
		t.Fatal(typeChecker.err)
	}
	cmd := exec.Command(typeChecker.path, append([]string{"-goos", goos, "-goarch", goarch, "-ours", ours}, patterns...)...)
	cmd.Dir = dir
	cmd.Env = withEnv(os.Environ(), "PATH="+filepath.Dir(goTool())+string(filepath.ListSeparator)+os.Getenv("PATH"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("typecheck %s/%s: %v\n%s", goos, goarch, err, stderr.String())
	}
	var r typeCheckReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("typecheck output %q: %v", out, err)
	}
	return r
}

// TestAndroidTypeCheck type-checks the app and all our packages as they
// are built for Android (arm64 and 32-bit arm, the APK's two), including
// android-only files, so code for Android cannot rot on machines that
// cannot build an APK.
func TestAndroidTypeCheck(t *testing.T) {
	trackSources(t)
	for _, arch := range []string{"arm64", "arm"} {
		t.Run(arch, func(t *testing.T) {
			start := time.Now()
			r := typeCheckFor(t, repoRoot(), "android", arch, "chat/", "chat/...")
			for _, e := range r.Errors {
				t.Error(e)
			}
			found := map[string]bool{}
			for _, p := range r.Checked {
				found[p] = true
			}
			for _, p := range []string{"chat/app", "chat/app/internal/platform", "chat/app/internal/ui", "chat/client", "chat/protocol", "chat/assets"} {
				if !found[p] {
					t.Errorf("%s was not type-checked for android/%s", p, arch)
				}
			}
			t.Logf("%d packages of ours type-check for android/%s; %d packages in all, %d with cgo, %d errors outside ours ignored; %v",
				len(r.Checked), arch, r.Packages, r.Cgo, r.OtherErrors, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestAndroidTypeCheckCatches proves the check above can fail: a module
// whose android-only file has a type error, next to a cgo file whose C
// names must not count as errors.
func TestAndroidTypeCheckCatches(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module canary\n\ngo 1.26\n")
	write("canary.go", "package canary\n\nfunc Name() string { return name }\n")
	write("name_other.go", "//go:build !android\n\npackage canary\n\nconst name = \"desktop\"\n")
	write("name_android.go", "package canary\n\nconst name = \"android\"\n\nvar broken int = name\n")
	write("cgo_android.go", "package canary\n\n// int twice(int x) { return 2*x; }\nimport \"C\"\n\nfunc Twice(x int) int { return int(C.twice(C.int(x))) }\n")

	r := typeCheckFor(t, dir, "android", "arm64", "canary", "./...")
	if len(r.Checked) != 1 || len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "name_android.go:5") {
		t.Fatalf("checked %v; errors %q: want exactly the one in name_android.go line 5", r.Checked, r.Errors)
	}
	if r.Cgo == 0 {
		t.Errorf("no package with cgo files was checked: cgo_android.go was left out")
	}
	// The same module for linux: the android files are not compiled there,
	// which is why the check above is needed.
	if r := typeCheckFor(t, dir, "linux", "amd64", "canary", "./..."); len(r.Errors) != 0 {
		t.Fatalf("linux errors %q: want none", r.Errors)
	}
}
