package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
)

// defaultLimits turns the server's rate limit back on at its defaults (5
// frames a second, bursts of 20, cut off after 10 s over the rate), which
// testserver turns off for tests that push messages fast.
var defaultLimits = []string{"-msg-rate", "5"}

// TestOfflineOutboxDrainsWithinTheRate: 200 messages written while
// offline go out after the reconnect at the rate the server announced,
// all stored, in order, without the server slowing the client down or
// cutting it off. The old client wrote all 200 at once: the server read
// them at its rate and after 10 s over it disconnected the client with
// rate-limited, again after every reconnect.
//
// At 5 frames a second this takes about 40 s, so it runs in parallel
// with the other tests instead of adding to their time.
func TestOfflineOutboxDrainsWithinTheRate(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, testserver.Options{Args: defaultLimits})
	alice := joined(t, client.Config{Addr: srv.Addr, Name: "alice"})
	srv.Kill()
	alice.WaitState(t, client.Reconnecting)
	const n = 200
	for i := range n {
		if _, err := alice.C.Send("general", fmt.Sprint("queued ", i)); err != nil {
			t.Fatal(err)
		}
	}
	mark := len(alice.Events())
	start := time.Now()
	srv.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := alice.C.Drain(ctx); err != nil {
		t.Fatalf("drain: %v; events:\n%s", err, alice.Dump())
	}
	took := time.Since(start)
	t.Logf("%d queued messages stored %v after the server came back", n, took.Round(100*time.Millisecond))

	for _, ev := range alice.Events()[mark:] {
		var perr *protocol.Error
		if sc, ok := ev.(client.StateChanged); ok && errors.As(sc.Err, &perr) && perr.Code == protocol.CodeRateLimited {
			t.Errorf("cut off: %v", sc.Err)
		}
	}
	for _, rec := range srv.LogRecords("limit") {
		switch rec["kind"] {
		case "flood":
			t.Errorf("the server saw a flood: %v", rec["detail"])
		case "message-rate":
			t.Logf("the server slowed the client down once: %v", rec["detail"])
		}
	}
	// Stored once each, in the order written.
	raw, _ := testserver.Handshake(t, srv.Addr)
	raw.Send(&protocol.Join{Room: "general", Name: "checker", Resume: true})
	testserver.Expect[*protocol.Joined](raw)
	for i, m := range raw.Messages(n) {
		if want := fmt.Sprint("queued ", i); m.Text != want || m.Seq != uint64(i+1) {
			t.Fatalf("stored #%d: seq %d %q, want seq %d %q", i, m.Seq, m.Text, i+1, want)
		}
	}
}

// TestRateLimitedWaitsAsAnnounced: after rate-limited the client stays
// away as long as WELCOME's RetryAfterMs says, or 5 s from a server that
// announced nothing (the old client always waited 5 s).
func TestRateLimitedWaitsAsAnnounced(t *testing.T) {
	for _, tc := range []struct {
		retryAfterMs uint64
		want         time.Duration
	}{{1500, 1500 * time.Millisecond}, {0, 5 * time.Second}, {7000, 7 * time.Second}} {
		srv := startScripted(t, func(n int, j *protocol.Join) []protocol.Message {
			if n == 0 {
				return []protocol.Message{protocol.NewError(protocol.CodeRateLimited, "", "slow down")}
			}
			return []protocol.Message{&protocol.Joined{Room: "general", Name: "alice", Count: 1, Members: []string{"alice"}}}
		}, func(w *protocol.Welcome) { w.Limits.RetryAfterMs = tc.retryAfterMs })
		r := joinedNoWait(t, client.Config{Addr: srv.ln.Addr().String(), Name: "alice"})
		sc := r.WaitState(t, client.Reconnecting)
		// fast() backoff is at most 100 ms; the announced wait dominates.
		if sc.RetryIn != tc.want {
			t.Errorf("RetryAfterMs %d: retry in %v, want %v", tc.retryAfterMs, sc.RetryIn, tc.want)
		}
		if tc.want > 2*time.Second {
			continue // the wait itself is measured once, with the short value
		}
		cutAt := time.Now()
		srv.nextJoin(t) // the one refused
		srv.nextJoin(t)
		if took := time.Since(cutAt); took < tc.want-100*time.Millisecond {
			t.Errorf("reconnected after %v, want at least %v", took, tc.want)
		}
		r.WaitJoined(t, "general")
	}
}

// joinedNoWait starts a client and asks it to join general.
func joinedNoWait(t *testing.T, cfg client.Config) *clienttest.Recorder {
	t.Helper()
	r := clienttest.New(t, fast(cfg))
	if err := r.C.Join("general"); err != nil {
		t.Fatal(err)
	}
	return r
}
