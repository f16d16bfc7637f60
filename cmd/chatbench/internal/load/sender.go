package load

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"chat/cmd/chatbench/internal/wire"
	"chat/protocol"
)

// sender posts on a fixed schedule: message k is due at start + offset +
// k×interval, whatever happened to the messages before it (open loop).
// Its text carries the time the ticker handed it to the writer, so latency
// includes every wait after that (a socket the server does not read, the
// server's queues). The ticker's own delay behind the schedule (Go's timer
// granularity of about 1 ms, or a starved generator) is measured
// separately as lag, and too much of it invalidates the run.
//
// Three goroutines: the ticker appends SEND frames to pending; the writer
// writes whatever is pending, so a blocked socket never holds the ticker
// back; the reader takes ACKs, the sender's copies of the room's messages,
// and PINGs.
type sender struct {
	idx      int
	name     string
	room     string
	nonce    [8]byte // run id: message ids are nonce + k, unique across runs
	size     int
	conn     *wire.Conn
	trk      tracker
	start    time.Time // schedule origin, offset included
	interval time.Duration
	measure  time.Time // messages due before it are warm-up
	late     time.Duration

	mu      sync.Mutex
	pending []byte
	wake    chan struct{}

	sentAt    []atomic.Int64 // Unix ns each message k was handed to the writer
	sent      atomic.Uint64
	acked     atomic.Uint64
	maxAck    atomic.Uint64 // highest seq acknowledged
	lag       *Hist         // ticker only, until it returns
	lateSends uint64        // ticker only
	writeErr  error         // writer only

	// Reader only, read after it stops.
	ackLat    *Hist
	badAcks   uint64
	endReason string
	errs      lockedCounts
	readDone  chan struct{}
}

// newSender prepares a sender that will send at most capacity messages.
func newSender(idx int, room string, nonce [8]byte, size int, late time.Duration, capacity int) *sender {
	return &sender{idx: idx, name: fmt.Sprintf("s%04d", idx+1), room: room, nonce: nonce, size: size,
		late: late, lag: NewHist(), ackLat: NewHist(), wake: make(chan struct{}, 1), readDone: make(chan struct{}),
		sentAt: make([]atomic.Int64, capacity)}
}

// connect dials, says HELLO and joins the sender's room.
func (s *sender) connect(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := wire.Dial(ctx, addr, 16<<10)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	_, err = c.Handshake("chatbench")
	var j *protocol.Joined
	if err == nil {
		j, err = c.Join(s.room, s.name)
	}
	if !stop() {
		err = fmt.Errorf("sender %s: not joined within %v", s.name, timeout)
	}
	if err != nil {
		c.Close()
		return fmt.Errorf("sender %s: %w", s.name, err)
	}
	s.conn, s.trk.base = c, j.Head
	go s.read()
	return nil
}

// due is when message k is due.
func (s *sender) due(k uint64) time.Time { return s.start.Add(time.Duration(k) * s.interval) }

// run posts every message due before end, then flushes and returns.
func (s *sender) run(ctx context.Context, end time.Time) {
	writerDone := make(chan struct{})
	go s.writer(writerDone)
	defer func() { <-writerDone }()
	defer close(s.wake) // after the last append: the writer flushes and stops
	id := make([]byte, 16)
	copy(id, s.nonce[:])
	var text []byte
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for k := uint64(0); ; {
		next := s.due(k)
		if !next.Before(end) || k >= uint64(len(s.sentAt)) || ctx.Err() != nil {
			return
		}
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		now := time.Now()
		s.mu.Lock()
		for ; k < uint64(len(s.sentAt)); k++ {
			due := s.due(k)
			if due.After(now) || !due.Before(end) {
				break
			}
			lag := now.Sub(due)
			s.lag.Record(lag)
			if lag > s.late {
				s.lateSends++
			}
			s.sentAt[k].Store(now.UnixNano())
			binary.BigEndian.PutUint64(id[8:], k)
			text = wire.AppendText(text[:0], now.UnixNano(), due.Before(s.measure), s.name, k, s.size)
			s.pending = wire.AppendSend(s.pending, s.room, id, text)
			s.sent.Add(1)
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// writer writes pending frames until wake is closed, then flushes.
func (s *sender) writer(done chan struct{}) {
	defer close(done)
	var spare []byte
	for range s.wake {
		s.mu.Lock()
		buf := s.pending
		s.pending = spare[:0]
		s.mu.Unlock()
		if len(buf) > 0 && s.writeErr == nil {
			s.writeErr = s.conn.Write(buf, time.Now().Add(30*time.Second))
		}
		spare = buf
	}
	s.mu.Lock()
	buf := s.pending
	s.pending = nil
	s.mu.Unlock()
	if len(buf) > 0 && s.writeErr == nil {
		s.writeErr = s.conn.Write(buf, time.Now().Add(30*time.Second))
	}
}

// read handles the sender's incoming frames until the connection ends.
func (s *sender) read() {
	defer close(s.readDone)
	var ack wire.Ack
	var m wire.Message
	for {
		body, err := s.conn.ReadFrame()
		if err != nil {
			s.endReason = endReason(err)
			return
		}
		switch protocol.Type(body[0]) {
		case protocol.TypeAck:
			now := time.Now()
			if wire.ParseAck(body, &ack) != nil || len(ack.ID) != 16 || string(ack.ID[:8]) != string(s.nonce[:]) {
				s.badAcks++
				continue
			}
			k := binary.BigEndian.Uint64(ack.ID[8:])
			if k >= uint64(len(s.sentAt)) {
				s.badAcks++
				continue
			}
			s.acked.Add(1)
			if ack.Seq > s.maxAck.Load() {
				s.maxAck.Store(ack.Seq)
			}
			if !s.due(k).Before(s.measure) {
				s.ackLat.Record(now.Sub(time.Unix(0, s.sentAt[k].Load())))
			}
		case protocol.TypeMessage:
			if wire.ParseMessage(body, &m) == nil {
				s.trk.add(m.Seq)
			}
		case protocol.TypePing:
			if err := s.conn.Pong(body); err != nil {
				s.endReason = endReason(err)
				return
			}
		case protocol.TypeError:
			reason := "ERROR frame"
			if m, err := protocol.Decode(body); err == nil {
				reason = m.(*protocol.Error).Code.String()
			}
			s.errs.add(reason)
		}
	}
}
