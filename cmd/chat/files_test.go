package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"chat/internal/testserver"
)

func randomFile(t *testing.T, path string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUploadAndDownloadCommands: ann sends a file with /upload (one line
// when it is stored, in a pipe) and both see "ann sent report.bin
// (250.0 kB): caption"; bob saves it with /download NUMBER DIR under its
// name, byte for byte; a path with spaces and no caption works; a
// missing file, a directory, an empty file, a file over -max-upload
// (refused by the client, which knows the limit) and one over the quota
// (refused by the server) each get a sentence and make the exit 1, as
// does a /download of a message without a file or onto a file that
// exists.
func TestUploadAndDownloadCommands(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{Args: []string{"-max-upload", "300000", "-upload-quota", "400KB", "-upload-total", "10MB"}})
	dir, saved := t.TempDir(), t.TempDir()
	ann := startChat(t, "-server", srv.Addr, "-name", "ann", "-room", "files")
	ann.waitLine(`^-- joined files as ann`, 0)
	bob := startChat(t, "-server", srv.Addr, "-name", "bob", "-room", "files")
	bob.waitLine(`^-- joined files as bob`, 0)

	ann.say("/help")
	ann.waitLine(`^--   /upload PATH \[CAPTION\] `, 0)
	ann.waitLine(`^--   /download ID PATH `, 0)

	report := randomFile(t, filepath.Join(dir, "report.bin"), 250_000)
	ann.say("/upload " + filepath.Join(dir, "report.bin") + " the quarterly report")
	ann.waitLine(`^-- messages now show their number \[SEQ\]`, 0)
	ann.waitLine(`^-- uploaded report.bin \(250.0 kB\)$`, 0)
	ann.waitLine(`^`+hhmm+`\[\d+\] ann sent report.bin \(250.0 kB\): the quarterly report$`, 0)
	seqRe := regexp.MustCompile(`(?m)^` + hhmm + `ann sent report.bin \(250.0 kB\): the quarterly report$`)
	waitMatch(t, &bob.out, seqRe, 0)

	notes := filepath.Join(dir, "my notes.txt")
	if err := os.WriteFile(notes, []byte("twelve bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	ann.say("/upload " + notes)
	bob.waitLine(`^`+hhmm+`ann sent my notes.txt \(12 B\)$`, 0)

	// bob's numbers are off: he asks by the number ann's terminal shows.
	annSeq := regexp.MustCompile(`(?m)^` + hhmm + `\[(\d+)\] ann sent report.bin`).FindStringSubmatch(ann.out.String())[1]
	bob.say("/download " + annSeq + " " + saved)
	bob.waitLine(`^-- downloaded report.bin \(250.0 kB\) to `+regexp.QuoteMeta(filepath.Join(saved, "report.bin"))+`$`, 0)
	if got, err := os.ReadFile(filepath.Join(saved, "report.bin")); err != nil || !bytes.Equal(got, report) {
		t.Errorf("the download is %d bytes (%v), not the %d uploaded", len(got), err, len(report))
	}
	bob.say("/download " + annSeq + " " + saved)
	bob.waitErr("chat: /download " + annSeq + ": " + filepath.Join(saved, "report.bin") + " exists already")
	bob.say("/download 9999 " + saved)
	bob.waitErr("chat: /download 9999: no file in message [9999] of #files")

	ann.say("/upload " + filepath.Join(dir, "missing.jpg"))
	ann.waitErr("chat: /upload " + filepath.Join(dir, "missing.jpg") + ": no such file")
	ann.say("/upload " + dir)
	ann.waitErr("chat: /upload " + dir + ": is a directory; give a file")
	if err := os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ann.say("/upload " + filepath.Join(dir, "empty"))
	ann.waitErr("chat: /upload " + filepath.Join(dir, "empty") + ": empty is empty")
	randomFile(t, filepath.Join(dir, "huge.bin"), 400_000)
	ann.say("/upload " + filepath.Join(dir, "huge.bin"))
	ann.waitErr("chat: /upload " + filepath.Join(dir, "huge.bin") + ": huge.bin is 400.0 kB; the server takes files up to 300.0 kB")
	randomFile(t, filepath.Join(dir, "second.bin"), 200_000)
	ann.say("/upload " + filepath.Join(dir, "second.bin"))
	ann.waitErr("chat: /upload second.bin: refused: over the upload quota")

	if code := ann.end(); code != 1 {
		t.Errorf("ann's exit %d after refused uploads, want 1", code)
	}
	if code := bob.end(); code != 1 {
		t.Errorf("bob's exit %d after refused downloads, want 1", code)
	}
}

// TestPipedDownloadIsWaitedFor: a /download as the last line of a pipe is
// waited for as long as it makes progress (here 3 s, longer than the 2 s
// the end of input gives a message's echo): the file is complete and the
// exit 0. One that makes no progress for -wait is a failure: a sentence,
// exit 1, and no partial file left.
func TestPipedDownloadIsWaitedFor(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{Args: []string{"-file-rate", "100KiB"}})
	dir, saved := t.TempDir(), t.TempDir()
	ann := startChat(t, "-server", srv.Addr, "-name", "ann", "-room", "slow")
	ann.waitLine(`^-- joined slow as ann`, 0)
	data := randomFile(t, filepath.Join(dir, "big.bin"), 1<<20+300_000) // past the server's burst of 1 MiB: 3 s
	ann.say("/upload " + filepath.Join(dir, "big.bin"))
	ann.waitLine(`^-- uploaded big.bin`, 0)
	// The file is stored before the message that carries it: bob may
	// fetch it once the message is (a file no live message carries is
	// not-found).
	ann.waitLine(`^`+hhmm+`(\[\d+\] )?ann sent big\.bin`, 0)
	n := fmt.Sprintf("%x", sha256.Sum256(data)) // the file's id: the history may come after the line

	start := time.Now()
	code, out := session(t, []string{"-server", srv.Addr, "-name", "bob", "-room", "slow"}, "/download "+n+" "+saved)
	got, err := os.ReadFile(filepath.Join(saved, n))
	if code != 0 || err != nil || !bytes.Equal(got, data) {
		t.Errorf("exit %d after %v, the download %d bytes (%v), want exit 0 and %d bytes; output:\n%s",
			code, time.Since(start), len(got), err, len(data), out)
	}

	// No progress for -wait: a failure.
	other := t.TempDir()
	code, out = session(t, []string{"-server", srv.Addr, "-name", "bob", "-room", "slow", "-wait", "200ms"}, "/download "+n+" "+other)
	if code != 1 || !strings.Contains(out, "chat: a download has not finished, with no progress for 200ms") {
		t.Errorf("exit %d, want 1 and a sentence; output:\n%s", code, out)
	}
	if left, _ := os.ReadDir(other); len(left) != 0 {
		t.Errorf("%d files left in the directory, want none", len(left))
	}
}

// TestDownloadNeverReplacesAFile: the partial file of a download of a
// name of 255 bytes can be created, and the finished one never replaces
// a file that appeared at its path meanwhile (another /download).
func TestDownloadNeverReplacesAFile(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("é", 127) + "x" // 255 bytes
	tmp, err := os.CreateTemp(dir, partPattern(long))
	if err != nil {
		t.Fatalf("the partial file of a 255-byte name: %v", err)
	}
	tmp.WriteString("second")
	tmp.Close()
	path := filepath.Join(dir, long)
	if err := os.WriteFile(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := placeDownload(tmp.Name(), path); !errors.Is(err, errExists) {
		t.Errorf("placing onto a file: %v, want that it exists", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "first" {
		t.Errorf("the file is %q, want the first download's", got)
	}
	os.Remove(path)
	if err := placeDownload(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "second" {
		t.Errorf("the file is %q, want %q", got, "second")
	}
	if _, err := os.Stat(tmp.Name()); err == nil {
		t.Errorf("the partial file is left")
	}
}
