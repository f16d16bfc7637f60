package hub

// Files (protocol README.md section 4, "Files"): UPLOAD in chunks,
// answered by UPLOADED; a SEND that carries the finished file; FETCH of a
// file a message of a room in the connection's scope carries, answered by
// PART. What is stored, and who may read it, is the files.Store's; the hub
// decides who is asking (the name of the connection in the room: the
// owner of uploads and quotas) and turns the store's answers into frames.
//
// Uploads run on the connection's reader: a chunk is written before the
// next frame of the connection is read, so their order is the client's.
// FETCHes run off the reader, a few at a time per connection (fetchQueue),
// so that a slow store read cannot hold the connection's chat frames.

import (
	"errors"
	"fmt"
	"math"

	"chat/protocol"
	"chat/server/internal/files"
	"chat/server/internal/inbox"
)

// fetchQueue is how many FETCHes of one connection may wait or run at
// once; the reader waits for a turn beyond it (clients keep 4 in flight).
const fetchQueue = 8

// progressEvery is how often, in bytes received, an upload is told its
// progress (UPLOADED) without asking.
const progressEvery = 1 << 20

// Upload handles an UPLOAD: a frame without data begins or resumes the
// upload (UPLOADED with the bytes the store has), one with data stores
// it at its offset. The upload finishes when its last byte is stored:
// UPLOADED then carries the File. A refusal is an ERROR with the room and
// the upload id. The session has checked the lengths.
func (c *Conn) Upload(u *protocol.Upload) *protocol.Error {
	h := c.h
	key := roomKey(u.Room)
	refuse := func(code protocol.ErrorCode, text string) *protocol.Error {
		e := protocol.NewError(code, key, text)
		e.ID = u.ID
		return e
	}
	if h.cfg.Files == nil {
		return refuse(protocol.CodeUnexpected, "this server takes no files")
	}
	mem := c.membership(key)
	if mem == nil {
		return refuse(protocol.CodeUnexpected, "UPLOAD to "+key+", which this connection has not joined")
	}
	if !c.operator.Load() {
		if e := mem.room.muted(mem.nameKey); e != nil {
			e.ID = u.ID
			return e
		}
	}
	if u.Size > math.MaxInt64 {
		// Converted, it would wrap negative: refused as what it is.
		return refuse(protocol.CodeTooBig, "the file is larger than this server takes")
	}
	owner := mem.nameKey
	ctx := c.ctx
	size := int64(u.Size)
	var received int64
	var err error
	if len(u.Data) == 0 {
		received, err = h.cfg.Files.Begin(ctx, files.Upload{Owner: owner, ID: u.ID, Room: key, Name: u.Name, Size: size})
		if err == nil {
			h.claimUpload(owner, u.ID, c, size)
		}
	} else {
		claimed, ok := h.ownsUpload(owner, u.ID, c)
		if claimed > 0 {
			// The size the store took at the begin, not the chunk's.
			size = claimed
		}
		if !ok {
			// Another connection began this upload since: this one is a
			// dead connection's, whose reader still works through the
			// chunks it had received. Storing them would move the count
			// under the newer connection after its begin was answered.
			return nil
		}
		received, err = h.cfg.Files.Write(ctx, owner, u.ID, int64(u.Offset), u.Data)
		var oe *files.OffsetError
		if errors.As(err, &oe) {
			// Not stored: the client goes on from what the store has.
			return c.uploaded(key, u.ID, oe.Have, nil)
		}
	}
	if err != nil {
		h.dropClaim(owner, u.ID, c)
		return c.fileRefusal(key, u.ID, err, "storing an upload")
	}
	if received >= size && size > 0 {
		f, err := h.cfg.Files.Finish(ctx, owner, u.ID)
		h.dropClaim(owner, u.ID, c) // finished or refused: no more chunks of it
		if err != nil {
			return c.fileRefusal(key, u.ID, err, "finishing an upload")
		}
		return c.uploaded(key, u.ID, received, &f)
	}
	if len(u.Data) == 0 || received/progressEvery != (received-int64(len(u.Data)))/progressEvery {
		return c.uploaded(key, u.ID, received, nil)
	}
	return nil
}

// claimUpload makes c the connection that uploads owner's upload id: the
// chunks of any other connection for it are dropped from now on (a
// fence on this node; in a cluster a dead connection's node may still
// store a few, which the store's offsets correct).
func (h *Hub) claimUpload(owner, id string, c *Conn, size int64) {
	k := owner + "\x00" + id
	h.uploadMu.Lock()
	defer h.uploadMu.Unlock()
	if last, ok := h.uploaders[k]; ok && last.c != c {
		delete(last.c.uploads, k)
	}
	h.uploaders[k] = uploadClaim{c: c, size: size}
	if c.uploads == nil {
		c.uploads = map[string]struct{}{}
	}
	c.uploads[k] = struct{}{}
}

// uploadClaim is the connection that began an upload last, and the size
// the store took then.
type uploadClaim struct {
	c    *Conn
	size int64
}

// ownsUpload reports whether c may write owner's upload id: it began it
// last, or no connection here did (the upload was begun before a
// restart, or on another node); and the size c began it with (0: none).
func (h *Hub) ownsUpload(owner, id string, c *Conn) (size int64, ok bool) {
	h.uploadMu.Lock()
	defer h.uploadMu.Unlock()
	last, ok := h.uploaders[owner+"\x00"+id]
	if !ok {
		return 0, true
	}
	if last.c != c {
		return 0, false
	}
	return last.size, true
}

// dropClaim drops c's claim of owner's upload id: it finished or was
// refused, so no claim is kept for it until the connection ends.
func (h *Hub) dropClaim(owner, id string, c *Conn) {
	k := owner + "\x00" + id
	h.uploadMu.Lock()
	defer h.uploadMu.Unlock()
	if last, ok := h.uploaders[k]; ok && last.c == c {
		delete(h.uploaders, k)
		delete(c.uploads, k)
	}
}

// forgetUploads drops the claims of a connection that ended: its own
// set, not a walk over every connection's.
func (h *Hub) forgetUploads(c *Conn) {
	h.uploadMu.Lock()
	defer h.uploadMu.Unlock()
	for k := range c.uploads {
		if last, ok := h.uploaders[k]; ok && last.c == c {
			delete(h.uploaders, k)
		}
	}
	c.uploads = nil
}

// uploaded queues UPLOADED, unless the connection has ended.
func (c *Conn) uploaded(room, id string, received int64, f *protocol.File) *protocol.Error {
	if c.ctx.Err() == nil {
		c.m.Deliver(protocol.Encode(&protocol.Uploaded{Room: room, ID: id, Received: uint64(received), File: f}))
	}
	return nil
}

// fileRefusal turns a files.Store error into the ERROR for request id
// of room: the store's refusal as it worded it, not-found for an upload
// or file it does not have, unavailable (logged) for a failure. Nothing
// for a connection that has ended.
func (c *Conn) fileRefusal(room, id string, err error, doing string) *protocol.Error {
	if c.ctx.Err() != nil {
		return nil
	}
	var fe *files.Error
	var e *protocol.Error
	switch {
	case errors.As(err, &fe):
		e = protocol.NewError(fe.Code, room, fe.Text)
	case errors.Is(err, files.ErrNotFound):
		e = protocol.NewError(protocol.CodeNotFound, room, "no such upload or file: begin the upload again (an UPLOAD without data)")
	default:
		c.h.cfg.Logger.Error(doing, "room", room, "err", err)
		// Closing, with reconnect: the client comes back and resumes the
		// upload where the store has it, as a SEND the store failed is
		// sent again after reconnecting.
		e = protocol.NewError(protocol.CodeUnavailable, room, "the server cannot store files right now; reconnect to resume")
	}
	e.ID = id
	return e
}

// heldFile returns the file fileID that the member's name holds, for a
// SEND that carries it; a refusal is an ERROR with the SEND's id.
func (c *Conn) heldFile(mem *member, id, fileID string) (*protocol.File, error) {
	fs := c.h.cfg.Files
	if fs == nil {
		e := protocol.NewError(protocol.CodeUnexpected, mem.roomKey, "this server takes no files")
		e.ID = id
		return nil, e
	}
	f, err := fs.Held(c.ctx, mem.nameKey, fileID)
	switch {
	case c.ctx.Err() != nil:
		return nil, ErrShuttingDown // the connection ended: nobody to answer
	case errors.Is(err, files.ErrNotFound):
		e := protocol.NewError(protocol.CodeNotFound, mem.roomKey, "the file of this message is not one "+mem.name+" uploaded (or it was sent too long after its upload): upload it again")
		e.ID = id
		return nil, e
	case err != nil:
		return nil, c.fileRefusal(mem.roomKey, id, err, "reading a held file")
	}
	return &f, nil
}

// Fetch answers a FETCH with a PART, off the reader: it waits for a turn
// among the connection's fetchQueue and returns. Refusals (forbidden for
// a room out of the connection's scope, not-found for a file no message
// of the room carries) come as ERROR with the room and the file's id.
func (c *Conn) Fetch(f *protocol.Fetch) *protocol.Error {
	key := roomKey(f.Room)
	if c.h.cfg.Files == nil {
		e := protocol.NewError(protocol.CodeUnexpected, key, "this server takes no files")
		e.ID = f.File
		return e
	}
	c.fetchOnce.Do(func() {
		c.fetches = make(chan *protocol.Fetch, fetchQueue)
		c.fetchDone = make(chan struct{})
		go c.fetchLoop()
	})
	select {
	case c.fetches <- f:
	case <-c.ctx.Done():
	}
	return nil
}

// fetchLoop answers the connection's FETCHes in order until it ends.
func (c *Conn) fetchLoop() {
	defer close(c.fetchDone)
	for {
		select {
		case f := <-c.fetches:
			if e := c.fetch(f); e != nil && c.ctx.Err() == nil {
				c.m.Deliver(protocol.Encode(e))
			}
		case <-c.ctx.Done():
			return
		}
	}
}

// fetch reads one part.
func (c *Conn) fetch(f *protocol.Fetch) *protocol.Error {
	h := c.h
	key := roomKey(f.Room)
	refuse := func(code protocol.ErrorCode, text string) *protocol.Error {
		e := protocol.NewError(code, key, text)
		e.ID = f.File
		return e
	}
	// A read the store cannot do is refused without closing the
	// connection (as a SEARCH's): the client may fetch again.
	unavailable := &protocol.Error{Code: protocol.CodeUnavailable, Room: key, ID: f.File, Text: "the server cannot read files right now; try again"}
	if !c.inScope(key) {
		return refuse(protocol.CodeForbidden, "you can fetch files only of rooms you are in: join "+key+" first")
	}
	blob, err := h.cfg.Files.Open(c.ctx, key, f.File)
	switch {
	case c.ctx.Err() != nil:
		if err == nil {
			blob.Close()
		}
		return nil
	case errors.Is(err, files.ErrNotFound):
		return refuse(protocol.CodeNotFound, "no message of "+key+" carries this file (it may have been deleted)")
	case err != nil:
		h.cfg.Logger.Error("opening a file", "room", key, "err", err)
		return unavailable
	}
	defer blob.Close()
	size := uint64(blob.Size())
	if f.Offset > size {
		return refuse(protocol.CodeInvalid, fmt.Sprintf("the file has %d bytes; offset %d is past its end", size, f.Offset))
	}
	n := min(f.Length, protocol.MaxPart, size-f.Offset)
	if f.Length == 0 {
		n = min(protocol.MaxPart, size-f.Offset)
	}
	data := make([]byte, n)
	if n > 0 {
		if _, err := blob.ReadAt(data, int64(f.Offset)); err != nil && c.ctx.Err() == nil {
			h.cfg.Logger.Error("reading a file", "room", key, "file", f.File, "err", err)
			return unavailable
		}
	}
	if c.ctx.Err() != nil {
		return nil
	}
	// Replay, not Deliver: parts are paced to the client's reading
	// instead of overflowing its queue.
	_ = c.m.Replay(c.ctx, [][]byte{protocol.Encode(&protocol.Part{Room: key, File: f.File, Offset: f.Offset, Size: size, MIME: blob.Type(), Data: data})})
	return nil
}

// inScope reports whether room is one the connection may read: a room it
// has joined, or a direct-message room of its identified name (SEARCH's
// scope; a direct-message room is its two names, so no store is asked).
func (c *Conn) inScope(room string) bool {
	if c.membership(room) != nil {
		return true
	}
	c.idMu.Lock()
	var name string
	if c.identity != nil {
		name = c.identity.key
	}
	c.idMu.Unlock()
	if name == "" || !inbox.IsDirect(room) {
		return false
	}
	a, b, ok := protocol.ParseDM(room)
	return ok && (a == name || b == name)
}
