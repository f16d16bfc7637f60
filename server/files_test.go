package main

// Files (issue 16) end to end: the real server binary, raw protocol
// connections on 127.0.0.1, the real files store under -data (or the
// cluster's JetStream object store), real images.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chat/internal/testserver"
	"chat/protocol"
)

// chunkSize is the data of one UPLOAD: the frame stays below the default
// -max-frame of 16 KiB with its room, id and name.
const chunkSize = 15 << 10

// awaitFrame reads r until a frame of type T for which ok holds,
// skipping the others; any ERROR fails the test unless T is *protocol.Error.
func awaitFrame[T protocol.Message](t *testing.T, r *testserver.Raw, what string, ok func(T) bool) T {
	t.Helper()
	for {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if v, is := m.(T); is && (ok == nil || ok(v)) {
			return v
		}
		if e, is := m.(*protocol.Error); is {
			t.Fatalf("waiting for %s: ERROR %v (id %q)", what, e, e.ID)
		}
	}
}

// fileClient is a raw connection joined to a room.
func fileClient(t *testing.T, addr, room, name, secret string) *testserver.Raw {
	t.Helper()
	r, w := testserver.Handshake(t, addr)
	if w.Flags&protocol.WelcomeFiles == 0 || w.Limits.MaxUpload == 0 || w.Limits.FileBytesPerSec == 0 {
		t.Fatalf("WELCOME without files: flags %b, limits %+v", w.Flags, w.Limits)
	}
	r.Send(&protocol.Join{Room: room, Name: name, Secret: secret})
	awaitFrame[*protocol.Joined](t, r, name+"'s JOINED", nil)
	return r
}

// sendChunks sends UPLOAD chunks of data from offset from up to to.
func sendChunks(r *testserver.Raw, room, id, name string, data []byte, from, to int) {
	for off := from; off < to; off += chunkSize {
		end := min(off+chunkSize, to)
		r.Send(&protocol.Upload{Room: room, ID: id, Name: name, Size: uint64(len(data)), Offset: uint64(off), Data: data[off:end]})
	}
}

// upload uploads data whole and returns the final UPLOADED's file.
func upload(t *testing.T, r *testserver.Raw, room, id, name string, data []byte) *protocol.File {
	t.Helper()
	r.Send(&protocol.Upload{Room: room, ID: id, Name: name, Size: uint64(len(data))})
	u := awaitFrame(t, r, "UPLOADED of the begin", func(u *protocol.Uploaded) bool { return u.ID == id })
	sendChunks(r, room, id, name, data, int(u.Received), len(data))
	done := awaitFrame(t, r, "the finished upload", func(u *protocol.Uploaded) bool { return u.ID == id && u.File != nil })
	if done.Received != uint64(len(data)) {
		t.Fatalf("finished upload %+v, want %d bytes", done, len(data))
	}
	return done.File
}

// uploadRefused begins or uploads data and returns the ERROR with the id.
func uploadRefused(t *testing.T, r *testserver.Raw, room, id, name string, data []byte) *protocol.Error {
	t.Helper()
	r.Send(&protocol.Upload{Room: room, ID: id, Name: name, Size: uint64(len(data))})
	for {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("waiting for the refusal of %s: %v", id, err)
		}
		switch m := m.(type) {
		case *protocol.Error:
			if m.ID != id {
				t.Fatalf("ERROR %v with id %q, want %q", m, m.ID, id)
			}
			return m
		case *protocol.Uploaded:
			if m.File != nil {
				t.Fatalf("upload %s stored: %+v", id, m.File)
			}
			if m.Received == 0 && len(data) > 0 {
				sendChunks(r, room, id, name, data, 0, len(data))
			}
		}
	}
}

// sendFile sends the message carrying f and waits for its ACK.
func sendFile(t *testing.T, r *testserver.Raw, room, id, caption string, f *protocol.File) uint64 {
	t.Helper()
	r.Send(&protocol.Send{Room: room, ID: id, Text: caption, File: f.ID})
	return awaitFrame(t, r, "the ACK of "+id, func(a *protocol.Ack) bool { return a.ID == id }).Seq
}

// fetchAll fetches a whole file, 4 FETCHes in flight as clients do, and
// returns it with its MIME type.
func fetchAll(t *testing.T, r *testserver.Raw, room, fileID string) ([]byte, string) {
	t.Helper()
	r.Send(&protocol.Fetch{Room: room, File: fileID, Offset: 0, Length: protocol.MaxPart})
	first := awaitFrame(t, r, "the first PART", func(p *protocol.Part) bool { return p.File == fileID })
	out := make([]byte, first.Size)
	copy(out, first.Data)
	var offsets []uint64
	for off := uint64(protocol.MaxPart); off < first.Size; off += protocol.MaxPart {
		offsets = append(offsets, off)
	}
	sent, got := 0, 0
	for got < len(offsets) {
		for sent < len(offsets) && sent-got < 4 {
			r.Send(&protocol.Fetch{Room: room, File: fileID, Offset: offsets[sent], Length: protocol.MaxPart})
			sent++
		}
		p := awaitFrame(t, r, "a PART", func(p *protocol.Part) bool { return p.File == fileID })
		if p.Offset+uint64(len(p.Data)) > first.Size || p.Size != first.Size || p.MIME != first.MIME {
			t.Fatalf("PART at %d: %d bytes of %d (%q), first said %d (%q)", p.Offset, len(p.Data), p.Size, p.MIME, first.Size, first.MIME)
		}
		copy(out[p.Offset:], p.Data)
		got++
	}
	return out, first.MIME
}

// fetchRefused sends one FETCH and returns its ERROR.
func fetchRefused(t *testing.T, r *testserver.Raw, room, fileID string) *protocol.Error {
	t.Helper()
	r.Send(&protocol.Fetch{Room: room, File: fileID, Length: protocol.MaxPart})
	for {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("waiting for the refusal of a FETCH of %s: %v", fileID, err)
		}
		switch m := m.(type) {
		case *protocol.Error:
			return m
		case *protocol.Part:
			t.Fatalf("FETCH of %s in %s answered with %d bytes", fileID, room, len(m.Data))
		}
	}
}

// randomBytes is n bytes that compress to nothing.
func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 16))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// filesUnder lists the regular files below dir (none if it is missing).
func filesUnder(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			out[p] = info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// contentPath is where the single server keeps content id
// (DATA/files/xx/<sha256>).
func contentPath(data, id string) string { return filepath.Join(data, "files", id[:2], id) }

// collectedLog is the single server's log line after a collection that
// removed content.
const collectedLog = "files: removed content no message refers to"

// waitGone waits for a collection that leaves path removed (collections
// run on the store's own goroutine after deletes and retention).
func waitGone(t *testing.T, srv *testserver.Server, path string) {
	t.Helper()
	srv.WaitLog(collectedLog, func(map[string]any) bool {
		_, err := os.Stat(path)
		return errors.Is(err, fs.ErrNotExist)
	})
}

// TestUploadResumesAfterAKilledConnection: half of a 3 MB file goes up,
// the connection dies inside a frame; a new connection's begin frame is
// told where the server is, the rest goes up, the message is sent and
// another member fetches exactly the bytes uploaded.
func TestUploadResumesAfterAKilledConnection(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	bob := fileClient(t, srv.Addr, "general", "bob", "")
	alice := fileClient(t, srv.Addr, "general", "alice", "")
	data := randomBytes(3_000_000, 1)
	const id = "upload-1"

	alice.Send(&protocol.Upload{Room: "general", ID: id, Name: "big.bin", Size: uint64(len(data))})
	if u := awaitFrame[*protocol.Uploaded](t, alice, "UPLOADED of the begin", nil); u.Received != 0 {
		t.Fatalf("a new upload begins at %d", u.Received)
	}
	half := len(data) / 2 / chunkSize * chunkSize
	sendChunks(alice, "general", id, "big.bin", data, 0, half)
	// Then half a frame, and the connection is gone.
	frame := protocol.Encode(&protocol.Upload{Room: "general", ID: id, Name: "big.bin", Size: uint64(len(data)), Offset: uint64(half), Data: data[half : half+chunkSize]})
	alice.Write(frame[:len(frame)/2])
	// The connection ends there. Half-closed, not reset: a reset would
	// also throw away chunks the server has not read yet, and the test
	// could not know how many.
	if err := alice.Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := alice.Read(); err != nil {
			break // the server closed its side
		}
	}
	alice.Conn.Close()
	srv.WaitLog("connection closed", func(rec map[string]any) bool {
		return rec["reason"] == "connection ended inside a frame"
	})

	again := fileClient(t, srv.Addr, "general", "alice", "")
	again.Send(&protocol.Upload{Room: "general", ID: id, Name: "big.bin", Size: uint64(len(data))})
	u := awaitFrame[*protocol.Uploaded](t, again, "UPLOADED of the resume", nil)
	if u.Received != uint64(half) || u.File != nil {
		t.Fatalf("resumed at %d (file %v), want %d: every whole chunk and nothing of the cut one", u.Received, u.File, half)
	}
	sendChunks(again, "general", id, "big.bin", data, half, len(data))
	f := awaitFrame(t, again, "the finished upload", func(u *protocol.Uploaded) bool { return u.File != nil }).File
	sum := sha256.Sum256(data)
	if f.ID != hex.EncodeToString(sum[:]) || f.Size != uint64(len(data)) || f.Name != "big.bin" || f.Type != "application/octet-stream" || f.Thumb != "" {
		t.Fatalf("stored file %+v", f)
	}
	// A client that lost that UPLOADED begins again: it is told the file.
	again.Send(&protocol.Upload{Room: "general", ID: id, Name: "big.bin", Size: uint64(len(data))})
	if u := awaitFrame[*protocol.Uploaded](t, again, "UPLOADED of a begin after the finish", nil); u.File == nil || *u.File != *f {
		t.Fatalf("a begin after the finish: %+v", u)
	}
	seq := sendFile(t, again, "general", id, "", f)

	m := awaitFrame(t, bob, "the file's message", func(m *protocol.Msg) bool { return m.Seq == seq })
	if m.File == nil || m.File.ID != f.ID || m.Text != "" || m.Sender != "alice" {
		t.Fatalf("bob got %+v (file %+v)", m, m.File)
	}
	got, mime := fetchAll(t, bob, "general", f.ID)
	if gotSum := sha256.Sum256(got); gotSum != sum || mime != "application/octet-stream" {
		t.Fatalf("bob fetched %d bytes of %q with another SHA-256", len(got), mime)
	}
}

// TestUploadOverLimitOrQuotaRefused: a file over -max-upload and one over
// the name's -upload-quota are refused with a sentence and the upload's
// id; nothing of them stays on disk and the name's usage is unchanged
// (another upload that fits still goes through).
func TestUploadOverLimitOrQuotaRefused(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-max-upload", "100000", "-upload-quota", "150KB", "-upload-total", "1MiB"}})
	alice := fileClient(t, srv.Addr, "general", "alice", "")
	first := upload(t, alice, "general", "f1", "first.bin", randomBytes(100_000, 2))
	sendFile(t, alice, "general", "f1", "the first", first)
	before := filesUnder(t, filepath.Join(srv.Data, "files"))

	e := uploadRefused(t, alice, "general", "big", "big.bin", randomBytes(100_001, 3))
	if e.Code != protocol.CodeTooBig || e.Room != "general" || e.Text == "" {
		t.Fatalf("too big: %v", e)
	}
	e = uploadRefused(t, alice, "general", "over", "over.bin", randomBytes(60_000, 4))
	if e.Code != protocol.CodeQuota || e.Text == "" {
		t.Fatalf("over the quota: %v", e)
	}
	if after := filesUnder(t, filepath.Join(srv.Data, "files")); len(after) != len(before) {
		t.Fatalf("files on disk after the refusals: %v, before %v", after, before)
	}
	if tmp := filesUnder(t, filepath.Join(srv.Data, "files", "tmp")); len(tmp) != 0 {
		t.Fatalf("half-stored uploads left: %v", tmp)
	}
	// The refusals took nothing of the quota: 50 KB still fit.
	fits := upload(t, alice, "general", "f2", "fits.bin", randomBytes(50_000, 5))
	sendFile(t, alice, "general", "f2", "", fits)
	// And the quota is per name.
	bob := fileClient(t, srv.Addr, "general", "bob", "")
	upload(t, bob, "general", "b1", "bobs.bin", randomBytes(100_000, 6))
}

// TestNonMemberCannotFetch: with the file's id, someone outside the room
// gets forbidden, someone in another room not-found, both with the id;
// after joining, the same FETCH works.
func TestNonMemberCannotFetch(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice := fileClient(t, srv.Addr, "secret-room", "alice", "")
	f := upload(t, alice, "secret-room", "s1", "plans.txt", []byte("the plans, in plain text, for members only\n"))
	sendFile(t, alice, "secret-room", "s1", "", f)

	eve := fileClient(t, srv.Addr, "lobby", "eve", "")
	if e := fetchRefused(t, eve, "secret-room", f.ID); e.Code != protocol.CodeForbidden || e.ID != f.ID || e.Room != "secret-room" {
		t.Fatalf("a non-member's FETCH: %v (id %q)", e, e.ID)
	}
	if e := fetchRefused(t, eve, "lobby", f.ID); e.Code != protocol.CodeNotFound || e.ID != f.ID || e.Room != "lobby" {
		t.Fatalf("a FETCH through another room: %v (id %q)", e, e.ID)
	}
	unknown := strings.Repeat("0", 64)
	if e := fetchRefused(t, eve, "lobby", unknown); e.Code != protocol.CodeNotFound || e.ID != unknown {
		t.Fatalf("a FETCH of no file: %v", e)
	}
	eve.Send(&protocol.Join{Room: "secret-room", Name: "eve"})
	awaitFrame[*protocol.Joined](t, eve, "eve's JOINED", nil)
	if got, _ := fetchAll(t, eve, "secret-room", f.ID); !strings.HasPrefix(string(got), "the plans") {
		t.Fatalf("a member fetched %q", got)
	}
}

// testPNG encodes a w×h image with some texture.
func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 7), uint8(y * 5), uint8(x ^ y), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngChunk encodes one PNG chunk.
func pngChunk(typ string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// gpsExif is a TIFF (EXIF) block with a GPS IFD holding a latitude
// reference and a marker text, as a phone writes the place of a photo.
func gpsExif() []byte {
	le := binary.BigEndian
	b := []byte("MM\x00\x2a")
	b = le.AppendUint32(b, 8)
	// IFD0: one entry, the GPS IFD pointer (0x8825), at offset 26.
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 0x8825)
	b = le.AppendUint16(b, 4) // LONG
	b = le.AppendUint32(b, 1)
	b = le.AppendUint32(b, 26)
	b = le.AppendUint32(b, 0) // no next IFD
	// GPS IFD: GPSLatitudeRef "N", GPSAreaInformation pointing at text.
	marker := []byte("ASCII\x00\x00\x00GPS-SECRET-PLACE 48.8584N 2.2945E")
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 2) // ASCII
	b = le.AppendUint32(b, 2)
	b = append(b, 'N', 0, 0, 0)
	b = le.AppendUint16(b, 0x1c)
	b = le.AppendUint16(b, 7) // UNDEFINED
	b = le.AppendUint32(b, uint32(len(marker)))
	b = le.AppendUint32(b, uint32(len(b)+4+4))
	b = le.AppendUint32(b, 0)
	return append(b, marker...)
}

// withChunkAfterIHDR inserts a chunk after a PNG's IHDR.
func withChunkAfterIHDR(p, chunk []byte) []byte {
	at := 8 + 8 + 13 + 4 // signature, IHDR's length and type, data, CRC
	out := append([]byte(nil), p[:at]...)
	out = append(out, chunk...)
	return append(out, p[at:]...)
}

// TestGPSExifStripped: a PNG carrying GPS in an eXIf chunk comes back
// without it (nor the place's text), still a PNG of the same pixels'
// size, and its preview is fetchable and decodes.
func TestGPSExifStripped(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice := fileClient(t, srv.Addr, "photos", "alice", "")
	bob := fileClient(t, srv.Addr, "photos", "bob", "")
	orig := withChunkAfterIHDR(testPNG(t, 640, 480), pngChunk("eXIf", gpsExif()))
	if _, err := png.Decode(bytes.NewReader(orig)); err != nil {
		t.Fatalf("the test image does not decode: %v", err)
	}
	f := upload(t, alice, "photos", "p1", "holiday.png", orig)
	if f.Type != "image/png" || f.Width != 640 || f.Height != 480 || f.Thumb == "" || f.ThumbWidth != 320 || f.ThumbHeight != 240 {
		t.Fatalf("stored image %+v", f)
	}
	sendFile(t, alice, "photos", "p1", "look where I am", f)

	got, mime := fetchAll(t, bob, "photos", f.ID)
	if mime != "image/png" || bytes.Contains(got, []byte("eXIf")) || bytes.Contains(got, []byte("GPS-SECRET-PLACE")) {
		t.Fatalf("fetched %d bytes of %q; eXIf chunk still there: %v", len(got), mime, bytes.Contains(got, []byte("eXIf")))
	}
	if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != f.ID || uint64(len(got)) != f.Size {
		t.Fatalf("the stored bytes are not the file's id or size")
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(got))
	if err != nil || cfg.Width != 640 || cfg.Height != 480 {
		t.Fatalf("the stripped PNG: %v %+v", err, cfg)
	}
	thumb, tmime := fetchAll(t, bob, "photos", f.Thumb)
	img, format, err := image.Decode(bytes.NewReader(thumb))
	if err != nil || "image/"+format != tmime || img.Bounds().Dx() != 320 || img.Bounds().Dy() != 240 {
		t.Fatalf("the preview (%q, %d bytes): %v", tmime, len(thumb), err)
	}
}

// TestDamagedAndBombImagesRefused: a truncated PNG and one whose header
// claims 100000 × 100000 pixels are refused (invalid, with a sentence and
// the upload's id), nothing of them stays, and the server goes on serving
// everyone.
func TestDamagedAndBombImagesRefused(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice := fileClient(t, srv.Addr, "general", "alice", "")
	bob := fileClient(t, srv.Addr, "general", "bob", "")

	full := testPNG(t, 300, 300)
	truncated := full[:len(full)/2]
	e := uploadRefused(t, alice, "general", "cut", "cut.png", truncated)
	if e.Code != protocol.CodeInvalid || e.Text == "" {
		t.Fatalf("a truncated PNG: %v", e)
	}

	bomb := append([]byte(nil), full...)
	binary.BigEndian.PutUint32(bomb[16:], 100000)
	binary.BigEndian.PutUint32(bomb[20:], 100000)
	binary.BigEndian.PutUint32(bomb[29:], crc32.ChecksumIEEE(bomb[12:29]))
	e = uploadRefused(t, alice, "general", "bomb", "bomb.png", bomb)
	if e.Code != protocol.CodeInvalid || e.Text == "" {
		t.Fatalf("a decompression bomb: %v", e)
	}
	if tmp := filesUnder(t, filepath.Join(srv.Data, "files", "tmp")); len(tmp) != 0 {
		t.Fatalf("refused uploads left behind: %v", tmp)
	}
	if srv.Running() == false {
		t.Fatal("the server died")
	}
	// Everyone is still served: a message and a good image go through.
	bob.Send(&protocol.Send{Room: "general", ID: "b1", Text: "still here?"})
	awaitFrame(t, alice, "bob's message", func(m *protocol.Msg) bool { return m.Text == "still here?" })
	f := upload(t, alice, "general", "good", "good.png", full)
	if f.Width != 300 || f.Thumb == "" {
		t.Fatalf("a good image after the bad ones: %+v", f)
	}
}

// TestFileGoesWithItsMessage: deleting the message takes its file (the
// UPDATE's state has none, FETCH is not-found, the content leaves the
// disk); retention does the same.
func TestFileGoesWithItsMessage(t *testing.T) {
	// No grace period: the content goes at the collection after the delete.
	srv := testserver.Start(t, testserver.Options{Args: []string{"-files-grace", "0"}})
	alice := fileClient(t, srv.Addr, "general", "alice", "alices-key")
	bob := fileClient(t, srv.Addr, "general", "bob", "")

	f := upload(t, alice, "general", "d1", "doomed.bin", randomBytes(70_000, 7))
	seq := sendFile(t, alice, "general", "d1", "", f)
	awaitFrame(t, bob, "the file's message", func(m *protocol.Msg) bool { return m.Seq == seq && m.File != nil })
	if _, err := os.Stat(contentPath(srv.Data, f.ID)); err != nil {
		t.Fatalf("the content is not where the store keeps it: %v", err)
	}
	alice.Send(&protocol.Change{Room: "general", ID: "del", Kind: protocol.ChangeDelete, Target: seq})
	awaitFrame(t, alice, "the delete's ACK", func(a *protocol.Ack) bool { return a.ID == "del" })
	if u := awaitFrame(t, bob, "the delete", func(u *protocol.Update) bool { return u.Target == seq }); u.State != nil && u.State.File != nil {
		t.Fatalf("the deleted message still carries %+v", u.State.File)
	}
	if e := fetchRefused(t, bob, "general", f.ID); e.Code != protocol.CodeNotFound || e.ID != f.ID {
		t.Fatalf("FETCH of a deleted message's file: %v", e)
	}
	waitGone(t, srv, contentPath(srv.Data, f.ID))

	// Retention: with -retain-messages 1, the next message removes the
	// file's.
	kept := testserver.Start(t, testserver.Options{Args: []string{"-retain-messages", "1", "-files-grace", "0"}})
	alice = fileClient(t, kept.Addr, "general", "alice", "")
	bob = fileClient(t, kept.Addr, "general", "bob", "")
	g := upload(t, alice, "general", "r1", "old.bin", randomBytes(70_000, 8))
	sendFile(t, alice, "general", "r1", "", g)
	if got, _ := fetchAll(t, bob, "general", g.ID); len(got) != 70_000 {
		t.Fatalf("fetched %d bytes", len(got))
	}
	alice.Send(&protocol.Send{Room: "general", ID: "newer", Text: "newer"})
	awaitFrame(t, alice, "the ACK", func(a *protocol.Ack) bool { return a.ID == "newer" })
	waitRemoved(t, kept, 1)
	if e := fetchRefused(t, bob, "general", g.ID); e.Code != protocol.CodeNotFound || e.ID != g.ID {
		t.Fatalf("FETCH of a file retention removed: %v", e)
	}
	waitGone(t, kept, contentPath(kept.Data, g.ID))
}

// TestBackupAndRestoreCarryFiles: `chat-server backup` copies the shared
// files' content beside the backup; `restore` into a fresh data
// directory brings messages, files and previews back, served as before.
func TestBackupAndRestoreCarryFiles(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	alice := fileClient(t, srv.Addr, "general", "alice", "")
	img := testPNG(t, 400, 300)
	f := upload(t, alice, "general", "p1", "photo.png", img)
	seq := sendFile(t, alice, "general", "p1", "the view", f)
	doc := upload(t, alice, "general", "d1", "doc.bin", randomBytes(200_000, 10))
	sendFile(t, alice, "general", "d1", "", doc)

	backupFile := filepath.Join(t.TempDir(), "chat-backup.db")
	code, out, errOut := chatServer(t, "backup", "-data", srv.Data, backupFile)
	if code != 0 || !strings.Contains(out, "shared files") {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	for _, id := range []string{f.ID, f.Thumb, doc.ID} {
		if _, err := os.Stat(filepath.Join(filesDirOf(backupFile), id[:2], id)); err != nil {
			t.Fatalf("the backup lacks content %s: %v", id, err)
		}
	}
	srv.Kill()

	data := t.TempDir()
	if code, out, errOut := chatServer(t, "restore", "-data", data, backupFile); code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	restored := testserver.Start(t, testserver.Options{Data: data})
	bob := fileClient(t, restored.Addr, "general", "bob", "")
	m := awaitFrame(t, bob, "the photo's message in the replay", func(m *protocol.Msg) bool { return m.Seq == seq })
	if m.File == nil || *m.File != *f || m.Text != "the view" {
		t.Fatalf("restored message %+v with file %+v, want %+v", m, m.File, f)
	}
	if got, mime := fetchAll(t, bob, "general", f.ID); !bytes.Equal(got, img) || mime != "image/png" {
		t.Fatalf("the restored photo: %d bytes of %q", len(got), mime)
	}
	if thumb, _ := fetchAll(t, bob, "general", f.Thumb); len(thumb) == 0 {
		t.Fatal("the restored preview is empty")
	}
	if got, _ := fetchAll(t, bob, "general", doc.ID); sha256.Sum256(got) != [32]byte(mustHex(t, doc.ID)) {
		t.Fatal("the restored document differs")
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("%q is not a SHA-256", s)
	}
	return b
}
