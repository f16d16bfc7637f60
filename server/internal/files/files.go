// Package files is the seam between the hub and the storage of shared
// files (protocol README section 4, "Files"): uploads in chunks that
// survive a dropped connection, content stored once per SHA-256,
// quotas per name and in total, and reads only for members of a room
// whose messages carry the file.
//
// Two implementations keep the same contract, tested by filestest: the
// single server's (package sqlite, metadata in chat.db and content on
// disk under the data directory) and the cluster's (package cluster,
// JetStream object store, so any node serves any file).
package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"chat/protocol"
)

// Limits bound what a store holds. Zero values take the defaults.
type Limits struct {
	MaxFile   int64         // largest file, bytes (-max-upload; default 25 MiB)
	PerName   int64         // bytes one name may hold (-upload-quota; default 1 GiB)
	Total     int64         // bytes the server holds in all (-upload-total; default 20 GiB)
	Pending   int           // unfinished uploads one name may have at once (default 8)
	HoldFor   time.Duration // how long a finished upload waits to be sent, and an unfinished one to be resumed (default 24 h)
	MaxPixels int64         // largest image, pixels (default 50 megapixels)
}

// Defaults.
const (
	DefaultMaxFile   = 25 << 20
	DefaultPerName   = 1 << 30
	DefaultTotal     = 20 << 30
	DefaultPending   = 8
	DefaultHoldFor   = 24 * time.Hour
	DefaultMaxPixels = 50_000_000
)

// WithDefaults returns l with zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxFile <= 0 {
		l.MaxFile = DefaultMaxFile
	}
	if l.PerName <= 0 {
		l.PerName = DefaultPerName
	}
	if l.Total <= 0 {
		l.Total = DefaultTotal
	}
	if l.Pending <= 0 {
		l.Pending = DefaultPending
	}
	if l.HoldFor <= 0 {
		l.HoldFor = DefaultHoldFor
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	return l
}

// Upload identifies an upload and says what it is.
type Upload struct {
	// Owner is the name key (protocol.Key) of the uploader: quotas count
	// per owner, and only the owner may resume, finish or send it.
	Owner string
	ID    string // the client's upload id
	Room  string // the room it is for (canonical name)
	Name  string // the file's name as given (a base name; the store cleans it)
	Size  int64  // total bytes
}

// Store keeps files. Every method is safe for concurrent use.
type Store interface {
	// Begin starts upload u, or resumes it when the owner already has an
	// unfinished upload with that id and size: it returns the bytes the
	// store has. It refuses with *Error (CodeTooBig over MaxFile, CodeQuota
	// when u.Size would take the owner or the server over its quota
	// (unfinished uploads count with their full size), CodeInvalid for a
	// size of 0 or too many unfinished uploads).
	Begin(ctx context.Context, u Upload) (received int64, err error)
	// Write stores data at offset of the owner's upload id. offset must be
	// the bytes the store has, else the answer is an *OffsetError with
	// that number and nothing is written. Data past the upload's size is
	// refused with CodeInvalid.
	Write(ctx context.Context, owner, id string, offset int64, data []byte) (received int64, err error)
	// Finish completes an upload whose bytes are all there: it sniffs the
	// type, cleans and previews an image (package media; a damaged image
	// or one over MaxPixels is refused with CodeInvalid and its bytes are
	// dropped), stores the content by its SHA-256 (once, however often it
	// is uploaded) and removes the upload. The owner then holds the file
	// for HoldFor: a SEND may carry it. Finishing twice returns the same
	// File while the hold lasts (a client that lost the first UPLOADED).
	Finish(ctx context.Context, owner, id string) (protocol.File, error)
	// Held returns the file with id fileID (File.ID) if owner holds it:
	// uploaded it within HoldFor. Else ErrNotFound. The hub calls it for a
	// SEND with a file, then stores the returned File in the message.
	Held(ctx context.Context, owner, fileID string) (protocol.File, error)
	// Open opens the file or preview fileID for reading, if a message of
	// room carries it (File.ID or File.Thumb); else ErrNotFound, the same
	// answer for a file that exists elsewhere. Messages deleted or removed
	// by retention no longer carry their file.
	Open(ctx context.Context, room, fileID string) (Blob, error)
	// Collect removes the content no message and no hold refers to any
	// more, and unfinished uploads older than HoldFor. Stores also call it
	// on their own (after deletes and retention, and at least hourly).
	Collect(ctx context.Context) error
	// Usage returns the bytes owner holds (files its messages carry, held
	// files, unfinished uploads at full size), and the server's total.
	Usage(ctx context.Context, owner string) (name, total int64, err error)
}

// Blob is a stored file's content.
type Blob interface {
	io.ReaderAt
	io.Closer
	Size() int64
	Type() string // MIME type, as sniffed at Finish
}

// ErrNotFound: no such upload or file (or not one the caller may see).
var ErrNotFound = errors.New("files: not found")

// Error is a refusal the client is told, with a protocol error code.
type Error struct {
	Code protocol.ErrorCode
	Text string // a sentence for the user
}

func (e *Error) Error() string { return e.Text }

// Refuse returns an *Error.
func Refuse(code protocol.ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Text: fmt.Sprintf(format, args...)}
}

// OffsetError answers a Write at the wrong offset: Have is where the
// client must go on.
type OffsetError struct{ Have int64 }

func (e *OffsetError) Error() string {
	return fmt.Sprintf("files: the upload goes on at byte %d", e.Have)
}
