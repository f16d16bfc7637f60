package protocol

import "encoding/binary"

// Files (README.md section 4, "Files"): a client uploads a file in chunks
// over its connection (UPLOAD, answered by UPLOADED), then sends a message
// that carries it (SEND's file); members fetch it in parts (FETCH,
// answered by PART).

// File describes a stored file, as a message carries it. The server fills
// every field from what it stored: the type is sniffed from the content,
// never taken from the client.
type File struct {
	// ID is the lowercase hex SHA-256 of the stored content (64
	// characters): the same content is stored once.
	ID   string
	Name string // the file's name as the uploader gave it (no directories)
	Type string // MIME type sniffed by the server, e.g. "image/png"
	Size uint64 // bytes of the stored content
	// Width and Height are an image's size in pixels, as it is displayed
	// (after its orientation); 0 for other files.
	Width, Height uint64
	// Thumb is the ID of the image's preview (a small JPEG or PNG made by
	// the server); empty for none. It is fetched like the file itself.
	Thumb                   string
	ThumbWidth, ThumbHeight uint64
}

// IsImage reports whether f is an image with a preview.
func (f *File) IsImage() bool { return f.Thumb != "" && f.Width > 0 && f.Height > 0 }

// Upload carries a chunk of a file (type UPLOAD) for Room: Data is the
// bytes at Offset of the Size bytes of the upload ID (1–64 bytes chosen by
// the client, unique among its uploads). The first UPLOAD of an ID (or one
// with no Data) starts or resumes the upload: the server answers UPLOADED
// with the bytes it already has, and the client goes on from there. Name
// is the file's name, sent in every chunk (the server keeps the first).
type Upload struct {
	Room   string
	ID     string
	Name   string
	Size   uint64
	Offset uint64
	Data   []byte
}

// Uploaded tells how much of the upload ID the server has (type
// UPLOADED). File is set once the upload is complete and stored: the
// client then sends a SEND with File.ID as its file.
type Uploaded struct {
	Room     string
	ID       string
	Received uint64
	File     *File
}

// Fetch asks for up to Length bytes at Offset of the file File carried by
// a message of Room (type FETCH). The server answers PART, or ERROR with
// the room and ID = the file's id.
type Fetch struct {
	Room   string
	File   string
	Offset uint64
	Length uint64
}

// MaxPart is the most data one PART carries.
const MaxPart = 64 << 10

// Part is a part of a file (type PART): Data is the bytes at Offset of
// File, whose content is Size bytes of MIME type MIME.
type Part struct {
	Room   string
	File   string
	Offset uint64
	Size   uint64
	MIME   string
	Data   []byte
}

func (*Upload) Type() Type   { return TypeUpload }
func (*Uploaded) Type() Type { return TypeUploaded }
func (*Fetch) Type() Type    { return TypeFetch }
func (*Part) Type() Type     { return TypePart }

func (m *Upload) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = appendString(b, m.ID)
	b = appendString(b, m.Name)
	b = binary.AppendUvarint(b, m.Size)
	b = binary.AppendUvarint(b, m.Offset)
	return appendBytes(b, m.Data)
}

func (m *Upload) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.ID = string(r.raw("id"))
	m.Name = r.string("name")
	m.Size = r.uvarint("size")
	m.Offset = r.uvarint("offset")
	if d := r.raw("data"); len(d) > 0 {
		m.Data = append([]byte(nil), d...)
	}
}

func (m *Uploaded) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = appendString(b, m.ID)
	b = binary.AppendUvarint(b, m.Received)
	return appendFile(b, m.File)
}

func (m *Uploaded) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.ID = string(r.raw("id"))
	m.Received = r.uvarint("received")
	m.File = decodeFile(r)
}

func (m *Fetch) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = appendString(b, m.File)
	b = binary.AppendUvarint(b, m.Offset)
	return binary.AppendUvarint(b, m.Length)
}

func (m *Fetch) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.File = r.string("file")
	m.Offset = r.uvarint("offset")
	m.Length = r.uvarint("length")
}

func (m *Part) appendPayload(b []byte) []byte {
	b = appendString(b, m.Room)
	b = appendString(b, m.File)
	b = binary.AppendUvarint(b, m.Offset)
	b = binary.AppendUvarint(b, m.Size)
	b = appendString(b, m.MIME)
	return appendBytes(b, m.Data)
}

func (m *Part) decode(r *fieldReader) {
	m.Room = r.string("room")
	m.File = r.string("file")
	m.Offset = r.uvarint("offset")
	m.Size = r.uvarint("size")
	m.MIME = r.string("type")
	if d := r.raw("data"); len(d) > 0 {
		m.Data = append([]byte(nil), d...)
	}
}

// appendFile writes an optional file: files, a count (0 or 1, a uint),
// and that many file records (README.md section 3, "The file record").
func appendFile(b []byte, f *File) []byte {
	if f == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = appendString(b, f.ID)
	b = appendString(b, f.Name)
	b = appendString(b, f.Type)
	for _, v := range [...]uint64{f.Size, f.Width, f.Height} {
		b = binary.AppendUvarint(b, v)
	}
	b = appendString(b, f.Thumb)
	b = binary.AppendUvarint(b, f.ThumbWidth)
	return binary.AppendUvarint(b, f.ThumbHeight)
}

// decodeFile reads what appendFile wrote. A count above 1 is malformed:
// this revision carries at most one file per message (a later one that
// carries more would announce it first).
func decodeFile(r *fieldReader) *File {
	switch n := r.uvarint("files"); {
	case r.err != nil || n == 0:
		return nil
	case n > 1:
		r.fail(CodeMalformed, "files: more than one file")
		return nil
	}
	f := &File{}
	f.ID = r.string("file id")
	f.Name = r.string("file name")
	f.Type = r.string("file type")
	f.Size = r.uvarint("file size")
	f.Width = r.uvarint("width")
	f.Height = r.uvarint("height")
	f.Thumb = r.string("thumb")
	f.ThumbWidth = r.uvarint("thumb width")
	f.ThumbHeight = r.uvarint("thumb height")
	if r.err != nil {
		return nil
	}
	return f
}
