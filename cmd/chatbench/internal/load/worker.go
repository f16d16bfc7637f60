package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"chat/cmd/chatbench/internal/procstat"
	"chat/cmd/chatbench/internal/wire"
	"chat/protocol"
)

// WorkerSpec is the share of receivers one worker runs.
type WorkerSpec struct {
	// Addrs are the servers: receiver i (global index) connects to
	// Addrs[i % len], so the receivers of every worker process together
	// are spread round-robin. All have the same transport.
	Addrs           []string      `json:"addrs"`
	Rooms           []string      `json:"rooms"` // receiver i joins Rooms[i % len]; none: HELLO only
	First           int           `json:"first"` // global index of the first receiver (names r00001…)
	Count           int           `json:"count"`
	JoinConcurrency int           `json:"join_concurrency"`
	JoinTimeout     time.Duration `json:"join_timeout"`
	ReadBuffer      int           `json:"read_buffer"`
	// Epoll: after JOINED, read TCP and WebSocket receivers from one
	// epoll loop instead of a goroutine each (Linux; ignored for TLS).
	Epoll bool `json:"epoll"`
}

// JoinReport is what a worker's join phase did.
type JoinReport struct {
	Attempted  int      `json:"attempted"`
	Joined     int      `json:"joined"`
	FirstDial  int64    `json:"first_dial"`  // Unix ns of the first connect
	LastJoined int64    `json:"last_joined"` // Unix ns of the last JOINED (or WELCOME without rooms)
	PerClient  *Hist    `json:"per_client"`  // connect to JOINED, per connection
	Failures   countMap `json:"failures,omitempty"`
	// JoinedPerAddr counts the joined receivers by server: entry k is
	// WorkerSpec.Addrs[k]'s.
	JoinedPerAddr []int   `json:"joined_per_addr,omitempty"`
	CPUSeconds    float64 `json:"cpu_seconds"` // this process, during the joins
}

// DrainReport says whether every receiver got everything.
type DrainReport struct {
	Complete bool          `json:"complete"` // every open receiver has every expected message
	Waited   time.Duration `json:"waited"`
}

// WorkerResult is a worker's final count.
type WorkerResult struct {
	Delivery    Delivery `json:"delivery"`
	Latency     *Hist    `json:"latency"`
	Presence    uint64   `json:"presence_frames"`
	Open        int      `json:"open"`             // receivers still connected at the end
	Ended       countMap `json:"ended,omitempty"`  // why receivers' connections ended early
	Errors      countMap `json:"errors,omitempty"` // ERROR frames received, by code
	CPU         float64  `json:"cpu_seconds"`      // during the measured window
	SysCPU      float64  `json:"sys_cpu_seconds"`  // of which in the kernel
	CPUTotal    float64  `json:"cpu_total_seconds"`
	MaxRSSKiB   int64    `json:"max_rss_kib"`
	Unparseable uint64   `json:"unparseable,omitempty"` // MESSAGEs whose text carries no send time
	Reader      string   `json:"reader"`                // "epoll" or "goroutine per connection"
	// ReaderLag is, per read, the time from epoll reporting the socket
	// ready to reading it (epoll reader only): delay the generator itself
	// added to the latency measured, a lower bound of it.
	ReaderLag *Hist `json:"reader_lag,omitempty"`
}

// Worker runs receivers in this process. Its methods are called in order:
// Join, Start, Drain, Collect.
type Worker struct {
	spec WorkerSpec
	rs   []*receiver
	lat  *shards
	wg   sync.WaitGroup // reader goroutines
	errs lockedCounts

	cpuFrom, cpuTo chan sample
	poll           *poller // nil: a goroutine per receiver
}

// receiver is one reading connection.
type receiver struct {
	idx    int // among all receivers of the run
	local  int // in this worker's rs
	name   string
	room   string
	node   int        // index of its server in WorkerSpec.Addrs
	conn   *wire.Conn // nil once detached to the poller
	trk    tracker
	joined bool
	dead   atomic.Bool // the connection ended before Collect: nothing more will arrive

	// With the poller: the socket and the bytes read but not yet handled.
	fd  int
	d   wire.Deframer
	buf []byte
	n   int

	// Written by the reader (goroutine or poller), read after it stops.
	presence    uint64
	unparseable uint64
	endReason   string
	msg         wire.Message // scratch
}

// NewWorker prepares a worker; nothing connects before Join.
func NewWorker(spec WorkerSpec) *Worker {
	w := &Worker{spec: spec, lat: newShards()}
	if spec.Epoll && len(spec.Addrs) > 0 && wire.Transport(spec.Addrs[0]) != "tls" { // the poller reads the socket itself: not TLS
		w.poll, _ = newPoller(w) // nil where epoll is not available: goroutines
	}
	w.rs = make([]*receiver, spec.Count)
	for i := range w.rs {
		g := spec.First + i
		r := &receiver{idx: g, local: i, fd: -1, name: fmt.Sprintf("r%05d", g+1), node: spread(g, max(len(spec.Addrs), 1))}
		if len(spec.Rooms) > 0 {
			r.room = spec.Rooms[g%len(spec.Rooms)]
		}
		w.rs[i] = r
	}
	return w
}

// Join connects every receiver, at most JoinConcurrency at a time, and
// returns when each has joined or failed. Joined receivers keep reading.
func (w *Worker) Join(ctx context.Context) (*JoinReport, error) {
	rep := &JoinReport{Attempted: len(w.rs), PerClient: NewHist(), JoinedPerAddr: make([]int, len(w.spec.Addrs))}
	if w.poll != nil {
		w.wg.Go(w.poll.run)
	}
	if before, err := procstat.Read(0); err == nil {
		defer func() {
			if after, err := procstat.Read(0); err == nil {
				rep.CPUSeconds = after.CPUSeconds - before.CPUSeconds
			}
		}()
	}
	var mu sync.Mutex
	sem := make(chan struct{}, max(w.spec.JoinConcurrency, 1))
	var joins sync.WaitGroup
	for _, r := range w.rs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		joins.Add(1)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			start := time.Now()
			err := w.connect(ctx, r)
			end := time.Now()
			<-sem
			mu.Lock()
			if rep.FirstDial == 0 || start.UnixNano() < rep.FirstDial {
				rep.FirstDial = start.UnixNano()
			}
			if err != nil {
				if rep.Failures == nil {
					rep.Failures = countMap{}
				}
				rep.Failures[failure(err)]++
			} else {
				rep.Joined++
				rep.JoinedPerAddr[r.node]++
				rep.LastJoined = max(rep.LastJoined, end.UnixNano())
				rep.PerClient.Record(end.Sub(start))
			}
			mu.Unlock()
			joins.Done()
			if err != nil {
				return
			}
			if w.poll != nil {
				if err := w.poll.add(r); err != nil {
					r.endReason = "epoll: " + err.Error()
				}
				return
			}
			w.read(r)
		}()
	}
	joins.Wait()
	return rep, nil
}

// failure condenses a connect error into a reason to count.
func failure(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return "error " + pe.Code.String()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:] // "dial tcp 127.0.0.1:7878: connect: connection refused" → "connection refused"
	}
	return s
}

// connect dials, says HELLO and joins, within JoinTimeout.
func (w *Worker) connect(ctx context.Context, r *receiver) error {
	ctx, cancel := context.WithTimeout(ctx, w.spec.JoinTimeout)
	defer cancel()
	c, err := wire.Dial(ctx, w.spec.Addrs[r.node], w.spec.ReadBuffer)
	if err != nil {
		return err
	}
	// The handshake reads block; closing the connection ends them at the deadline.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	_, err = c.Handshake("chatbench")
	if err == nil && r.room != "" {
		var j *protocol.Joined
		if j, err = c.Join(r.room, r.name); err == nil {
			r.trk.base = j.Head
		}
	}
	if !stop() {
		err = fmt.Errorf("timeout: not joined within %v", w.spec.JoinTimeout)
	}
	if err != nil {
		c.Close()
		return err
	}
	r.conn, r.joined = c, true
	return nil
}

// read handles a joined receiver's frames until its connection ends (the
// goroutine-per-connection reader).
func (w *Worker) read(r *receiver) {
	for {
		body, err := r.conn.ReadFrame()
		if err == nil {
			err = w.handle(r, body, time.Now())
		}
		if err != nil {
			r.endReason = endReason(err)
			r.dead.Store(true)
			return
		}
	}
}

// handle takes one frame that arrived at now. An error ends the receiver.
func (w *Worker) handle(r *receiver, body []byte, now time.Time) error {
	switch protocol.Type(body[0]) {
	case protocol.TypeMessage:
		if wire.ParseMessage(body, &r.msg) != nil {
			r.unparseable++
			return nil
		}
		if !r.trk.add(r.msg.Seq) {
			return nil
		}
		sent, warm, ok := wire.ParseText(r.msg.Text)
		switch {
		case !ok:
			r.unparseable++
		case !warm:
			w.lat.record(r.idx, now.Sub(time.Unix(0, sent)))
		}
	case protocol.TypePresence:
		r.presence++
	case protocol.TypePing:
		if r.conn != nil {
			return r.conn.Pong(body)
		}
		return w.poll.pong(r, body)
	case protocol.TypeError:
		reason := "ERROR frame"
		if m, err := protocol.Decode(body); err == nil {
			reason = m.(*protocol.Error).Code.String()
		}
		w.errs.add(reason)
	}
	return nil
}

// endReason names why a connection stopped being readable. Closing it
// ourselves is not a failure and gives "".
func endReason(err error) string {
	switch {
	case errors.Is(err, net.ErrClosed):
		return ""
	case errors.Is(err, io.EOF):
		return "closed by the server"
	}
	return failure(err)
}

// Start marks the measured window: the worker samples its own CPU time at
// from and to (Unix ns).
func (w *Worker) Start(from, to int64) {
	if w.poll != nil {
		w.poll.mu.Lock()
		w.poll.from = from
		w.poll.mu.Unlock()
	}
	w.cpuFrom = sampleAt(time.Unix(0, from), 0)
	w.cpuTo = sampleAt(time.Unix(0, to), 0)
}

// sample is a procstat reading or why there is none.
type sample struct {
	procstat.Sample
	err error
}

// sampleAt reads process pid at t, on a channel.
func sampleAt(t time.Time, pid int) chan sample {
	ch := make(chan sample, 1)
	time.AfterFunc(time.Until(t), func() {
		s, err := procstat.Read(pid)
		ch <- sample{s, err}
	})
	return ch
}

// machineSample is a reading of the machine's CPU times.
type machineSample struct {
	total  procstat.CPUTimes
	perCPU []procstat.CPUTimes
	err    error
}

// machineAt reads the machine's CPU times at t, on a channel.
func machineAt(t time.Time) chan machineSample {
	ch := make(chan machineSample, 1)
	time.AfterFunc(time.Until(t), func() {
		total, per, err := procstat.ReadCPUTimes()
		ch <- machineSample{total, per, err}
	})
	return ch
}

// Drain waits up to timeout for every joined receiver to have every live
// message up to heads[room], the room's last acknowledged sequence number.
func (w *Worker) Drain(ctx context.Context, heads map[string]uint64, timeout time.Duration) DrainReport {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		complete := true
		for _, r := range w.rs {
			if r.joined && !r.dead.Load() && r.trk.distinct.Load() < r.trk.expected(heads[r.room]) {
				complete = false
				break
			}
		}
		if complete || time.Now().After(deadline) || ctx.Err() != nil {
			return DrainReport{Complete: complete, Waited: time.Since(start)}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Collect closes every connection, waits for the readers to stop and
// counts deliveries against heads. The CPU window set by Start must have
// ended.
func (w *Worker) Collect(heads map[string]uint64) *WorkerResult {
	res := &WorkerResult{Reader: "goroutine per connection"}
	if w.poll != nil {
		res.Reader = "epoll"
	}
	if w.cpuFrom != nil {
		from, to := <-w.cpuFrom, <-w.cpuTo
		res.CPU = to.CPUSeconds - from.CPUSeconds
		res.SysCPU = to.SysSec - from.SysSec
	}
	if w.poll != nil {
		w.poll.close() // stops the loop and closes its sockets
	}
	for _, r := range w.rs {
		if r.joined && r.conn != nil {
			r.conn.Close()
		}
	}
	w.wg.Wait()
	ended := countMap{}
	for _, r := range w.rs {
		if !r.joined {
			continue
		}
		if r.endReason == "" {
			res.Open++
		} else {
			ended[r.endReason]++
		}
		if r.room != "" {
			res.Delivery.tally(&r.trk, heads[r.room])
		}
		res.Presence += r.presence
		res.Unparseable += r.unparseable
	}
	if len(ended) > 0 {
		res.Ended = ended
	}
	if e := w.errs.snapshot(); len(e) > 0 {
		res.Errors = e
	}
	res.Latency = w.lat.merged()
	if w.poll != nil {
		res.ReaderLag = w.poll.lag
	}
	if s, err := procstat.Read(0); err == nil {
		res.CPUTotal, res.MaxRSSKiB = s.CPUSeconds, s.HWMKiB
	}
	return res
}
