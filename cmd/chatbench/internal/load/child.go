package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// WorkerEnv is set (to "1") in the environment of a worker process: a
// program that finds it calls ServeWorker instead of its usual main.
const WorkerEnv = "CHATBENCH_WORKER"

// workerHandle is a Worker in this process or in a child process.
type workerHandle interface {
	join(ctx context.Context) (*JoinReport, error)
	start(from, to int64) error
	drain(ctx context.Context, heads map[string]uint64, timeout time.Duration) (DrainReport, error)
	collect(heads map[string]uint64) (*WorkerResult, error)
	child() bool
	stop()
}

// localWorker runs receivers in this process.
type localWorker struct{ w *Worker }

func (l localWorker) join(ctx context.Context) (*JoinReport, error) { return l.w.Join(ctx) }
func (l localWorker) start(from, to int64) error                    { l.w.Start(from, to); return nil }
func (l localWorker) drain(ctx context.Context, heads map[string]uint64, timeout time.Duration) (DrainReport, error) {
	return l.w.Drain(ctx, heads, timeout), nil
}
func (l localWorker) collect(heads map[string]uint64) (*WorkerResult, error) {
	return l.w.Collect(heads), nil
}
func (l localWorker) child() bool { return false }
func (l localWorker) stop()       {}

// envelope is one line of the parent–worker conversation, JSON over the
// worker's stdin and stdout. The parent sends ops in order (spec, join,
// start, drain, collect); the worker answers each with the matching field
// or Err.
type envelope struct {
	Op      string            `json:"op"`
	Spec    *WorkerSpec       `json:"spec,omitempty"`
	From    int64             `json:"from,omitempty"`
	To      int64             `json:"to,omitempty"`
	Heads   map[string]uint64 `json:"heads,omitempty"`
	Timeout time.Duration     `json:"timeout,omitempty"`
	Join    *JoinReport       `json:"join,omitempty"`
	Drain   *DrainReport      `json:"drain,omitempty"`
	Result  *WorkerResult     `json:"result,omitempty"`
	Err     string            `json:"err,omitempty"`
}

// childWorker runs receivers in a child process.
type childWorker struct {
	cmd      *exec.Cmd
	enc      *json.Encoder
	dec      *json.Decoder
	in       io.Closer
	stopOnce sync.Once
}

// startChild starts argv as a worker process for spec.
func startChild(argv []string, spec WorkerSpec) (*childWorker, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), WorkerEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a worker process: %w", err)
	}
	// No cmd.Wait until stop: Wait closes the stdout pipe as soon as the
	// child exits, which may be before its last answer has been read. A
	// child that dies is noticed anyway: its stdout ends.
	c := &childWorker{cmd: cmd, enc: json.NewEncoder(in), dec: json.NewDecoder(out), in: in}
	if err := c.enc.Encode(envelope{Op: "spec", Spec: &spec}); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// call sends req and reads the answer. A dead worker ends the call with
// an error rather than a hang: its stdout closes.
func (c *childWorker) call(req envelope) (envelope, error) {
	var resp envelope
	if err := c.enc.Encode(req); err != nil {
		return resp, fmt.Errorf("worker %d: %w", c.cmd.Process.Pid, err)
	}
	if err := c.dec.Decode(&resp); err != nil {
		return resp, fmt.Errorf("worker %d: no answer to %s: %w", c.cmd.Process.Pid, req.Op, err)
	}
	if resp.Err != "" {
		return resp, fmt.Errorf("worker %d: %s", c.cmd.Process.Pid, resp.Err)
	}
	return resp, nil
}

func (c *childWorker) join(ctx context.Context) (*JoinReport, error) {
	stop := context.AfterFunc(ctx, c.stop)
	defer stop()
	resp, err := c.call(envelope{Op: "join"})
	if err == nil && resp.Join == nil {
		err = errors.New("worker: empty join answer")
	}
	return resp.Join, err
}

func (c *childWorker) start(from, to int64) error {
	_, err := c.call(envelope{Op: "start", From: from, To: to})
	return err
}

func (c *childWorker) drain(ctx context.Context, heads map[string]uint64, timeout time.Duration) (DrainReport, error) {
	stop := context.AfterFunc(ctx, c.stop)
	defer stop()
	resp, err := c.call(envelope{Op: "drain", Heads: heads, Timeout: timeout})
	if err != nil || resp.Drain == nil {
		return DrainReport{}, errors.Join(err, errors.New("worker: no drain report"))
	}
	return *resp.Drain, nil
}

func (c *childWorker) collect(heads map[string]uint64) (*WorkerResult, error) {
	resp, err := c.call(envelope{Op: "collect", Heads: heads})
	if err == nil && resp.Result == nil {
		err = errors.New("worker: empty result")
	}
	return resp.Result, err
}

func (c *childWorker) child() bool { return true }

// stop ends the worker: closing its stdin makes it exit; a worker that
// does not within 5 seconds is killed. It may be called more than once.
func (c *childWorker) stop() {
	c.stopOnce.Do(func() {
		_ = c.in.Close()
		done := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
	})
}

// ServeWorker is the main of a worker process: it reads the parent's
// requests from in and answers on out until collect or the end of in.
func ServeWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	dec, enc := json.NewDecoder(in), json.NewEncoder(out)
	var w *Worker
	for {
		var req envelope
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the parent is done with us
			}
			return err
		}
		var resp envelope
		switch {
		case req.Op == "spec" && req.Spec != nil:
			w = NewWorker(*req.Spec)
			continue // no answer
		case w == nil:
			resp.Err = "no spec before " + req.Op
		case req.Op == "join":
			resp.Join, _ = w.Join(ctx)
			if resp.Join == nil {
				resp.Err = "join interrupted"
			}
		case req.Op == "start":
			w.Start(req.From, req.To)
		case req.Op == "drain":
			d := w.Drain(ctx, req.Heads, req.Timeout)
			resp.Drain = &d
		case req.Op == "collect":
			resp.Result = w.Collect(req.Heads)
		default:
			resp.Err = "unknown op " + req.Op
		}
		resp.Op = req.Op
		if err := enc.Encode(resp); err != nil {
			return err
		}
		if req.Op == "collect" {
			return nil
		}
	}
}
