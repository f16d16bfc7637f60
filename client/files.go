package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"chat/protocol"
)

// Files (protocol README section 4, "Files"): a server with
// protocol.WelcomeFiles takes files. SendFile puts an upload and the
// message that carries it in the outbox as one entry: the client uploads
// the file in chunks (UPLOAD, answered by UPLOADED) in the background,
// paced to the server's announced file rate and interleaved with the chat
// frames, then sends the message (SEND with the file) with the same id.
// After a reconnect the upload resumes where the server has it. Download
// and FetchFile read a file of a message in parts (FETCH, answered by
// PART), several in flight.

// Attachment is a file to send with SendFile.
type Attachment struct {
	Name string // file name shown to others (base name; directories are cut off)
	Size int64
	// Content is read when sending and re-sending chunks; it must stay
	// readable until Acked or RoomError for the message.
	Content io.ReaderAt
	Caption string // text sent with the file; may be empty
	Reply   uint64 // the message this one answers; 0: none
}

// Uploading reports progress of the SendFile id: Sent is how many bytes
// the server confirmed (UPLOADED), of Size. Done is set on the last one:
// the file is stored; the message's SEND follows, then Acked{ID: id} as
// for text. Progress comes at most about 5 times a second (the server
// confirms about every MiB), and once after each (re)connection when the
// server says how much it already has.
type Uploading struct {
	Room, ID   string
	Sent, Size int64
	Done       bool
}

func (Uploading) isEvent() {}

// maxUploads is how many uploads a client runs at once; the others wait
// in the outbox, in order.
const maxUploads = 3

// fetchWindow is how many FETCHes one Download keeps in flight.
const fetchWindow = 4

// uploadEvery is the least time between two Uploading events of an
// upload (but for the one after the server's begin answer and the last).
const uploadEvery = 200 * time.Millisecond

// chunkQueue is the most upload chunks the client lets wait in the
// writer's queue, so that a chat frame never waits behind more.
const chunkQueue = 4

// maxFileName bounds a file's name, in bytes.
const maxFileName = 255

// errNoFiles is the ErrUnsupported of the methods of this file.
var errNoFiles = fmt.Errorf("%w: no files", ErrUnsupported)

// upload is the file part of an outbox entry.
type upload struct {
	name    string
	size    int64
	content io.ReaderAt
	// gen is the connection the upload's begin frame went on (0: none
	// yet); begun is set once the server answered it there. The upload
	// is running while gen is the current connection and fileID is
	// empty.
	gen   int
	begun bool
	// next is the offset of the next chunk to send; confirmed is what the
	// server said it has.
	next, confirmed int64
	// rewound is the offset the upload last went back to after an answer
	// to a chunk at the wrong offset (-1: none since the begin frame).
	rewound int64
	same    int // answers in a row that repeated confirmed
	// fileID is the stored file's ID once the upload is complete: the
	// entry's SEND carries it.
	fileID string
	// retried: the stored file was uploaded again once because the server
	// no longer held it for the SEND (not-found).
	retried bool
	// restarts counts the begin frames sent again on a chunk refused
	// not-found (the server forgot the unfinished upload).
	restarts  int
	lastEvent time.Time
}

// stuckAnswers is how many UPLOADED in a row with the same count below
// what was sent mean that the server lost a chunk.
const stuckAnswers = 8

// maxRestarts bounds upload.restarts.
const maxRestarts = 3

// files reports whether the current (or, while disconnected, the last)
// server takes files.
func (l *loop) files() bool {
	return l.welcome != nil && l.welcome.Flags&protocol.WelcomeFiles != 0
}

// MaxUpload is the largest file the server takes, in bytes (its
// -max-upload): 0 when the server takes no files, or before the first
// connection tells.
func (c *Client) MaxUpload() int64 { return c.maxUpload.Load() }

// SendFile queues an upload and its SEND in the outbox, like Send: it
// returns the id at once. The upload goes on in the background at the
// server's announced file rate, interleaved with chat frames (at most 3
// uploads at once; the others wait in order); after a reconnect it
// resumes where the server has it (an UPLOAD begin frame), it does not
// start over. Uploading events report progress; Acked{ID: id} confirms
// the message. A refusal (too-big, quota, invalid, muted, forbidden)
// comes as RoomError{Room, Err, Unsent: []string{id}, Stays: true}; when
// the server no longer holds the uploaded file for the SEND (not-found)
// the client uploads it once more before giving up.
//
// SendFile fails at once for a room not joined, an empty file, a bad
// name, an over-long caption, a file over MaxUpload (when known), or a
// server without files (ErrUnsupported).
func (c *Client) SendFile(room string, a Attachment) (id string, err error) {
	name, err := fileName(a.Name)
	switch {
	case err != nil:
		return "", err
	case a.Content == nil:
		return "", errors.New("the attachment has no content")
	case a.Size <= 0:
		return "", fmt.Errorf("%s is empty", name)
	}
	if limit := c.maxUpload.Load(); limit > 0 && a.Size > limit {
		return "", fmt.Errorf("%s is %s; the server takes files up to %s", name, FormatSize(a.Size), FormatSize(limit))
	}
	if a.Caption != "" {
		if err := c.checkText(a.Caption); err != nil {
			return "", err
		}
	}
	id = string(randomBytes(16))
	key := c.key(room)
	o := &outgoing{room: key, id: id, text: a.Caption, reply: a.Reply,
		up: &upload{name: name, size: a.Size, content: a.Content}}
	if e := c.do(func(l *loop) {
		if l.welcome != nil && !l.files() {
			err = errNoFiles
			return
		}
		err = l.queue(o)
	}); e != nil {
		return "", e
	}
	return id, err
}

// fileName checks a file's name and cuts off its directories.
func fileName(name string) (string, error) {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	switch {
	case name == "" || name == "." || name == "..":
		return "", errors.New("the file has no name")
	case !utf8.ValidString(name):
		return "", errors.New("the file name is not valid UTF-8")
	case len(name) > maxFileName:
		return "", fmt.Errorf("the file name is %d bytes; at most %d", len(name), maxFileName)
	}
	return name, nil
}

// FormatSize writes a size in bytes as people read it: B, kB, MB, GB
// (powers of 1000), with one decimal above bytes: 1.2 MB.
func FormatSize(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, unit := range []string{"kB", "MB", "GB"} {
		f /= 1000
		if f < 999.95 {
			return fmt.Sprintf("%.1f %s", f, unit)
		}
	}
	return fmt.Sprintf("%.1f TB", f/1000)
}

// uploadFrame is the UPLOAD of o at offset with data; no data begins or
// resumes the upload.
func (o *outgoing) uploadFrame(offset int64, data []byte) []byte {
	return protocol.Encode(&protocol.Upload{Room: o.room, ID: o.id, Name: o.up.name, Size: uint64(o.up.size),
		Offset: uint64(offset), Data: data})
}

// uploading reports whether o's upload runs on the current connection.
func (l *loop) uploading(o *outgoing) bool {
	return o.up != nil && o.up.fileID == "" && l.conn != nil && o.up.gen == l.conn.gen
}

// startUploads begins (or resumes) the outbox's uploads whose room is
// joined, in order, while fewer than maxUploads run.
func (l *loop) startUploads() {
	if l.conn == nil || l.conn.flushed || !l.files() {
		return
	}
	running := 0
	for _, o := range l.outbox {
		if l.uploading(o) {
			running++
		}
	}
	for _, o := range l.outbox {
		if running >= maxUploads {
			return
		}
		if o.up == nil || o.up.fileID != "" || o.up.gen == l.conn.gen {
			continue
		}
		if r := l.rooms[o.room]; r == nil || r.state != roomJoined {
			continue
		}
		o.up.gen, o.up.begun, o.up.next = l.conn.gen, false, 0
		running++
		l.writeNow(o.uploadFrame(0, nil))
	}
}

// onUploaded follows an upload: the answer to its begin frame says where
// to go on from, later ones confirm progress, and the last one carries
// the stored file, which the entry's SEND then carries.
func (l *loop) onUploaded(m *protocol.Uploaded) {
	i := slices.IndexFunc(l.outbox, func(o *outgoing) bool { return o.up != nil && o.id == m.ID && o.room == m.Room })
	if i < 0 {
		return // given up meanwhile
	}
	o := l.outbox[i]
	up := o.up
	if !l.uploading(o) {
		return
	}
	received := int64(min(m.Received, uint64(up.size)))
	now := time.Now()
	if m.File != nil {
		up.fileID, up.confirmed = m.File.ID, up.size
		up.lastEvent = now
		l.c.events.push(Uploading{Room: o.room, ID: o.id, Sent: up.size, Size: up.size, Done: true})
		// The SEND goes on the wire now, after others sent meanwhile: the
		// outbox is in the order of the wire (refusals of muted SENDs are
		// placed by it).
		l.outbox = append(slices.Delete(l.outbox, i, i+1), o)
		l.writeSend(o)
		l.startUploads()
		return
	}
	if !up.begun {
		// The answer to the begin frame: go on from what the server has,
		// whatever was sent before.
		up.begun, up.next, up.confirmed, up.rewound, up.same = true, received, received, -1, 0
		up.lastEvent = now
		l.c.events.push(Uploading{Room: o.room, ID: o.id, Sent: received, Size: up.size})
		l.pump()
		return
	}
	if received == up.confirmed {
		up.same++
	} else {
		up.same = 0
	}
	switch {
	case received == up.confirmed && received < up.next && received != up.rewound && (up.same >= stuckAnswers || up.next >= up.size):
		// The same answer again and again: not progress (which moves on
		// by about a MiB) but the answers to chunks at offsets the server
		// does not have: it lost one, and stored nothing past received.
		// Go on from there; the answers to the chunks sent before this
		// say the same, and are ignored (rewound). (While the server's
		// count still moves, the answers come from a lost connection's
		// chunks being stored late: this connection's stream, behind
		// them, meets the server's offset by itself.)
		up.next, up.rewound, up.same = received, received, 0
		l.pump()
		return
	case received <= up.confirmed:
		return
	}
	up.confirmed = received
	if received > up.next {
		// The server has more than this connection sent: in a cluster,
		// the node of the lost connection went on storing what it had
		// read after the begin frame here was answered.
		up.next = received
		l.pump()
	}
	if now.Sub(up.lastEvent) >= uploadEvery {
		up.lastEvent = now
		l.c.events.push(Uploading{Room: o.room, ID: o.id, Sent: received, Size: up.size})
	}
}

// chunkSize is the most data an UPLOAD of o carries in a frame the
// server takes (WELCOME's MaxFrame).
func (l *loop) chunkSize(o *outgoing) int {
	maxFrame := min(l.welcome.MaxFrame, protocol.MaxFrame)
	if maxFrame == 0 {
		maxFrame = 16 << 10
	}
	// The frame without data, plus the data's length (a varint of at most
	// 3 bytes below 2 MiB), plus the length prefix counted in Encode.
	head := len(o.uploadFrame(o.up.size, nil)) + 3
	return max(1, int(maxFrame)-head)
}

// pumpUploads sends the chunks of running uploads, one upload after the
// other, while the file pacer has bytes and the writer's queue is short.
func (l *loop) pumpUploads(now time.Time) {
	if l.conn == nil || l.conn.flushed {
		return
	}
	for {
		sent := false
		for _, o := range l.outbox {
			if !l.uploading(o) || !o.up.begun || o.up.next >= o.up.size {
				continue
			}
			if r := l.rooms[o.room]; r == nil || r.state != roomJoined {
				continue // on its way out: no chunk may follow the LEAVE
			}
			if len(l.conn.out) >= chunkQueue {
				return // the writer's next write wakes pump
			}
			n := int(min(int64(l.chunkSize(o)), o.up.size-o.up.next))
			if wait := l.filePace.take(n, now); wait > 0 {
				if l.fileT == nil {
					l.fileT = time.NewTimer(wait)
					l.fileC = l.fileT.C
				}
				return
			}
			data := make([]byte, n)
			got, err := o.up.content.ReadAt(data, o.up.next)
			switch {
			case got == n:
				err = nil // a ReaderAt may say EOF with the last bytes
			case err == nil || errors.Is(err, io.EOF):
				// Truncated since it was given: never send the rest as zeros.
				err = fmt.Errorf("it is shorter than its %d bytes now (changed while it was being sent)", o.up.size)
			}
			if err != nil {
				l.giveUp(o, protocol.NewError(protocol.CodeInvalid, o.room, fmt.Sprintf("reading %s: %v", o.up.name, err)))
				return // the outbox changed
			}
			l.writeNow(o.uploadFrame(o.up.next, data))
			o.up.next += int64(n)
			sent = true
		}
		if !sent {
			return
		}
	}
}

// giveUp drops o from the outbox with a RoomError that names it.
func (l *loop) giveUp(o *outgoing, e *protocol.Error) {
	i := slices.Index(l.outbox, o)
	if i < 0 {
		return
	}
	l.unwire(o)
	l.outbox = slices.Delete(l.outbox, i, i+1)
	l.c.events.push(RoomError{Room: o.room, Err: e, Unsent: []string{o.id}, Stays: true})
	l.checkDrained()
	l.startUploads()
	l.pump()
}

// reupload starts o's upload over when the server refused its SEND with
// not-found (it no longer holds the file: the hold expired, or the
// content was collected): once; it reports whether it did.
func (l *loop) reupload(o *outgoing, e *protocol.Error) bool {
	if o.up == nil || e.Code != protocol.CodeNotFound {
		return false
	}
	if o.up.fileID == "" {
		// A chunk of an upload the server does not know (it forgot it):
		// begin again. The refusals of the chunks that were on their way
		// come before the begin frame's answer and change nothing.
		switch {
		case !l.uploading(o):
			return true // a chunk of an earlier connection
		case !o.up.begun:
			return true // begun again already
		case o.up.restarts >= maxRestarts:
			return false
		}
		o.up.restarts++
		o.up.begun, o.up.next = false, 0
		l.writeNow(o.uploadFrame(0, nil))
		return true
	}
	if o.up.retried || !fileRefused(o, e) {
		return false
	}
	l.unwire(o)
	o.up.retried, o.up.fileID, o.up.gen, o.up.begun, o.up.next, o.up.confirmed = true, "", 0, false, 0, 0
	l.startUploads()
	return true
}

// fileRefused reports whether the not-found refusal e of o's SEND is of
// its file, not of its reply target (refused with not-found too). A SEND
// without a reply has only its file to be not found: whatever the text.
// One with a reply is taken for the file's only when the text speaks of
// an upload (the server's words; section 4 gives no code of its own):
// the robust side, as a wording that changes gives the message up with
// the server's sentence rather than uploading the file again for a reply
// target that will never exist.
func fileRefused(o *outgoing, e *protocol.Error) bool {
	if o.reply == 0 {
		return true
	}
	text := strings.ReplaceAll(strings.ToLower(e.Text), strings.ToLower(o.room), "") // a room "uploads"
	return strings.Contains(text, "upload")
}

// dropNoFiles gives up the uploads queued for a server that turns out
// not to take files.
func (l *loop) dropNoFiles() {
	if l.files() {
		return
	}
	dropped := map[string][]string{}
	l.outbox = slices.DeleteFunc(l.outbox, func(o *outgoing) bool {
		if o.up != nil {
			dropped[o.room] = append(dropped[o.room], o.id)
			return true
		}
		return false
	})
	for room, ids := range dropped {
		l.c.events.push(RoomError{Room: room, Unsent: ids, Stays: true, Err: protocol.NewError(protocol.CodeInvalid, room,
			"the server does not take files (it is older than this client, or files are turned off)")})
	}
	l.checkDrained()
}

// filePacer is a byte bucket that keeps uploads within the server's
// announced file rate, with a margin, and with a small burst so that
// chunks never pile up in front of chat frames.
type filePacer struct {
	rate   float64 // bytes per second; 0: no limit
	burst  float64
	tokens float64
	last   time.Time
}

// newFilePacer returns the file pacer of a new connection.
func newFilePacer(lim protocol.Limits, now time.Time) filePacer {
	if lim.FileBytesPerSec == 0 {
		return filePacer{}
	}
	rate := float64(lim.FileBytesPerSec) * 0.9
	burst := min(64<<10, rate/4)
	return filePacer{rate: rate, burst: burst, tokens: burst, last: now}
}

// take spends n bytes if the bucket has them and returns 0; otherwise it
// returns how long until it does. A chunk larger than the burst goes
// once the bucket is full.
func (p *filePacer) take(n int, now time.Time) time.Duration {
	if p.rate == 0 {
		return 0
	}
	if now.After(p.last) {
		p.tokens = min(p.burst, p.tokens+now.Sub(p.last).Seconds()*p.rate)
		p.last = now
	}
	need := min(float64(n), p.burst)
	if p.tokens >= need {
		p.tokens -= float64(n)
		return 0
	}
	// Rounded up: a wait of 0 would mean the bytes were taken.
	return time.Duration(math.Ceil((need - p.tokens) / p.rate * float64(time.Second)))
}

// spend counts n bytes that came the other way (PART data: the server's
// budget covers both), so that uploads make room for downloads.
func (p *filePacer) spend(n int, now time.Time) {
	if p.rate == 0 {
		return
	}
	p.take(0, now)                               // refill up to now
	p.tokens = max(p.tokens-float64(n), -p.rate) // a second's worth at most
}

// fetchReq is a FETCH of a Download, waiting to be sent or answered.
type fetchReq struct {
	room, file     string
	offset, length uint64
	gen            int              // the connection it was sent on; 0: not sent
	reply          chan fetchResult // buffered for every request of its Download
}

type fetchResult struct {
	req  *fetchReq
	part *protocol.Part
	err  error
}

// fetch queues req and sends it if it can go now.
func (l *loop) fetch(req *fetchReq) error {
	if l.welcome != nil && !l.files() {
		return errNoFiles
	}
	if l.welcome != nil && uint64(len(req.room)) > l.welcome.MaxRoom && !protocol.IsDM(req.room) {
		return fmt.Errorf("the room name is %d bytes; the server allows %d", len(req.room), l.welcome.MaxRoom)
	}
	l.fetches = append(l.fetches, req)
	l.sendFetches()
	return nil
}

// sendFetches sends the FETCHes not sent on the current connection whose
// room is in scope: joined, or (for a room not ours, such as a direct
// room of the name) once the connection is identified.
func (l *loop) sendFetches() {
	if l.conn == nil || l.conn.flushed || !l.files() {
		return
	}
	for _, req := range l.fetches {
		if req.gen == l.conn.gen {
			continue
		}
		if r := l.rooms[req.room]; r != nil && r.state != roomJoined || r == nil && l.identifying {
			continue
		}
		if len(l.conn.out) >= outCap-outReserve {
			return // pump calls again when the writer has room
		}
		req.gen = l.conn.gen
		l.writeNow(protocol.Encode(&protocol.Fetch{Room: req.room, File: req.file, Offset: req.offset, Length: req.length}))
	}
}

// onPart answers the FETCH it is for.
func (l *loop) onPart(m *protocol.Part) {
	i := slices.IndexFunc(l.fetches, func(r *fetchReq) bool {
		return r.gen == l.conn.gen && r.room == m.Room && r.file == m.File && r.offset == m.Offset
	})
	if i < 0 {
		return // cancelled
	}
	req := l.fetches[i]
	l.fetches = slices.Delete(l.fetches, i, i+1)
	l.filePace.spend(len(m.Data), time.Now())
	req.reply <- fetchResult{req: req, part: m}
}

// fetchRefused reports whether e refuses a FETCH (ERROR with the room
// and ID = the file's id), and if so hands it to its Download.
func (l *loop) fetchRefused(e *protocol.Error) bool {
	if e.ID == "" || l.conn == nil {
		return false
	}
	i := slices.IndexFunc(l.fetches, func(r *fetchReq) bool {
		return r.gen == l.conn.gen && r.room == e.Room && r.file == e.ID
	})
	if i < 0 {
		return false
	}
	req := l.fetches[i]
	l.fetches = slices.Delete(l.fetches, i, i+1)
	req.reply <- fetchResult{req: req, err: e}
	return true
}

// cancelFetches forgets the requests of a Download that ended.
func (l *loop) cancelFetches(reqs []*fetchReq) {
	l.fetches = slices.DeleteFunc(l.fetches, func(r *fetchReq) bool { return slices.Contains(reqs, r) })
}

// Download writes the file fileID of a message of room to w, FETCHing
// protocol.MaxPart bytes at a time with 4 FETCHes in flight, calling
// progress (if not nil) with the bytes written and the file's size after
// each part; it returns the file's MIME type (as the server sniffed it).
// fileID is a File.ID or File.Thumb. The room must be joined, or be a
// direct-message room of our name. A connection lost meanwhile does not
// end it: the parts not answered are asked again on the next connection.
// It ends with ctx's error when ctx ends, ErrUnsupported for a server
// without files, and the server's refusal as a *protocol.Error:
// forbidden (a room we may not read) or not-found (no message of the
// room carries that file).
func (c *Client) Download(ctx context.Context, room, fileID string, w io.Writer, progress func(got, size int64)) (mime string, err error) {
	if fileID == "" || len(fileID) > 128 || !utf8.ValidString(fileID) {
		return "", fmt.Errorf("%q is not a file id", fileID)
	}
	key, err := c.RoomKey(room)
	if err != nil {
		return "", err
	}
	d := &download{c: c, room: key, file: fileID, reply: make(chan fetchResult, fetchWindow+1)}
	defer d.cancel()
	return d.run(ctx, w, progress)
}

// download is one Download's state, on its caller's goroutine.
type download struct {
	c          *Client
	room, file string
	reply      chan fetchResult
	inflight   []*fetchReq
}

func (d *download) ask(offset, length uint64) error {
	req := &fetchReq{room: d.room, file: d.file, offset: offset, length: length, reply: d.reply}
	var err error
	if e := d.c.do(func(l *loop) { err = l.fetch(req) }); e != nil {
		return e
	}
	if err == nil {
		d.inflight = append(d.inflight, req)
	}
	return err
}

func (d *download) cancel() {
	if len(d.inflight) > 0 {
		_ = d.c.do(func(l *loop) { l.cancelFetches(d.inflight) })
	}
}

// wait returns the next answer.
func (d *download) wait(ctx context.Context) (fetchResult, error) {
	select {
	case r := <-d.reply:
		d.inflight = slices.DeleteFunc(d.inflight, func(q *fetchReq) bool { return q == r.req })
		return r, r.err
	case <-ctx.Done():
		return fetchResult{}, ctx.Err()
	case <-d.c.done:
		return fetchResult{}, ErrClosed
	}
}

func (d *download) run(ctx context.Context, w io.Writer, progress func(got, size int64)) (string, error) {
	if err := d.ask(0, protocol.MaxPart); err != nil {
		return "", err
	}
	var (
		size, next, written uint64
		mime                string
		known               bool
		parts               = map[uint64][]byte{} // answered ahead of written, by offset
	)
	for {
		r, err := d.wait(ctx)
		if err != nil {
			return "", err
		}
		p := r.part
		if !known {
			size, mime, known = p.Size, p.MIME, true
			next = r.req.length
		}
		switch {
		case p.Size != size:
			return "", fmt.Errorf("the server sent parts of %s with two sizes (%d and %d bytes)", d.file, size, p.Size)
		case uint64(len(p.Data)) > r.req.length:
			return "", fmt.Errorf("the server sent %d bytes of %s for %d asked", len(p.Data), d.file, r.req.length)
		case len(p.Data) == 0 && p.Offset < size:
			return "", fmt.Errorf("the server sent an empty part of %s at %d of %d bytes", d.file, p.Offset, size)
		}
		end := min(p.Offset+r.req.length, size)
		if got := p.Offset + uint64(len(p.Data)); got < end {
			// A short part: ask for the rest of it.
			if err := d.ask(got, end-got); err != nil {
				return "", err
			}
		}
		if len(p.Data) > 0 {
			parts[p.Offset] = p.Data
		}
		for data, ok := parts[written]; ok; data, ok = parts[written] {
			delete(parts, written)
			if _, err := w.Write(data); err != nil {
				return "", err
			}
			written += uint64(len(data))
			if progress != nil {
				progress(int64(written), int64(size))
			}
		}
		if written >= size {
			if progress != nil && size == 0 {
				progress(0, 0)
			}
			return mime, nil
		}
		for len(d.inflight) < fetchWindow && next < size {
			n := min(uint64(protocol.MaxPart), size-next)
			if err := d.ask(next, n); err != nil {
				return "", err
			}
			next += n
		}
	}
}

// FetchFile returns the whole file fileID of a message of room, of at
// most max bytes (for previews and images); progress, if not nil, is
// called as Download's is. See Download.
func (c *Client) FetchFile(ctx context.Context, room, fileID string, max int64, progress func(got, size int64)) (data []byte, mime string, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	tooBig := errors.New("too big")
	var buf bytes.Buffer
	var size int64
	mime, err = c.Download(ctx, room, fileID, &buf, func(got, n int64) {
		size = n
		if n > max {
			cancel(tooBig)
			return
		}
		if progress != nil {
			progress(got, n)
		}
	})
	if errors.Is(context.Cause(ctx), tooBig) {
		return nil, "", fmt.Errorf("the file is %s; at most %s wanted", FormatSize(size), FormatSize(max))
	}
	if err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mime, nil
}
