package load

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"chat/cmd/chatbench/internal/procstat"
	"chat/cmd/chatbench/internal/wire"
)

// Run runs cfg against a server and returns the report. Progress lines go
// to progress (io.Discard for none). An error means the run could not be
// carried out; a run with losses or failures still returns a report.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	cfg.setDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(progress, "chatbench: "+format+"\n", args...)
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	runID := hex.EncodeToString(nonce[:4])
	rooms := cfg.roomNames(runID)
	addrs, _ := ParseAddrs(cfg.Addr) // checked
	pids := cfg.pids()
	if len(pids) > 0 {
		cfg.ServerPID = pids[0]
	}
	if len(pids) > 1 {
		cfg.ServerPIDs = pids
	}
	if len(addrs) > 1 {
		cfg.Addrs = addrs // one address: the report as before
	}
	rep := &Report{Config: cfg, RunID: runID, Rooms: rooms, Date: time.Now().UTC().Format(time.RFC3339),
		Transport: wire.Transport(addrs[0]), GoMaxProcs: runtime.GOMAXPROCS(0), GeneratorCPUs: procstat.Affinity(0)}
	if len(addrs) > 1 {
		rep.Nodes = make([]NodeShare, len(addrs))
		for k, a := range addrs {
			rep.Nodes[k].Addr = a
			if len(pids) >= len(addrs) {
				rep.Nodes[k].PID = pids[k]
			}
		}
		for i := range cfg.Receivers {
			rep.Nodes[spread(i, len(addrs))].Receivers++
		}
		for i := range cfg.Senders {
			rep.Nodes[spread(i, len(addrs))].Senders++
		}
	}

	// The servers before anything connects.
	servers := make([]*ServerReport, len(pids))
	for k, pid := range pids {
		s, err := procstat.Read(pid)
		if err != nil {
			return nil, fmt.Errorf("-server-pid %d: %w", pid, err)
		}
		servers[k] = &ServerReport{PID: pid, Before: &s, Cmdline: procstat.Cmdline(pid), CPUs: procstat.Affinity(pid)}
		if len(pids) > 1 && len(pids) >= len(addrs) && k < len(addrs) {
			servers[k].Addr = addrs[k] // the pids of the nodes, in -addr order; then others (NATS)
		}
	}
	switch {
	case len(servers) == 1:
		rep.Server = servers[0]
	case len(servers) > 1:
		rep.Servers = servers // summed into rep.Server by finish
	}

	// Senders join first, so the join phase measures the receivers alone.
	senders := make([]*sender, cfg.Senders)
	var interval time.Duration
	capacity := 0
	if cfg.Senders > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Senders) / cfg.Rate)
		capacity = int((cfg.Warmup+cfg.Duration)/interval) + 2
	}
	for i := range senders {
		room := ""
		if len(rooms) > 0 {
			room = rooms[i%len(rooms)]
		}
		senders[i] = newSender(i, room, nonce, cfg.Size, cfg.LateAfter, capacity)
	}
	defer func() {
		for _, s := range senders {
			if s.conn != nil {
				s.conn.Close()
			}
		}
	}()
	if err := parallel(len(senders), func(i int) error {
		return senders[i].connect(ctx, addrs[spread(i, len(addrs))], cfg.JoinTimeout)
	}); err != nil {
		return nil, err
	}
	if len(senders) > 0 {
		logf("%d senders joined", len(senders))
	}

	handles, err := startWorkers(cfg, addrs, rooms)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, h := range handles {
			h.stop()
		}
	}()
	sending := cfg.Senders > 0
	var profiles sync.WaitGroup
	defer profiles.Wait()
	var profileMu sync.Mutex
	var profileNotes []string
	profileErr := func(err error) {
		if err != nil {
			profileMu.Lock()
			profileNotes = append(profileNotes, "profile: "+err.Error())
			profileMu.Unlock()
		}
	}
	if cfg.CPUProfile != "" && !sending {
		// Without senders the interesting work is the joins.
		profiles.Go(func() { profileErr(fetch(cfg.Pprof, "profile?seconds=10", cfg.CPUProfile, 10*time.Second)) })
		time.Sleep(100 * time.Millisecond) // let the profile start before the first connect
	}

	// Join.
	logf("joining %d receivers in %d process(es)", cfg.Receivers, len(handles))
	joins := make([]*JoinReport, len(handles))
	if err := parallel(len(handles), func(i int) (err error) {
		joins[i], err = handles[i].join(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	rep.Join = mergeJoins(joins)
	logf("%d/%d joined in %.3f s", rep.Join.Joined, rep.Join.Attempted, rep.Join.Seconds)
	for _, j := range joins {
		for k, joined := range j.JoinedPerAddr {
			if k < len(rep.Nodes) {
				rep.Nodes[k].Joined += joined
			}
		}
	}
	for _, srv := range servers {
		s, err := procstat.Read(srv.PID)
		if err != nil {
			return nil, fmt.Errorf("the server (pid %d) is gone after the joins: %w", srv.PID, err)
		}
		srv.Joined = &s
		rep.Join.ServerCPU += s.CPUSeconds - srv.Before.CPUSeconds
	}

	// Run: send, or hold the connections, through the measured window.
	t0 := time.Now().Add(200 * time.Millisecond)
	from := t0.Add(cfg.Warmup)
	to := from.Add(cfg.Duration)
	for _, h := range handles {
		if err := h.start(from.UnixNano(), to.UnixNano()); err != nil {
			return nil, err
		}
	}
	selfFrom, selfTo := sampleAt(from, 0), sampleAt(to, 0)
	machFrom, machTo := machineAt(from), machineAt(to)
	srvFrom, srvTo := make([]chan sample, len(servers)), make([]chan sample, len(servers))
	for k, srv := range servers {
		srvFrom[k], srvTo[k] = sampleAt(from, srv.PID), sampleAt(to, srv.PID)
	}
	if cfg.CPUProfile != "" && sending && cfg.Duration >= time.Second {
		secs := int(cfg.Duration / time.Second)
		profiles.Go(func() {
			time.Sleep(time.Until(from))
			profileErr(fetch(cfg.Pprof, fmt.Sprintf("profile?seconds=%d", secs), cfg.CPUProfile, time.Duration(secs)*time.Second))
		})
	}
	if cfg.HeapProfile != "" {
		profiles.Go(func() {
			time.Sleep(time.Until(to))
			profileErr(fetch(cfg.Pprof, "heap", cfg.HeapProfile, 0))
		})
	}
	if sending {
		logf("sending %g msg/s from %d senders for %v (+%v warm-up)", cfg.Rate, cfg.Senders, cfg.Duration, cfg.Warmup)
		var wg sync.WaitGroup
		for i, s := range senders {
			s.interval = interval
			s.start = t0.Add(interval * time.Duration(i) / time.Duration(len(senders)))
			s.measure = from
			wg.Go(func() { s.run(ctx, to) })
		}
		wg.Wait()
		waitAcks(ctx, senders, cfg.Drain)
	} else {
		logf("holding the connections for %v", cfg.Duration)
		select {
		case <-time.After(time.Until(to)):
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// Drain: the rooms' last acknowledged messages are what every member
	// must have.
	heads := map[string]uint64{}
	for _, s := range senders {
		heads[s.room] = max(heads[s.room], s.maxAck.Load())
	}
	rep.Heads = heads
	drains := make([]DrainReport, len(handles))
	if err := parallel(len(handles), func(i int) (err error) {
		drains[i], err = handles[i].drain(ctx, heads, cfg.Drain)
		return err
	}); err != nil {
		return nil, err
	}
	rep.Drained = true
	for _, d := range drains {
		rep.Drained = rep.Drained && d.Complete
		rep.DrainSeconds = max(rep.DrainSeconds, d.Waited.Seconds())
	}
	for k, srv := range servers {
		a, b := <-srvFrom[k], <-srvTo[k]
		if err := errors.Join(a.err, b.err); err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("SERVER GONE? pid %d could not be read in the measured window: %v", srv.PID, err))
			rep.serverLost = true
		} else {
			srv.WindowStart, srv.WindowEnd = &a.Sample, &b.Sample
		}
		if s, err := procstat.Read(srv.PID); err == nil {
			srv.After = &s
		}
		// -pprof is one URL: with several servers, the first pid's (bench.sh
		// gives the first node's).
		if cfg.Pprof != "" && k == 0 {
			if n, err := goroutines(cfg.Pprof); err == nil {
				srv.Goroutines = n // connections still open
			}
			if m, err := memStats(cfg.Pprof); err == nil {
				srv.MemStats = m
			}
		}
	}
	a, b := <-selfFrom, <-selfTo
	genCPU := b.CPUSeconds - a.CPUSeconds // a failed reading of ourselves is 0: no CPU
	mFrom, mTo := <-machFrom, <-machTo

	// Collect.
	results := make([]*WorkerResult, len(handles))
	if err := parallel(len(handles), func(i int) (err error) {
		results[i], err = handles[i].collect(heads)
		return err
	}); err != nil {
		return nil, err
	}
	for i, r := range results {
		if handles[i].child() {
			genCPU += r.CPU
		}
	}
	for _, s := range senders {
		s.conn.Close()
		<-s.readDone
	}
	if mFrom.err == nil && mTo.err == nil {
		d := mTo.total.Sub(mFrom.total)
		rep.Machine = &d
		if len(mFrom.perCPU) == len(mTo.perCPU) {
			for i := range mTo.perCPU {
				rep.CPUBusy = append(rep.CPUBusy, mTo.perCPU[i].Sub(mFrom.perCPU[i]).Busy()/to.Sub(from).Seconds())
			}
		}
	}

	rep.finish(cfg, results, senders, genCPU, to.Sub(from))
	profiles.Wait()
	rep.Notes = append(rep.Notes, profileNotes...)
	return rep, nil
}

// startWorkers starts the receivers' workers: cfg.Procs child processes,
// or with Procs 0 one in this process. Child processes keep the senders'
// timing apart from the receivers' work: in one Go process the senders'
// ticks would queue behind thousands of receivers made runnable by each
// broadcast.
func startWorkers(cfg Config, addrs, rooms []string) ([]workerHandle, error) {
	specs := workerSpecs(cfg, addrs, rooms)
	if cfg.Procs == 0 {
		return []workerHandle{localWorker{NewWorker(specs[0])}}, nil
	}
	argv := cfg.WorkerCommand
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		argv = []string{exe}
	}
	var hs []workerHandle
	for _, s := range specs {
		c, err := startChild(argv, s)
		if err != nil {
			for _, h := range hs {
				h.stop()
			}
			return nil, err
		}
		hs = append(hs, c)
	}
	return hs, nil
}

// workerSpecs splits the receivers over cfg.Procs workers (one with Procs
// 0), consecutive global indexes each. Every spec has all the addresses:
// a receiver's server follows from its global index, so the spread is
// round-robin over all the workers together.
func workerSpecs(cfg Config, addrs, rooms []string) []WorkerSpec {
	spec := WorkerSpec{Addrs: addrs, Rooms: rooms, JoinConcurrency: cfg.JoinConcurrency,
		JoinTimeout: cfg.JoinTimeout, ReadBuffer: cfg.ReadBuffer, Epoll: cfg.Reader == "epoll"}
	if cfg.Procs == 0 {
		spec.Count = cfg.Receivers
		return []WorkerSpec{spec}
	}
	specs := make([]WorkerSpec, cfg.Procs)
	for i := range specs {
		s := spec
		s.First = cfg.Receivers * i / cfg.Procs
		s.Count = cfg.Receivers*(i+1)/cfg.Procs - s.First
		specs[i] = s
	}
	return specs
}

// waitAcks waits up to timeout for every sent message to be acknowledged.
func waitAcks(ctx context.Context, senders []*sender, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		done := true
		for _, s := range senders {
			if s.acked.Load() < s.sent.Load() && s.writeErr == nil {
				select {
				case <-s.readDone: // the connection ended: nothing more will come
				default:
					done = false
				}
			}
		}
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// parallel runs f(0…n-1) concurrently and returns the errors joined.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fetch GETs a pprof endpoint into file. d is how long the server takes
// to answer (the profile's length).
func fetch(base, path, file string, d time.Duration) error {
	cl := http.Client{Timeout: d + 30*time.Second}
	resp, err := cl.Get(strings.TrimSuffix(base, "/") + "/debug/pprof/" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// goroutines asks the server's pprof endpoint how many goroutines it runs.
func goroutines(base string) (int, error) {
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(strings.TrimSuffix(base, "/") + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n int
	_, err = fmt.Fscanf(resp.Body, "goroutine profile: total %d", &n)
	return n, err
}

// memStats reads the server's runtime.MemStats from the end of its heap
// profile in text form: where its resident memory goes.
func memStats(base string) (map[string]int64, error) {
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(strings.TrimSuffix(base, "/") + "/debug/pprof/heap?debug=1")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{"HeapAlloc": true, "HeapInuse": true, "HeapIdle": true, "HeapReleased": true,
		"HeapSys": true, "Stack": true, "GCSys": true, "Sys": true, "NumGC": true, "NextGC": true}
	out := map[string]int64{}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = ")
		if !ok || !keep[k] {
			continue
		}
		v, _, _ = strings.Cut(strings.TrimSpace(v), " ") // "Stack = inuse / sys": in use
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no MemStats in the heap profile")
	}
	return out, nil
}
