package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// filesTypes are the frames of files (README.md section 4, "Files"), and
// the older frames that gained fields for them.
var filesTypes = map[Type]bool{
	TypeUpload: true, TypeUploaded: true, TypeFetch: true, TypePart: true,
	TypeSend: true, TypeMessage: true, TypeNotice: true, TypeUpdate: true, TypeHistory: true, TypePage: true,
	TypeWelcome: true, TypeError: true,
}

// fileRecordBytes is the smallest file record: files 1, then three empty
// texts, three zeros, an empty text and two zeros.
var fileRecordBytes = []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// filesEdgeCases are hand-made frame bodies of those frames: each decodes
// to want, or fails with code. They are seeds of FuzzDecode too.
var filesEdgeCases = []struct {
	name string
	body []byte
	want Message   // when it decodes
	code ErrorCode // when it does not
}{
	// UPLOAD: id and data are bytes, name is text; every field is there.
	{"upload-binary-id-and-data", []byte{byte(TypeUpload), 1, 'r', 2, 0xff, 0x00, 1, 'n', 3, 0, 2, 0x00, 0xff},
		&Upload{Room: "r", ID: "\xff\x00", Name: "n", Size: 3, Data: []byte{0x00, 0xff}}, 0},
	{"upload-name-not-utf8", []byte{byte(TypeUpload), 1, 'r', 1, 'i', 1, 0xff, 3, 0, 0}, nil, CodeInvalidUTF8},
	{"upload-without-data", []byte{byte(TypeUpload), 1, 'r', 1, 'i', 1, 'n', 3, 0}, nil, CodeMalformed},
	{"upload-data-runs-out", []byte{byte(TypeUpload), 1, 'r', 1, 'i', 1, 'n', 3, 0, 3, 'a', 'b'}, nil, CodeMalformed},
	{"upload-offset-not-shortest", []byte{byte(TypeUpload), 1, 'r', 1, 'i', 1, 'n', 3, 0x80, 0x00, 0}, nil, CodeMalformed},

	// UPLOADED always has files: 0, or 1 and the record; never more.
	{"uploaded-without-files", []byte{byte(TypeUploaded), 1, 'r', 1, 'i', 5}, nil, CodeMalformed},
	{"uploaded-smallest-file", append([]byte{byte(TypeUploaded), 1, 'r', 1, 'i', 5}, fileRecordBytes...),
		&Uploaded{Room: "r", ID: "i", Received: 5, File: &File{}}, 0},
	{"uploaded-two-files", append([]byte{byte(TypeUploaded), 1, 'r', 1, 'i', 5, 2}, fileRecordBytes[1:]...), nil, CodeMalformed},
	{"uploaded-files-not-shortest", []byte{byte(TypeUploaded), 1, 'r', 1, 'i', 5, 0x80, 0x00}, nil, CodeMalformed},
	{"uploaded-forged-files", []byte{byte(TypeUploaded), 1, 'r', 1, 'i', 5, 0xff, 0xff, 0xff, 0xff, 0x0f}, nil, CodeMalformed},
	{"uploaded-file-cut", []byte{byte(TypeUploaded), 1, 'r', 1, 'i', 5, 1, 0, 0, 0, 0, 0, 0, 0, 0}, nil, CodeMalformed},
	{"uploaded-file-type-not-utf8", []byte{byte(TypeUploaded), 1, 'r', 1, 'i', 5, 1, 0, 0, 2, 0xc3, 0x28, 0, 0, 0, 0, 0, 0},
		nil, CodeInvalidUTF8},

	// FETCH and PART.
	{"fetch-without-length", []byte{byte(TypeFetch), 1, 'r', 1, 'f', 0}, nil, CodeMalformed},
	{"part-type-not-utf8", []byte{byte(TypePart), 1, 'r', 1, 'f', 0, 1, 1, 0xff, 0}, nil, CodeInvalidUTF8},
	{"part-data-runs-out", []byte{byte(TypePart), 1, 'r', 1, 'f', 0, 9, 0, 9, 'a'}, nil, CodeMalformed},

	// SEND's file follows reply, which is written (0) when file is set.
	{"send-file-empty-caption", []byte{byte(TypeSend), 1, 'r', 1, 'i', 0, 0, 1, 'f'},
		&Send{Room: "r", ID: "i", File: "f"}, 0},
	{"send-file-not-utf8", []byte{byte(TypeSend), 1, 'r', 1, 'i', 0, 0, 1, 0xff}, nil, CodeInvalidUTF8},
	{"send-empty-file", []byte{byte(TypeSend), 1, 'r', 1, 'i', 1, 't', 0, 0},
		&Send{Room: "r", ID: "i", Text: "t"}, 0},

	// MESSAGE's file follows reply, edited and reactions.
	{"message-files-zero", []byte{byte(TypeMessage), 1, 'r', 1, 2, 1, 'b', 1, 'i', 0, 0, 0, 0, 0},
		&Msg{Room: "r", Seq: 1, Time: 2, Sender: "b", ID: "i"}, 0},
	{"message-smallest-file", append([]byte{byte(TypeMessage), 1, 'r', 1, 2, 1, 'b', 1, 'i', 0, 0, 0, 0}, fileRecordBytes...),
		&Msg{Room: "r", Seq: 1, Time: 2, Sender: "b", ID: "i", File: &File{}}, 0},
	{"message-two-files", append([]byte{byte(TypeMessage), 1, 'r', 1, 2, 1, 'b', 1, 'i', 0, 0, 0, 0, 2}, fileRecordBytes[1:]...),
		nil, CodeMalformed},
	{"message-file-cut", []byte{byte(TypeMessage), 1, 'r', 1, 2, 1, 'b', 1, 'i', 0, 0, 0, 0, 1, 0, 0}, nil, CodeMalformed},

	// UPDATE's file follows the state with flags bits 0 and 1; bit 1
	// without bit 0 carries nothing.
	{"update-file-without-state", []byte{byte(TypeUpdate), 1, 'r', 4, 5, 1, 'a', 3, 3, 0, 2},
		&Update{Room: "r", Seq: 4, Time: 5, Actor: "a", Kind: ChangeReact, Target: 3}, 0},
	{"update-file-missing", []byte{byte(TypeUpdate), 1, 'r', 4, 5, 1, 'a', 3, 3, 0, 3, 3, 2, 1, 'b', 1, 'i', 0, 0, 0, 0},
		nil, CodeMalformed},
	{"update-files-zero", []byte{byte(TypeUpdate), 1, 'r', 4, 5, 1, 'a', 3, 3, 0, 3, 3, 2, 1, 'b', 1, 'i', 0, 0, 0, 0, 0},
		&Update{Room: "r", Seq: 4, Time: 5, Actor: "a", Kind: ChangeReact, Target: 3,
			State: &Msg{Room: "r", Seq: 3, Time: 2, Sender: "b", ID: "i"}}, 0},
	{"update-state-with-file", append([]byte{byte(TypeUpdate), 1, 'r', 4, 5, 1, 'a', 3, 3, 0, 3, 3, 2, 1, 'b', 1, 'i', 0, 0, 0, 0}, fileRecordBytes...),
		&Update{Room: "r", Seq: 4, Time: 5, Actor: "a", Kind: ChangeReact, Target: 3,
			State: &Msg{Room: "r", Seq: 3, Time: 2, Sender: "b", ID: "i", File: &File{}}}, 0},

	// HISTORY's bit 1 asks for files, and so full records.
	{"history-files-only", []byte{byte(TypeHistory), 1, 'r', 5, 0, 2},
		&History{Room: "r", Before: 5, Full: true, Files: true}, 0},

	// PAGE with files (flags bits 1 and 2): each record has files; bit 2
	// without bit 1 means nothing.
	{"page-files-smallest", []byte{byte(TypePage), 0, 0, 6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		&Page{Full: true, Files: true, Messages: []Msg{{}}}, 0},
	{"page-files-forged-count", []byte{byte(TypePage), 0, 0, 6, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		nil, CodeMalformed}, // 17 bytes: two full records' worth, less than two with files
	{"page-files-without-full", []byte{byte(TypePage), 0, 0, 4, 1, 0, 0, 0, 0, 0},
		&Page{Messages: []Msg{{}}}, 0},
	{"page-files-record-cut", []byte{byte(TypePage), 0, 0, 6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		nil, CodeMalformed},

	// WELCOME's file limits come after idle timeout.
	{"welcome-file-limits", []byte{byte(TypeWelcome), 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x04, 0x80, 0x80, 0xc0, 0x0c},
		&Welcome{Version: 1, Flags: WelcomeFiles, Limits: Limits{FileBytesPerSec: 8 << 20, MaxUpload: 25 << 20}}, 0},
}

func TestFilesEdgeCases(t *testing.T) {
	for _, tc := range filesEdgeCases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.body)
			if tc.want == nil {
				var de *DecodeError
				if !errors.As(err, &de) || de.Code != tc.code {
					t.Fatalf("Decode = %#v, %v; want code %v", m, err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, tc.want) {
				t.Fatalf("decoded\n %#v\nwant\n %#v", m, tc.want)
			}
		})
	}
}

// TestFilesTruncated: no proper prefix of the frames of files is misread
// (checkPrefixes). WELCOME is left out: each of its limits reads as 0
// when the frame ends before it (section 3), so a cut WELCOME reads as
// one of an older server.
func TestFilesTruncated(t *testing.T) {
	for _, g := range goldenMessages {
		if filesTypes[g.msg.Type()] && g.msg.Type() != TypeWelcome {
			checkPrefixes(t, g.name, Encode(g.msg)[LengthSize:])
		}
	}
}

// TestFilesAppendedFields: a later revision may append fields to the
// frames of files too, after the last one of this revision (after the
// file, in MESSAGE, NOTICE, UPDATE and UPLOADED); a receiver of this one
// reads what it knows.
func TestFilesAppendedFields(t *testing.T) {
	for _, g := range goldenMessages {
		if !filesTypes[g.msg.Type()] {
			continue
		}
		m, err := Decode(withFieldAppended(g.msg))
		if err != nil {
			t.Fatalf("%s with a field appended: %v", g.name, err)
		}
		if !reflect.DeepEqual(m, g.msg) {
			t.Errorf("%s with a field appended:\n got %#v\nwant %#v", g.name, m, g.msg)
		}
	}
}

// TestFilesLeftOut: a frame without a file is the frame of the revision
// before files, byte for byte; a PAGE that answers a HISTORY without the
// files flag leaves the messages' files out, so a client of before, which
// never asks for them, reads its PAGEs as before.
func TestFilesLeftOut(t *testing.T) {
	for _, tc := range []struct {
		m    Message
		want []byte
	}{
		{&Send{Room: "r", ID: "i", Text: "t", Reply: 3}, []byte{byte(TypeSend), 1, 'r', 1, 'i', 1, 't', 3}},
		{&Msg{Room: "r", Seq: 1, Time: 2, Sender: "b", ID: "i", Text: "t", Reply: 3},
			[]byte{byte(TypeMessage), 1, 'r', 1, 2, 1, 'b', 1, 'i', 1, 't', 3, 0, 0}},
		{&Update{Room: "r", Seq: 4, Time: 5, Actor: "a", Kind: ChangeEdit, Target: 3, State: &Msg{Seq: 3, Text: "t"}},
			[]byte{byte(TypeUpdate), 1, 'r', 4, 5, 1, 'a', 1, 3, 0, 1, 3, 0, 0, 0, 1, 't', 0, 0, 0}},
		{&History{Room: "r", Before: 5, Limit: 6, Full: true}, []byte{byte(TypeHistory), 1, 'r', 5, 6, 1}},
		{&Page{Room: "r", Full: true, Messages: []Msg{{Seq: 1, File: &goldenNotes}}},
			[]byte{byte(TypePage), 1, 'r', 0, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0}},
		{&Page{Room: "r", Messages: []Msg{{Seq: 1, File: &goldenNotes}}},
			[]byte{byte(TypePage), 1, 'r', 0, 0, 1, 1, 0, 0, 0, 0}},
		{&Welcome{Version: 1, Limits: Limits{IdleTimeoutMs: 1}},
			[]byte{byte(TypeWelcome), 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
	} {
		if got := Encode(tc.m)[LengthSize:]; !bytes.Equal(got, tc.want) {
			t.Errorf("%v: % x, want % x", tc.m.Type(), got, tc.want)
		}
	}
}

// previousRevisionTables are the spec's tables as they were before files:
// without SEND's file, WELCOME's file rate and max upload, and the files
// of MESSAGE, NOTICE, PAGE's records and UPDATE's state. The four frame
// types of files did not exist.
func previousRevisionTables() (map[byte][]specField, map[byte]map[string][]specField) {
	isNew := func(typ byte) bool { return typ == 0x0e || typ == 0x0f || typ == 0x92 || typ == 0x93 }
	strip := func(fs []specField) []specField {
		var kept []specField
		for _, f := range fs {
			switch f.name {
			case "file", "files", "file rate", "max upload":
				continue
			}
			kept = append(kept, f)
		}
		return kept
	}
	top := map[byte][]specField{}
	for typ, fs := range specFields {
		if !isNew(typ) {
			top[typ] = strip(fs)
		}
	}
	records := map[byte]map[string][]specField{}
	for typ, recs := range specRecords {
		if isNew(typ) {
			continue
		}
		records[typ] = map[string][]specField{}
		for name, fs := range recs {
			records[typ][name] = strip(fs)
		}
	}
	return top, records
}

// withoutFiles is a golden vector's decoded fields as a receiver of the
// revision before files reads them: the file fields dropped, in records
// too.
func withoutFiles(fs []goldenField) []goldenField {
	var kept []goldenField
	for _, f := range fs {
		switch f.Name {
		case "file", "files", "file rate", "max upload":
			continue
		}
		kept = append(kept, goldenField{Name: f.Name, Value: dropFileKeys(f.Value)})
	}
	return kept
}

// dropFileKeys removes the keys "file" and "files" from a decoded record
// or list of records.
func dropFileKeys(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if k != "file" && k != "files" {
				out[k] = dropFileKeys(x)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = dropFileKeys(x)
		}
		return out
	case []map[string]any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = dropFileKeys(x)
		}
		return out
	}
	return v
}

// TestPreviousRevisionReadsFiles: a receiver of the revision before files,
// decoding by that revision's tables and ignoring the bytes after the
// fields it knows (README.md section 2), reads every vector of an older
// frame type that carries a file — MESSAGE, NOTICE, UPDATE with a file,
// WELCOME with the file limits, SEND with a file — as the same frame
// without it: the file comes after everything it knows. A PAGE with
// files is left out: it answers only a HISTORY that asked for files,
// which such a receiver never sends (TestFilesLeftOut shows its PAGEs
// stay as they were).
func TestPreviousRevisionReadsFiles(t *testing.T) {
	top, records := previousRevisionTables()
	checked := 0
	for _, g := range goldenMessages {
		typ := byte(g.msg.Type())
		if _, old := top[typ]; !old || !strings.Contains(g.name, "file") || typ == byte(TypePage) || typ == byte(TypeHistory) {
			continue
		}
		frame := Encode(g.msg)
		got, err := decodeByTables(frame, top, records, true)
		if err != nil {
			t.Errorf("%s: the previous revision cannot read it: %v", g.name, err)
			continue
		}
		want, err := readGolden(filepath.Join("testdata", "golden", g.name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		wantFields := withoutFiles(want.Fields)
		if len(got.Fields) != len(wantFields) {
			t.Errorf("%s: the previous revision reads %d fields, want %d", g.name, len(got.Fields), len(wantFields))
			continue
		}
		for i, f := range got.Fields {
			w := wantFields[i]
			if f.Name != w.Name || canonical(f.Value) != canonical(dropFileKeys(w.Value)) {
				t.Errorf("%s: the previous revision reads %s = %s, want %s = %s",
					g.name, f.Name, canonical(f.Value), w.Name, canonical(w.Value))
			}
		}
		checked++
	}
	if checked < 6 {
		t.Errorf("checked %d vectors, want at least 6 (MESSAGE, NOTICE, UPDATE, WELCOME, SEND with files)", checked)
	}
}

// TestSpecFilesExample checks the frames of the upload example in
// README.md section 4, "Files": each is a whole frame that decodes and
// re-encodes to itself, they are the flow the text describes (UPLOAD and
// UPLOADED with the offsets of a resumed upload, then SEND, MESSAGE,
// FETCH and PART), and every annotated frame of the section is one of
// them.
func TestSpecFilesExample(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "\n### Files\n")
	if !ok {
		t.Fatal("README.md has no section Files")
	}
	sec, _, _ = strings.Cut(sec, "\n### ")
	_, block, ok := strings.Cut(sec, "<!-- files-example -->")
	if !ok {
		t.Fatal("the Files section has no <!-- files-example --> block")
	}
	block, _, _ = strings.Cut(block, "<!-- /files-example -->")
	var frames []string
	var msgs []Message
	for line := range strings.Lines(block) {
		f := strings.Fields(line)
		if len(f) < 2 || (f[0] != "C→S" && f[0] != "S→C") {
			continue
		}
		hexPart, _, _ := strings.Cut(strings.Join(f[1:], " "), "#")
		hexPart = strings.ReplaceAll(hexPart, " ", "")
		frame, err := hex.DecodeString(hexPart)
		if err != nil {
			t.Fatalf("bad hex in %q: %v", line, err)
		}
		body, err := ReadFrame(bytes.NewReader(frame), MaxFrame, nil)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		m, err := Decode(body)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if again := Encode(m); !bytes.Equal(again, frame) {
			t.Fatalf("%v does not re-encode to itself:\n got %x\nwant %x", m.Type(), again, frame)
		}
		frames = append(frames, hexPart)
		msgs = append(msgs, m)
	}
	// The flow: offsets follow what the server said it has.
	var pos uint64 // where the client goes on: the server's word, plus what it sent since
	var file *File
	var types []string
	for _, m := range msgs {
		types = append(types, m.Type().String())
		switch m := m.(type) {
		case *Upload:
			if len(m.Data) == 0 && m.Offset != 0 {
				t.Errorf("a begin frame at offset %d", m.Offset)
			}
			if len(m.Data) > 0 {
				if m.Offset != pos {
					t.Errorf("an UPLOAD at offset %d where the client is at %d", m.Offset, pos)
				}
				pos = m.Offset + uint64(len(m.Data))
			}
		case *Uploaded:
			if m.Received > pos {
				t.Errorf("UPLOADED received %d of the %d bytes sent", m.Received, pos)
			}
			pos, file = m.Received, m.File
		case *Send:
			if file == nil || m.File != file.ID {
				t.Errorf("SEND file %q, want the uploaded file's id", m.File)
			}
		case *Msg:
			if !reflect.DeepEqual(m.File, file) {
				t.Errorf("MESSAGE file %+v, want %+v", m.File, file)
			}
		case *Part:
			if sum := sha256.Sum256(m.Data); m.Offset != 0 || uint64(len(m.Data)) != m.Size || hex.EncodeToString(sum[:]) != file.ID {
				t.Errorf("PART of %d bytes at %d is not the whole file %s", len(m.Data), m.Offset, file.ID)
			}
		}
	}
	want := "UPLOAD UPLOADED UPLOAD UPLOAD UPLOADED UPLOAD UPLOADED SEND ACK MESSAGE FETCH PART"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("the example's frames are\n %s\nwant\n %s", got, want)
	}
	// The annotated frames: their bytes ("…" for bytes left out) are one
	// of the example's frames.
	annotated := regexp.MustCompile("(?s)The ([^,\n]*), annotated:\n\n```\n(.*?)```")
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
			t.Errorf("the annotated %s is no frame of the example", m[1])
		}
	}
	if found < 3 {
		t.Errorf("found %d annotated frames in the Files section, want 3", found)
	}
}
