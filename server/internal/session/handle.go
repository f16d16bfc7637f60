package session

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"chat/protocol"
	"chat/server/internal/limit"
)

// throttle applies the message rate limit before msg is handled: it waits
// while the client is over its rate, and ends the session when the client
// has been over it for FloodAfter. It reports whether to go on.
func (s *Session) throttle(msg protocol.Message) bool {
	if !s.ready.Load() {
		return true
	}
	// File frames spend the file budget, whatever the message rate: each
	// at least a full frame (a begin or a 1-byte FETCH still costs the
	// store a transaction or a read). A begin frame (no data) is also a
	// message: each one is a write transaction and a usage sum, so a loop
	// of them goes at the message rate, not at MaxFrame bytes' worth.
	switch m := msg.(type) {
	case *protocol.Pong:
		return true
	case *protocol.Upload:
		if !s.fileBudget(max(len(m.Data), s.cfg.MaxFrame)) {
			return false
		}
		if len(m.Data) > 0 {
			return true
		}
	case *protocol.Fetch:
		n := m.Length
		if n == 0 || n > protocol.MaxPart {
			n = protocol.MaxPart
		}
		return s.fileBudget(max(int(n), s.cfg.MaxFrame))
	}
	if s.cfg.MsgRate <= 0 {
		return true
	}
	now := time.Now()
	if s.bucket == nil {
		s.bucket = limit.NewBucket(s.cfg.MsgRate, s.cfg.MsgBurst, now)
	}
	wait := s.bucket.Take(now)
	if wait == 0 {
		s.limitedSince = time.Time{}
		return true
	}
	if s.limitedSince.IsZero() {
		s.limitedSince = now
		s.mgr.LimitHit(LimitMessageRate, s.t.RemoteAddr(), fmt.Sprintf("over %g frames/s: slowing down", s.cfg.MsgRate))
	}
	if now.Sub(s.limitedSince) >= s.cfg.FloodAfter {
		s.mgr.LimitHit(LimitFlood, s.t.RemoteAddr(), fmt.Sprintf("over %g frames/s for %v: disconnected", s.cfg.MsgRate, s.cfg.FloodAfter))
		s.protocolError(protocol.NewError(protocol.CodeRateLimited, "",
			fmt.Sprintf("more than %g messages a second for %v; wait before reconnecting", s.cfg.MsgRate, s.cfg.FloodAfter)))
		return false
	}
	// Not reading meanwhile also stops the client's socket: it slows down
	// whether or not it understands why.
	time.Sleep(wait)
	return !s.isClosing()
}

// fileBudget keeps the connection to its file rate: UPLOAD and FETCH do
// not count against the message rate (a file is many frames) but spend
// their bytes from this budget, and wait while it is spent. Waiting, not
// refusing: the client reads the announced rate and paces itself, and
// one that does not is only slowed down. It reports whether to go on.
func (s *Session) fileBudget(n int) bool {
	now := time.Now()
	if s.files == nil {
		s.files = newByteBudget(s.cfg.FileRate, float64(s.cfg.FileBurst), now)
	}
	if wait := s.files.take(float64(n), now); wait > 0 {
		time.Sleep(wait)
		return !s.isClosing()
	}
	return true
}

// byteBudget is a token bucket of bytes: burst at most, refilled at rate
// a second. Unlike limit.Bucket it spends many tokens at once. Reader
// only.
type byteBudget struct {
	rate, burst, tokens float64
	last                time.Time
}

func newByteBudget(rate, burst float64, now time.Time) *byteBudget {
	return &byteBudget{rate: rate, burst: burst, tokens: burst, last: now}
}

// take spends n bytes and returns how long to wait before acting.
func (b *byteBudget) take(n float64, now time.Time) time.Duration {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// handle applies one frame. It returns an ERROR for the client, if any.
func (s *Session) handle(msg protocol.Message) *protocol.Error {
	if !s.ready.Load() {
		hello, ok := msg.(*protocol.Hello)
		if !ok {
			return protocol.NewError(protocol.CodeUnexpected, "", fmt.Sprintf("%v before HELLO", msg.Type()))
		}
		if hello.Version != protocol.Version {
			return protocol.NewError(protocol.CodeUnsupportedVersion, "",
				fmt.Sprintf("this server speaks protocol version %d, the client version %d: update the app", protocol.Version, hello.Version))
		}
		s.client = hello.Client
		s.ready.Store(true)
		s.timer.Reset(s.tickInterval()) // from the handshake deadline to keepalive
		s.Deliver(protocol.Encode(s.welcome()))
		return nil
	}
	switch m := msg.(type) {
	case *protocol.Join:
		return s.join(m)
	case *protocol.Send:
		return s.send(m)
	case *protocol.Change:
		return s.change(m)
	case *protocol.Upload:
		return s.upload(m)
	case *protocol.Fetch:
		return s.fetch(m)
	case *protocol.Typing:
		if len(m.Room) > s.maxRoom(m.Room) {
			return tooLong(s.errRoom(m.Room), "the room name", len(m.Room), s.maxRoom(m.Room))
		}
		return s.inRoom(m.Room, s.rooms.Typing(m.Room, m.Stopped))
	case *protocol.Search:
		return s.search(m)
	case *protocol.Leave:
		return s.inRoom(m.Room, s.rooms.Leave(m.Room))
	case *protocol.Identify:
		return s.identify(m)
	case *protocol.History:
		return s.inRoom(m.Room, s.rooms.History(m))
	case *protocol.Read:
		return s.inRoom(m.Room, s.rooms.Read(m.Room, m.Seq))
	case *protocol.List:
		// Never refused (spec section 7 has no refusal for LIST): a query
		// is measured by its key, which the rooms compare (a fullwidth
		// query is three times longer than the room name it matches), and
		// one longer than any room name matches nothing.
		return s.rooms.List(m.Query)
	case *protocol.Moderate:
		return s.moderate(m)
	case *protocol.Bye:
		s.Fail(nil)
	case *protocol.Ping:
		s.Deliver(protocol.Encode(&protocol.Pong{Nonce: m.Nonce}))
	case *protocol.Pong:
	case *protocol.Hello:
		return protocol.NewError(protocol.CodeUnexpected, "", "second HELLO")
	default:
		return protocol.NewError(protocol.CodeUnexpected, "", fmt.Sprintf("%v is sent by servers, not clients", msg.Type()))
	}
	return nil
}

func (s *Session) welcome() *protocol.Welcome {
	c := s.cfg
	w := &protocol.Welcome{
		Version: protocol.Version, Server: c.ServerName, Time: protocol.Millis(time.Now()),
		MaxFrame: uint64(c.MaxFrame), MaxText: uint64(c.MaxText), MaxName: uint64(c.MaxName),
		MaxRoom: uint64(c.MaxRoom), MaxRooms: uint64(c.MaxRooms), History: uint64(c.History),
		PingMs: uint64(c.PingInterval.Milliseconds()), Flags: s.mgr.welcomeFlags(),
		Limits: protocol.Limits{
			SendIntervalMs:     sendInterval(c.MsgRate),
			SendBurst:          uint64(c.MsgBurst),
			FloodAfterMs:       uint64(c.FloodAfter.Milliseconds()),
			RetryAfterMs:       uint64(c.RetryAfter.Milliseconds()),
			QueueFrames:        uint64(c.QueueFrames),
			MaxListed:          uint64(c.MaxListed),
			PresenceBatchAbove: uint64(c.PresenceBatchAbove),
			IdleTimeoutMs:      uint64(c.IdleTimeout.Milliseconds()),
		},
	}
	if c.Files {
		w.Limits.FileBytesPerSec = uint64(c.FileRate)
		w.Limits.MaxUpload = uint64(c.MaxUpload)
	}
	return w
}

// sendInterval is the announced form of a rate: milliseconds per frame,
// rounded up so that a client keeping to it is never over the rate.
func sendInterval(perSecond float64) uint64 {
	if perSecond <= 0 {
		return 0
	}
	return uint64(math.Ceil(1000 / perSecond))
}

func (m *Manager) welcomeFlags() protocol.WelcomeFlags {
	flags := protocol.WelcomeInbox | protocol.WelcomeModeration | protocol.WelcomeMessages
	if m.cfg.Key != "" {
		flags |= protocol.WelcomeKeyRequired
	}
	if m.cfg.Files {
		flags |= protocol.WelcomeFiles
	}
	return flags
}

func tooLong(room, what string, n, limit int) *protocol.Error {
	return protocol.NewError(protocol.CodeTooLong, room, fmt.Sprintf("%s is %d bytes; the limit is %d", what, n, limit))
}

// errRoom is the room an ERROR about a request for room carries: its
// canonical name, as the hub's refusals and every other server frame
// carry it, so that a client finds the room by one key; a room name that
// is too long or breaks the rules has no canonical form and is echoed as
// sent.
func (s *Session) errRoom(room string) string {
	if len(room) > s.maxRoom(room) || protocol.CheckName(room) != nil {
		return room
	}
	k := protocol.Key(room)
	if strings.HasPrefix(k, protocol.DMPrefix) {
		a, b, ok := protocol.ParseDM(k)
		if !ok {
			return room
		}
		return protocol.DMRoom(a, b)
	}
	return k
}

// inRoom makes a refusal of a request for room, from the rooms, carry
// the room as errRoom gives it: the canonical name, which the rooms use
// too, or for a room name that has none (too long, against the rules) the
// name as sent.
func (s *Session) inRoom(room string, e *protocol.Error) *protocol.Error {
	if e != nil && e.Room != "" {
		e.Room = s.errRoom(room)
	}
	return e
}

// maxRoom is the longest room name allowed for room: a direct-message
// room holds two names and may be longer than WELCOME's max room.
func (s *Session) maxRoom(room string) int {
	if len(room) > s.cfg.MaxRoom && protocol.IsDM(room) {
		return max(s.cfg.MaxRoom, protocol.MaxDMRoom(s.cfg.MaxName))
	}
	return s.cfg.MaxRoom
}

// checkKey checks the server key of a JOIN or IDENTIFY. A key sent to a
// server that needs none is ignored, not refused: a client keeps working
// when its server drops the key.
func (s *Session) checkKey(key, room, what string) *protocol.Error {
	if s.cfg.Key == "" {
		return nil
	}
	// Hashes make the comparison constant-time whatever the lengths.
	got := sha256.Sum256([]byte(key))
	createKey := s.mgr.createHash != nil && subtle.ConstantTimeCompare(got[:], s.mgr.createHash[:]) == 1
	if subtle.ConstantTimeCompare(got[:], s.mgr.keyHash[:]) != 1 && !createKey {
		s.mgr.LimitHit(LimitKey, s.t.RemoteAddr(), what+" without the right server key")
		return protocol.NewError(protocol.CodeUnauthorized, room, "this server needs its access key: ask its operator for it")
	}
	return nil
}

func (s *Session) join(j *protocol.Join) *protocol.Error {
	room := s.errRoom(j.Room)
	switch {
	case len(j.Room) > s.maxRoom(j.Room):
		return tooLong(room, "the room name", len(j.Room), s.maxRoom(j.Room))
	case len(j.Name) > s.cfg.MaxName:
		return tooLong(room, "the name", len(j.Name), s.cfg.MaxName)
	}
	if e := s.checkKey(j.Key, room, "JOIN"); e != nil {
		return e
	}
	// Empty names and rooms are refused here (CheckName), not as too-long:
	// a person typed nothing, which is worth a non-closing refusal.
	if err := protocol.CheckRoom(j.Room); err != nil {
		return protocol.NewError(protocol.CodeInvalidRoom, room, "the room name "+err.Error())
	}
	if err := protocol.CheckMemberName(j.Name); err != nil {
		return protocol.NewError(protocol.CodeInvalidName, room, "the name "+err.Error())
	}
	return s.rooms.Join(j)
}

func (s *Session) identify(id *protocol.Identify) *protocol.Error {
	switch {
	case s.rooms.Identified():
		return protocol.NewError(protocol.CodeUnexpected, "", "second IDENTIFY: a connection identifies once")
	case len(id.Name) > s.cfg.MaxName:
		return tooLong("", "the name", len(id.Name), s.cfg.MaxName)
	}
	if e := s.checkKey(id.Key, "", "IDENTIFY"); e != nil {
		return e
	}
	if err := protocol.CheckMemberName(id.Name); err != nil {
		return protocol.NewError(protocol.CodeInvalidName, "", "the name "+err.Error())
	}
	return s.rooms.Identify(id)
}

func (s *Session) send(m *protocol.Send) *protocol.Error {
	switch {
	case len(m.ID) == 0 || len(m.ID) > protocol.MaxIDLen:
		return protocol.NewError(protocol.CodeTooLong, s.errRoom(m.Room), fmt.Sprintf("a message id must be 1 to %d bytes, not %d", protocol.MaxIDLen, len(m.ID)))
	case len(m.Text) == 0 && m.File == "":
		return protocol.NewError(protocol.CodeTooLong, s.errRoom(m.Room), "the message is empty")
	case len(m.Text) > s.cfg.MaxText:
		return tooLong(s.errRoom(m.Room), "the message", len(m.Text), s.cfg.MaxText)
	case len(m.File) > maxFileID:
		e := tooLong(s.errRoom(m.Room), "the file id", len(m.File), maxFileID)
		e.ID = m.ID
		return e
	}
	if m.File != "" {
		return s.published(m.Room, s.rooms.SendFile(m.Room, m.ID, m.Text, m.Reply, m.File))
	}
	return s.published(m.Room, s.rooms.SendReply(m.Room, m.ID, m.Text, m.Reply))
}

// maxFileID is the longest file id: a SHA-256 in hex is 64 characters.
const maxFileID = 64

// maxFileName is the longest file name an UPLOAD may give, in bytes.
const maxFileName = 255

// upload checks an UPLOAD's lengths (its data is within the frame, which
// MaxFrame bounds) before the rooms store it. The name is kept as given
// here; the store cleans it to a base name.
func (s *Session) upload(m *protocol.Upload) *protocol.Error {
	room := s.errRoom(m.Room)
	refuse := func(e *protocol.Error) *protocol.Error {
		e.ID = m.ID
		return e
	}
	switch {
	case len(m.Room) > s.maxRoom(m.Room):
		return refuse(tooLong(room, "the room name", len(m.Room), s.maxRoom(m.Room)))
	case len(m.ID) == 0 || len(m.ID) > protocol.MaxIDLen:
		return refuse(protocol.NewError(protocol.CodeTooLong, room, fmt.Sprintf("an upload id must be 1 to %d bytes, not %d", protocol.MaxIDLen, len(m.ID))))
	case len(m.Name) > maxFileName:
		return refuse(tooLong(room, "the file name", len(m.Name), maxFileName))
	case !s.cfg.Files:
		return refuse(protocol.NewError(protocol.CodeUnexpected, room, "this server takes no files"))
	}
	return s.inRoom(m.Room, s.rooms.Upload(m))
}

// fetch checks a FETCH's lengths before the rooms answer it.
func (s *Session) fetch(m *protocol.Fetch) *protocol.Error {
	room := s.errRoom(m.Room)
	refuse := func(e *protocol.Error) *protocol.Error {
		e.ID = m.File
		return e
	}
	switch {
	case len(m.Room) > s.maxRoom(m.Room):
		return refuse(tooLong(room, "the room name", len(m.Room), s.maxRoom(m.Room)))
	case len(m.File) > maxFileID:
		e := tooLong(room, "the file id", len(m.File), maxFileID)
		e.ID = m.File[:maxFileID]
		return e
	case !s.cfg.Files:
		return refuse(protocol.NewError(protocol.CodeUnexpected, room, "this server takes no files"))
	}
	return s.inRoom(m.Room, s.rooms.Fetch(m))
}

// published is the answer to a SEND or CHANGE the rooms took or refused.
func (s *Session) published(room string, err error) *protocol.Error {
	var e *protocol.Error
	if errors.As(err, &e) {
		return s.inRoom(room, e)
	}
	// Any other error means shutdown: not stored, not acknowledged; the
	// client re-sends after it reconnects.
	return nil
}

// change checks a CHANGE's lengths as SEND's: an id of 1 to 64 bytes, an
// edit's text up to max text (an empty one is the rooms' refusal, with
// the id: invalid), a reaction no longer than a text.
func (s *Session) change(m *protocol.Change) *protocol.Error {
	switch {
	case len(m.ID) == 0 || len(m.ID) > protocol.MaxIDLen:
		return protocol.NewError(protocol.CodeTooLong, s.errRoom(m.Room), fmt.Sprintf("a change id must be 1 to %d bytes, not %d", protocol.MaxIDLen, len(m.ID)))
	case len(m.Text) > s.cfg.MaxText:
		return tooLong(s.errRoom(m.Room), "the text", len(m.Text), s.cfg.MaxText)
	}
	return s.published(m.Room, s.rooms.Change(m))
}

// search checks a SEARCH's lengths and keeps the connection to its search
// rate (waiting, like throttle, when it is over it) before the rooms run
// it.
func (s *Session) search(m *protocol.Search) *protocol.Error {
	switch {
	case len(m.Room) > s.maxRoom(m.Room):
		return tooLong(s.errRoom(m.Room), "the room name", len(m.Room), s.maxRoom(m.Room))
	case len(m.Query) > s.cfg.MaxText:
		return tooLong(s.errRoom(m.Room), "the search", len(m.Query), s.cfg.MaxText)
	}
	now := time.Now()
	if s.searches == nil {
		s.searches = limit.NewBucket(s.cfg.SearchRate, s.cfg.SearchBurst, now)
	}
	if wait := s.searches.Take(now); wait > 0 {
		time.Sleep(wait)
		if s.isClosing() {
			return nil
		}
	}
	return s.inRoom(m.Room, s.rooms.Search(m))
}

// maxTarget is the longest MODERATE target: a name, or for unban an
// address (the longest IPv6 text with a zone is well below it).
func (s *Session) maxTarget() int { return max(s.cfg.MaxName, 64) }

func (s *Session) moderate(m *protocol.Moderate) *protocol.Error {
	room := s.errRoom(m.Room)
	switch {
	case len(m.Room) > s.maxRoom(m.Room):
		return tooLong(room, "the room name", len(m.Room), s.maxRoom(m.Room))
	case len(m.Target) > s.maxTarget():
		return tooLong(room, "the target", len(m.Target), s.maxTarget())
	case len(m.Text) > s.cfg.MaxText:
		return tooLong(room, "the text", len(m.Text), s.cfg.MaxText)
	}
	return s.inRoom(m.Room, s.rooms.Moderate(m))
}
