// Command chatbench is the chat server's load generator. It opens receiving
// clients and open-loop senders against a running server on this machine
// (TCP or WebSocket) and reports join time, loss and duplicates by sequence
// number, delivery and send→ack latency from HDR histograms, and the CPU
// and memory of the server (given its pid) and of the generator itself.
//
// Named scenarios (issue 7):
//
//	chatbench -addr 127.0.0.1:7878 -scenario fanout-2000x50 -server-pid PID
//	chatbench -addr 127.0.0.1:7878 -scenario idle-19000 -server-pid PID
//
// or a custom load:
//
//	chatbench -addr ws://127.0.0.1:8080/ws -receivers 500 -senders 5 -rate 100 -duration 20s
//
// Several servers (the nodes of a cluster) take comma-separated lists;
// receivers and senders are spread over them round-robin, and the report
// gives each server's cost and their sum:
//
//	chatbench -addr 127.0.0.1:7878,127.0.0.1:7879 -scenario fanout-2000x50 -server-pid PID1,PID2
//
// Run the server and the generator on different CPUs (taskset -c 0 and
// taskset -c 1); cmd/chatbench/bench.sh does that for every scenario.
// Exit status: 0 for a clean, valid run (targets are reported, not
// enforced); 1 if anything was lost, duplicated or refused; 2 for bad
// usage or a run that could not be carried out; 3 for a run the generator
// could not keep up with.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"chat/cmd/chatbench/internal/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv(load.WorkerEnv) != "" {
		os.Exit(worker(ctx, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// worker is the main of a child process holding receivers for its parent.
// With CHATBENCH_WORKER_CPUPROFILE=PREFIX set it writes its CPU profile to
// PREFIX.PID.pprof.
func worker(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) int {
	if prefix := os.Getenv("CHATBENCH_WORKER_CPUPROFILE"); prefix != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d.pprof", prefix, os.Getpid()))
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	if err := load.ServeWorker(ctx, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "chatbench worker: %v\n", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chatbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c load.Config
	addr := fs.String("addr", "127.0.0.1:7878", "server: TCP `host:port`, tls://host:port or ws://host:port/ws (loopback only; TLS certificates are not checked); "+
		"several comma-separated (a cluster's nodes, one transport): receiver i and sender i use address i mod their number")
	scenario := fs.String("scenario", "", "named scenario: "+strings.Join(load.ScenarioNames(), ", ")+"; other flags given override its values")
	fs.IntVar(&c.Receivers, "receivers", 100, "receiving connections")
	fs.IntVar(&c.Senders, "senders", 2, "sending connections (members of the room too)")
	fs.Float64Var(&c.Rate, "rate", 20, "messages per `second`, all senders together")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured time: sending, or holding idle connections")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "sending before the measured time (checked for loss, not timed)")
	fs.IntVar(&c.Size, "size", 64, "message text `bytes` (at least 21: the send time is in the text)")
	fs.StringVar(&c.Room, "room", "", "room `name` (with -rooms N > 1, a prefix: NAME-00…); default: a new room per run")
	fs.IntVar(&c.Rooms, "rooms", 1, "rooms to spread receivers and senders over; 0: receivers only say HELLO")
	fs.IntVar(&c.Procs, "procs", 1, "worker processes for the receivers (at most 19,000 sockets each); 0: receivers in this process with the senders")
	fs.StringVar(&c.Reader, "reader", "epoll", "how workers read TCP and WebSocket receivers: epoll (one loop) or goroutine (one per connection); TLS ones always get a goroutine")
	fs.IntVar(&c.JoinConcurrency, "join-concurrency", 500, "connects and joins in flight at once, per process")
	fs.DurationVar(&c.JoinTimeout, "join-timeout", 30*time.Second, "per connection, connect to JOINED")
	fs.DurationVar(&c.Drain, "drain", 15*time.Second, "after the last send, how long to wait for ACKs and deliveries")
	fs.DurationVar(&c.LateAfter, "late", 5*time.Millisecond, "a send this far behind its schedule is late (over 1% late invalidates the run)")
	serverPIDs := fs.String("server-pid", "", "the server's `pid`: report its CPU time and memory from /proc; several comma-separated: a cluster's nodes in -addr order, then any other processes whose cost is the servers' (its NATS servers): each one's and their sum")
	fs.StringVar(&c.Pprof, "pprof", "", "the server's pprof `URL` (http://127.0.0.1:6060), for -cpuprofile and -heapprofile")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write the server's CPU profile of the measured time (of the joins, without senders) to `file`")
	fs.StringVar(&c.HeapProfile, "heapprofile", "", "write the server's heap profile at the end of the measured time to `file`")
	selfProfile := fs.String("selfprofile", "", "write chatbench's own CPU profile (this process: senders, and receivers with -procs 1) to `file`")
	fs.StringVar(&c.Label, "label", "", "free `text` kept in the report, e.g. the server's commit")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	jsonFile := fs.String("json-file", "", "also write the report as JSON to `file`")
	summarize := fs.Bool("summarize", false, "print a Markdown table of the JSON reports named as arguments, and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chatbench [-addr ADDR[,ADDR...]] (-scenario NAME | -receivers N -senders M -rate R ...) [-server-pid PID[,PID...]] [-json]\n"+
			"       chatbench -summarize REPORT.json...\n\n"+
			"Loads a chat server on this machine and reports latency, loss and cost.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *summarize {
		if err := load.Summarize(stdout, fs.Args()); err != nil {
			fmt.Fprintf(stderr, "chatbench: %v\n", err)
			return 2
		}
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "chatbench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *scenario != "" {
		sc, ok := load.Scenario(*scenario)
		if !ok {
			fmt.Fprintf(stderr, "chatbench: no scenario %q; there are %s\n", *scenario, strings.Join(load.ScenarioNames(), ", "))
			return 2
		}
		// Flags given explicitly override the scenario.
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "receivers":
				sc.Receivers = c.Receivers
			case "senders":
				sc.Senders = c.Senders
			case "rate":
				sc.Rate = c.Rate
			case "duration":
				sc.Duration = c.Duration
			case "warmup":
				sc.Warmup = c.Warmup
			case "size":
				sc.Size = c.Size
			case "rooms":
				sc.Rooms = c.Rooms
			case "procs":
				sc.Procs = c.Procs
			case "reader":
				sc.Reader = c.Reader
			}
		})
		sc.Room, sc.JoinConcurrency, sc.JoinTimeout, sc.Drain, sc.LateAfter = c.Room, c.JoinConcurrency, c.JoinTimeout, c.Drain, c.LateAfter
		sc.Pprof, sc.CPUProfile, sc.HeapProfile = c.Pprof, c.CPUProfile, c.HeapProfile
		sc.Label = c.Label
		c = sc
	}
	c.Addr = *addr
	pids, err := load.ParsePIDs(*serverPIDs)
	if err != nil {
		fmt.Fprintf(stderr, "chatbench: -server-pid: %v\n", err)
		return 2
	}
	if len(pids) > 0 {
		c.ServerPID = pids[0]
	}
	if len(pids) > 1 {
		c.ServerPIDs = pids
	}
	if *selfProfile != "" {
		f, err := os.Create(*selfProfile)
		if err != nil {
			fmt.Fprintf(stderr, "chatbench: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "chatbench: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := load.Run(ctx, c, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "chatbench: %v\n", err)
		return 2
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "chatbench: %v\n", err)
		return 2
	}
	js = append(js, '\n')
	if *jsonFile != "" {
		if err := os.WriteFile(*jsonFile, js, 0o644); err != nil {
			fmt.Fprintf(stderr, "chatbench: %v\n", err)
			return 2
		}
	}
	if *asJSON {
		_, _ = stdout.Write(js)
	} else {
		rep.Print(stdout)
	}
	switch {
	case !rep.Clean:
		return 1
	case !rep.Valid:
		return 3
	}
	return 0
}
