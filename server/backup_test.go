package main

// Backups through the real binary: `chat-server backup` while 50 clients
// send, `chat-server restore`, and what clients see after it.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chat/client"
	"chat/internal/testserver"
	"chat/protocol"
	"chat/server/internal/cluster/natstest"
	"chat/server/internal/history"
	"chat/server/internal/sqlite"
)

// chatServer runs the server binary with args and returns its exit code
// and output.
func chatServer(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(testserver.Binary(t), args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatalf("chat-server %v: %v", args, err)
	}
	return 0, out.String(), errb.String()
}

// prefill writes n messages of an "archive" room into the database of
// data directory dir, as a server would have stored them: enough for the
// backup to take a while.
func prefill(t *testing.T, dir string, n int) {
	t.Helper()
	var mu sync.Mutex
	var failed error
	l, err := sqlite.Open(filepath.Join(dir, "chat.db"), func(rs []history.Result) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			if r.Err != nil && failed == nil {
				failed = r.Err
			}
		}
	}, sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("old history ", 20)
	for i := range n {
		if err := l.Append(&history.Request{Room: "archive", Sender: "archivist", ID: fmt.Sprint("a", i), Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if failed != nil {
		t.Fatal(failed)
	}
}

// sender is one of the clients that send while the backup runs: it sends
// a message, waits for its ACK, and sends the next.
type sender struct {
	c    *client.Client
	room string
	ack  chan struct{} // one per ACK

	mu     sync.Mutex
	acked  map[string]client.Acked
	joined []client.Joined
}

// ackRecord is an ACK and how long it took, in which phase.
type ackRecord struct {
	took  time.Duration
	phase int32
}

// senders are clients sending continuously to rooms room-0…room-(rooms-1).
type senders struct {
	all   []*sender
	phase atomic.Int32 // 0 before the backup, 1 while it runs, 2 after
	total atomic.Int64 // ACKs received
	// changed is broadcast (under cmu) after every ACK and JOINED, for
	// waitUntil.
	cmu     sync.Mutex
	changed sync.Cond
	latMu   sync.Mutex
	lat     []ackRecord
	sentAt  sync.Map // id → time.Time
	quit    chan struct{}
	sending sync.WaitGroup
}

// startSenders connects n clients to addrs, each joins its room, and once
// all are in they send, each waiting for its ACK before its next message.
func startSenders(t *testing.T, addrs []string, n, rooms int) *senders {
	t.Helper()
	g := &senders{quit: make(chan struct{})}
	g.changed.L = &g.cmu
	for i := range n {
		c, err := client.New(client.Config{Addrs: addrs, Name: fmt.Sprint("sender", i),
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s := &sender{c: c, room: fmt.Sprint("room-", i%rooms), ack: make(chan struct{}, 1), acked: map[string]client.Acked{}}
		g.all = append(g.all, s)
		go func() {
			for ev := range c.Events() {
				switch ev := ev.(type) {
				case client.Acked:
					s.mu.Lock()
					s.acked[ev.ID] = ev
					s.mu.Unlock()
					if at, ok := g.sentAt.Load(ev.ID); ok {
						g.latMu.Lock()
						g.lat = append(g.lat, ackRecord{took: time.Since(at.(time.Time)), phase: g.phase.Load()})
						g.latMu.Unlock()
					}
					select {
					case s.ack <- struct{}{}:
					default:
					}
				case client.Joined:
					s.mu.Lock()
					s.joined = append(s.joined, ev)
					s.mu.Unlock()
					g.notify()
				}
			}
		}()
		if err := c.Join(s.room); err != nil {
			t.Fatal(err)
		}
	}
	// Everyone is in before anyone sends: their names are claimed in the
	// backup.
	for _, s := range g.all {
		g.waitUntil(t, "joined "+s.room, func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.joined) > 0
		})
	}
	for i, s := range g.all {
		g.sending.Add(1)
		go func() {
			defer g.sending.Done()
			for n := 0; ; n++ {
				select {
				case <-g.quit:
					return
				default:
				}
				now := time.Now()
				id, err := s.c.Send(s.room, fmt.Sprintf("from %d, message %d", i, n))
				if err != nil {
					t.Error(err)
					return
				}
				g.sentAt.Store(id, now)
				select {
				case <-s.ack:
					g.total.Add(1)
					g.notify()
				case <-g.quit:
					return
				}
			}
		}()
	}
	return g
}

// stop ends the sending.
func (g *senders) stop() {
	close(g.quit)
	g.sending.Wait()
}

// waitAcks waits until n more ACKs came.
func (g *senders) waitAcks(t *testing.T, n int64) {
	t.Helper()
	target := g.total.Load() + n
	g.waitUntil(t, fmt.Sprint(target, " messages acknowledged"), func() bool { return g.total.Load() >= target })
}

// acked returns every ACK received so far by sender/id.
func (g *senders) acked() map[string]client.Acked {
	out := map[string]client.Acked{}
	for _, s := range g.all {
		s.mu.Lock()
		for id, a := range s.acked {
			out[s.c.Name()+"/"+id] = a
		}
		s.mu.Unlock()
	}
	return out
}

// waitReset waits until every sender was told its room was reset.
func (g *senders) waitReset(t *testing.T) {
	t.Helper()
	for _, s := range g.all {
		g.waitUntil(t, s.c.Name()+" told of the reset", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return slices.ContainsFunc(s.joined, func(j client.Joined) bool { return j.Resumed && j.Reset && j.Room == s.room })
		})
	}
}

// checkRestored checks that every message of acked is in history (read
// through addr) under the room and sequence number its ACK gave, and
// that each room's history is gap-free.
func checkRestored(t *testing.T, rooms int, acked map[string]client.Acked, read func(room string) []*protocol.Msg) {
	t.Helper()
	stored := map[string]*protocol.Msg{}
	for r := range rooms {
		room := fmt.Sprint("room-", r)
		for i, m := range read(room) {
			if m.Seq != uint64(i+1) {
				t.Fatalf("%s: seq %d at position %d after the restore", room, m.Seq, i)
			}
			stored[m.Sender+"/"+m.ID] = m
		}
	}
	for key, a := range acked {
		m := stored[key]
		if m == nil {
			t.Fatalf("message %s, acknowledged before the backup began, is missing after the restore", key)
		}
		if m.Seq != a.Seq || m.Room != a.Room {
			t.Fatalf("message %s: %s seq %d after the restore, acknowledged as %s seq %d", key, m.Room, m.Seq, a.Room, a.Seq)
		}
	}
}

// TestBackupWhileFiftyClientsSendThenRestore: 50 clients in 10 rooms
// send continuously (each waiting for its ACK before its next message)
// to a server whose database already holds 100,000 messages, and
// `chat-server backup` runs meanwhile. Every message acknowledged before
// the backup began must be in it. Restore refuses while the server runs;
// after a stop it puts the backup back, the server starts on it, every
// such message is in history under the sequence number its ACK gave, each
// room's history is gap-free, every room has a new epoch, and the
// clients, which reconnect by themselves, are told their rooms were
// reset. The ACK latency before and during the backup is logged
// (BENCHMARKS.md).
func TestBackupWhileFiftyClientsSendThenRestore(t *testing.T) {
	data := t.TempDir()
	const archived = 100_000
	prefill(t, data, archived)
	srv := testserver.Start(t, testserver.Options{Data: data, Args: []string{"-ping", "1s"}})

	const clients, rooms = 50, 10
	g := startSenders(t, []string{srv.Addr}, clients, rooms)
	g.waitAcks(t, 1000)

	// Everything acknowledged up to now must be in the backup.
	ackedBefore := g.acked()
	g.phase.Store(1)
	file := filepath.Join(t.TempDir(), "chat-backup.db")
	start := time.Now()
	code, out, errOut := chatServer(t, "backup", "-data", data, file)
	took := time.Since(start)
	g.phase.Store(2)
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("chat-server backup: %s (took %v)", strings.TrimSpace(out), took.Round(time.Millisecond))
	m := regexp.MustCompile(`(\d+) rooms, (\d+) messages, (\d+) claimed names`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("backup did not say what it copied:\n%s", out)
	}
	if n, _ := strconv.Atoi(m[2]); n < archived+len(ackedBefore) {
		t.Errorf("backup holds %d messages, but %d were stored before it began", n, archived+len(ackedBefore))
	}
	if n, _ := strconv.Atoi(m[3]); n != clients {
		t.Errorf("backup holds %d claimed names, want %d", n, clients)
	}
	// Some more after the backup: these are not in it.
	g.waitAcks(t, 200)
	g.stop()
	logLatency(t, g, took)

	// The old epochs, as clients know them.
	oldEpoch := map[string]uint64{}
	for r := range rooms {
		room := fmt.Sprint("room-", r)
		c, j := testserver.JoinRoom(t, srv.Addr, room, "epoch-reader")
		oldEpoch[room] = j.Epoch
		c.Conn.Close()
	}

	// Restore refuses while the server runs, and changes nothing.
	code, _, errOut = chatServer(t, "restore", "-data", data, file)
	if code != 1 || !strings.Contains(errOut, "a chat server is running on "+data) || !strings.Contains(errOut, "stop it first") {
		t.Fatalf("restore while the server runs: exit %d, %q", code, errOut)
	}
	if _, err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = chatServer(t, "restore", "-data", data, file)
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("chat-server restore: %s", out)
	aside := regexp.MustCompile(`kept as (\S+)`).FindStringSubmatch(out)
	if aside == nil {
		t.Fatalf("restore did not say where the old database is:\n%s", out)
	}
	if st, err := sqlite.Check(context.Background(), aside[1]); err != nil || st.Messages < archived+int64(len(ackedBefore)) {
		t.Fatalf("the database kept aside: %v %v", st, err)
	}
	srv.Restart()

	// Every message acknowledged before the backup began is there, under
	// its sequence number; each room's history is gap-free.
	checkRestored(t, rooms, ackedBefore, func(room string) []*protocol.Msg { return allHistory(t, srv.Addr, room) })
	if c, j := testserver.JoinRoom(t, srv.Addr, "archive", "epoch-reader"); j.Head != archived {
		t.Errorf("archive's head is %d after the restore, want %d", j.Head, archived)
	} else {
		c.Conn.Close()
	}
	t.Logf("%d messages acknowledged before the backup, all restored; %d acknowledged in all", len(ackedBefore), len(g.acked()))

	// New epochs: a raw resume with the old one gets another and the
	// whole history; the clients, reconnected on their own, were told.
	for room, old := range oldEpoch {
		c, _ := testserver.Handshake(t, srv.Addr)
		c.Send(&protocol.Join{Room: room, Name: "epoch-reader", Resume: true, After: 5, Epoch: old})
		j := testserver.Expect[*protocol.Joined](c)
		if j.Epoch == 0 || j.Epoch == old {
			t.Errorf("%s: epoch %d after the restore, %d before", room, j.Epoch, old)
		}
		// Answered as a JOIN without resume: the last -history (100)
		// messages, not those after 5.
		if want := j.Head - min(j.Head, 100); j.After != want {
			t.Errorf("%s: a resume from another epoch starts after %d, want %d (head %d)", room, j.After, want, j.Head)
		}
		c.Conn.Close()
	}
	g.waitReset(t)
	// Names came back as claimed: another key cannot take one.
	thief, _ := testserver.Handshake(t, srv.Addr)
	thief.Send(&protocol.Join{Room: "room-0", Name: "sender0", Secret: "not the owner's"})
	expectRefusal(t, thief, protocol.CodeNameOwned, "room-0", false)
}

// logLatency logs the ACK latencies before, during and after the backup.
func logLatency(t *testing.T, g *senders, backup time.Duration) {
	g.latMu.Lock()
	defer g.latMu.Unlock()
	by := map[int32][]time.Duration{}
	for _, r := range g.lat {
		by[r.phase] = append(by[r.phase], r.took)
	}
	for p, name := range []string{"before the backup", "during the backup", "after the backup"} {
		d := by[int32(p)]
		if len(d) == 0 {
			t.Logf("ACK latency %s: no ACKs", name)
			continue
		}
		slices.Sort(d)
		t.Logf("ACK latency %s (%v): %d ACKs, p50 %v, p99 %v, max %v", name, backup.Round(time.Millisecond), len(d),
			d[len(d)/2].Round(time.Microsecond), d[len(d)*99/100].Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond))
	}
}

// notify wakes waitUntil.
func (g *senders) notify() {
	g.cmu.Lock()
	g.changed.Broadcast()
	g.cmu.Unlock()
}

// waitUntil waits until cond holds, for at most 30 seconds: cond is
// checked again after every ACK and JOINED the senders get.
func (g *senders) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	timer := time.AfterFunc(30*time.Second, g.notify)
	defer timer.Stop()
	g.cmu.Lock()
	defer g.cmu.Unlock()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		g.changed.Wait()
	}
}

// TestBackupAndRestoreRefuseWithASentence: backup keeps an existing file
// unless -force; restore refuses a file that is not a chat database, a
// damaged one, and a missing one, changing nothing; a second server on a
// data directory in use is refused.
func TestBackupAndRestoreRefuseWithASentence(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	fillRoom(t, srv.Addr, "general", "poster", 20)
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.db")
	if code, out, errOut := chatServer(t, "backup", "-data", srv.Data, file); code != 0 || !strings.Contains(out, "20 messages") {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	before, _ := os.ReadFile(file)
	code, _, errOut := chatServer(t, "backup", "-data", srv.Data, file)
	if code != 1 || !strings.Contains(errOut, "exists; give -force to replace it") {
		t.Fatalf("backup over an existing file: exit %d, %q", code, errOut)
	}
	if now, _ := os.ReadFile(file); !slices.Equal(now, before) {
		t.Fatal("the existing backup was changed")
	}
	fillRoom(t, srv.Addr, "general2", "poster", 5)
	if code, out, errOut := chatServer(t, "backup", "-data", srv.Data, "-force", file); code != 0 || !strings.Contains(out, "25 messages") {
		t.Fatalf("backup -force: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := chatServer(t, "backup", "-data", t.TempDir(), filepath.Join(dir, "x.db")); code != 1 || !strings.Contains(errOut, "no chat database in") {
		t.Fatalf("backup of a directory without a database: exit %d, %q", code, errOut)
	}

	// A second server on the same data directory.
	second := exec.Command(testserver.Binary(t), "-tcp", "127.0.0.1:0", "-http", "", "-data", srv.Data)
	outb, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(outb), "another chat server or a restore is using "+srv.Data) {
		t.Fatalf("a second server on one data directory: %v\n%s", err, outb)
	}

	if _, err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(file)
	damaged := slices.Clone(good)
	for i := 4096; i < len(damaged); i++ { // every page after the first
		damaged[i] ^= 0x5a
	}
	cases := map[string][]byte{
		"text.db":    []byte("these are my notes, not a database\n"),
		"empty.db":   {},
		"damaged.db": damaged,
	}
	for name, content := range cases {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(srv.Data, "chat.db")
	was, _ := os.ReadFile(db)
	for _, name := range []string{"text.db", "empty.db", "damaged.db", "missing.db"} {
		code, out, errOut := chatServer(t, "restore", "-data", srv.Data, filepath.Join(dir, name))
		if code != 1 || !strings.Contains(errOut, "cannot restore") || !strings.Contains(errOut, "nothing was changed") {
			t.Errorf("restore of %s: exit %d, %q %q", name, code, out, errOut)
		}
		t.Logf("restore of %s: %s", name, strings.TrimSpace(errOut))
	}
	if now, _ := os.ReadFile(db); !slices.Equal(now, was) {
		t.Fatal("a refused restore changed the database")
	}
	entries, _ := os.ReadDir(srv.Data)
	for _, e := range entries {
		if strings.Contains(e.Name(), "restor") {
			t.Errorf("a refused restore left %s", e.Name())
		}
	}
	// The good one is restored; the server starts on it.
	if code, out, errOut := chatServer(t, "restore", "-data", srv.Data, file); code != 0 || !strings.Contains(out, "25 messages") {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	srv.Restart()
	if n := len(allHistory(t, srv.Addr, "general")); n != 20 {
		t.Fatalf("general holds %d messages after the restore, want 20", n)
	}
}

// TestClusterBackupWhileClientsSendThenRestoreIntoAnEmptyCluster: 20
// clients send through two chat nodes of a cluster while `chat-server
// backup -nats` runs; names, a read marker and a direct-message room are
// in the cluster too. `restore -nats` refuses the cluster, which holds
// messages; into a new, empty NATS it restores everything acknowledged
// before the backup began, under the same sequence numbers, with the
// claims, the marker and the direct-message room, and a new epoch.
func TestClusterBackupWhileClientsSendThenRestoreIntoAnEmptyCluster(t *testing.T) {
	old := startCluster(t, 1, 2)
	const rooms = 4
	const bobKey = "bob's key"
	bob, _ := joinAs(t, old.nodes[1].Addr, "lobby", "bob", bobKey)
	for i := range 8 {
		post(t, bob, "lobby", fmt.Sprint("l", i), "lobby talk")
	}
	// bob, lobby's first member, is its operator: a topic and a deleted
	// message are in the backup and come back with the restore.
	moderate(t, bob, &protocol.Moderate{Room: "lobby", Action: protocol.ModTopic, Text: "be kind"})
	moderate(t, bob, &protocol.Moderate{Room: "lobby", Action: protocol.ModDelete, Seq: 3})
	dm := protocol.DMRoom("bob", "sender1")
	bob.Send(&protocol.Join{Room: dm, Name: "bob", Secret: bobKey})
	until[*protocol.Joined](t, bob, nil)
	post(t, bob, dm, "d1", "hello, @sender1")
	bob.Send(&protocol.Read{Room: "lobby", Seq: 7})
	until[*protocol.Marker](t, bob, nil)
	bob.Send(&protocol.Bye{})
	g := startSenders(t, old.addrs(0), 20, rooms)
	// sender2's name is claimed now: a mention of it is kept.
	bob, _ = joinAs(t, old.nodes[1].Addr, "lobby", "bob", bobKey)
	post(t, bob, "lobby", "l8", "look, @sender2")
	bob.Send(&protocol.Bye{})
	g.waitAcks(t, 300)
	_, j := joinAs(t, old.nodes[0].Addr, "room-1", "epoch-reader", "")
	oldEpoch := j.Epoch

	ackedBefore := g.acked()
	file := filepath.Join(t.TempDir(), "cluster-backup.db")
	code, out, errOut := chatServer(t, "backup", "-nats", old.nats.URLs(), file)
	if code != 0 {
		t.Fatalf("backup -nats: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("chat-server backup -nats: %s", strings.TrimSpace(out))
	if !strings.Contains(out, "integrity check ok") {
		t.Fatalf("backup -nats did not say it checked the copy:\n%s", out)
	}
	g.waitAcks(t, 100)
	if code, _, errOut := chatServer(t, "restore", "-nats", old.nats.URLs(), file); code != 1 || !strings.Contains(errOut, "holds messages already") {
		t.Fatalf("restore into a cluster with messages: exit %d, %q", code, errOut)
	}

	// A new NATS; the old nodes stop, a new one starts on it after the
	// restore.
	fresh := natstest.Start(t, 1)
	code, out, errOut = chatServer(t, "restore", "-nats", fresh.URLs(), file)
	if code != 0 {
		t.Fatalf("restore -nats: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("chat-server restore -nats: %s", strings.TrimSpace(out))
	g.stop()
	for _, n := range old.nodes {
		if _, err := n.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	node := testserver.Start(t, testserver.Options{Args: []string{"-nats", fresh.URLs(), "-node", "new-0"}})
	checkRestored(t, rooms, ackedBefore, func(room string) []*protocol.Msg { return clusterHistory(t, node.Addr, room) })

	c, j := joinAs(t, node.Addr, "room-1", "epoch-reader", "")
	if j.Epoch == 0 || j.Epoch == oldEpoch {
		t.Errorf("epoch %d after the restore, %d before", j.Epoch, oldEpoch)
	}
	c.Send(&protocol.Bye{})
	_, j = joinAs(t, node.Addr, "lobby", "bob", bobKey)
	if j.Read != 7 || j.Head != 9 {
		t.Errorf("bob's read marker after the restore: %d (head %d), want 7 (9)", j.Read, j.Head)
	}
	checkLobbyModeration(t, "the restored cluster", j, clusterHistory(t, node.Addr, "lobby"))
	_, j = joinAs(t, node.Addr, "lobby", "sender2", g.all[2].c.Secret())
	if j.Mentions != 1 {
		t.Errorf("sender2's unread mentions in lobby after the restore: %d, want 1", j.Mentions)
	}
	_, id := identify(t, node.Addr, "bob", bobKey)
	if len(id.DMs) != 1 || id.DMs[0].Room != dm {
		t.Errorf("bob's direct-message rooms after the restore: %+v, want %s", id.DMs, dm)
	}
	thief, _ := testserver.Handshake(t, node.Addr)
	thief.Send(&protocol.Join{Room: "room-0", Name: "sender3", Secret: "not the owner's"})
	expectRefusal(t, thief, protocol.CodeNameOwned, "room-0", false)

	// The same file restores a single server: one format for both.
	single := t.TempDir()
	if code, out, errOut := chatServer(t, "restore", "-data", single, file); code != 0 {
		t.Fatalf("restore of a cluster backup into a single server: exit %d\n%s%s", code, out, errOut)
	}
	srv := testserver.Start(t, testserver.Options{Data: single})
	checkRestored(t, rooms, ackedBefore, func(room string) []*protocol.Msg { return allHistory(t, srv.Addr, room) })
	_, j = joinAs(t, srv.Addr, "lobby", "bob", bobKey)
	if j.Read != 7 || j.Head != 9 {
		t.Errorf("bob on the single server: read %d head %d, want 7 and 9", j.Read, j.Head)
	}
	checkLobbyModeration(t, "the single server", j, allHistory(t, srv.Addr, "lobby"))
}

// checkLobbyModeration checks what TestClusterBackupWhileClientsSendThenRestoreIntoAnEmptyCluster
// did as lobby's operator: the topic in JOINED, and message 3, deleted,
// in place without its text among the others, numbered without gaps but
// for seq 9: the deletion's own entry in the history (an UPDATE).
func checkLobbyModeration(t *testing.T, where string, j *protocol.Joined, history []*protocol.Msg) {
	t.Helper()
	if j.Topic != "be kind" {
		t.Errorf("lobby's topic in %s: %q, want %q", where, j.Topic, "be kind")
	}
	if len(history) != 9 {
		t.Fatalf("lobby in %s: %d messages, want 9", where, len(history))
	}
	for i, m := range history {
		want := uint64(i + 1)
		if i == 8 {
			want = 10 // after the deletion's entry
		}
		if m.Seq != want || (m.Seq == 3) != (m.Text == "") {
			t.Errorf("lobby in %s: message %d at position %d, text %q (only message 3, deleted, has none)", where, m.Seq, i, m.Text)
		}
	}
}

// TestBackupDirKeepsTheNewest: `backup -dir D -keep 2`, run three times,
// leaves the two newest backups and every file it did not write.
func TestBackupDirKeepsTheNewest(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	fillRoom(t, srv.Addr, "general", "poster", 3)
	dir := t.TempDir()
	foreign := []string{"notes.txt", "chat-important.db", "chat-19990101T000000Z.db"}
	for _, name := range foreign {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var written []string
	for i := range 3 {
		code, out, errOut := chatServer(t, "backup", "-data", srv.Data, "-dir", dir, "-keep", "2")
		if code != 0 {
			t.Fatalf("backup %d: exit %d\n%s%s", i, code, out, errOut)
		}
		m := regexp.MustCompile(` to (\S+) in `).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("backup %d did not name its file:\n%s", i, out)
		}
		written = append(written, filepath.Base(m[1]))
		if i == 2 && !strings.Contains(out, "deleted the old backup "+filepath.Join(dir, written[0])) {
			t.Errorf("the third backup did not say it deleted the first:\n%s", out)
		}
	}
	entries, _ := os.ReadDir(dir)
	var have []string
	for _, e := range entries {
		have = append(have, e.Name())
	}
	want := append(slices.Clone(foreign), written[1:]...)
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		t.Fatalf("backup directory holds %v, want %v", have, want)
	}
	if code, _, errOut := chatServer(t, "backup", "-data", srv.Data, "-keep", "2", filepath.Join(dir, "x.db")); code != 2 || !strings.Contains(errOut, "-keep") {
		t.Errorf("-keep without -dir: exit %d, %q", code, errOut)
	}
}

// TestRestoreMovesAStrayWALAside: a restore that crashed between its
// renames left chat.db-wal without chat.db. Run again, restore moves the
// stray file aside with the rest rather than let SQLite lay it over the
// restored database, which then serves its messages.
func TestRestoreMovesAStrayWALAside(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	fillRoom(t, srv.Addr, "general", "poster", 3)
	backup := filepath.Join(t.TempDir(), "b.db")
	if code, out, errOut := chatServer(t, "backup", "-data", srv.Data, backup); code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(srv.Data, "chat.db")
	if err := os.Rename(db, db+".before-restore-crashed"); err != nil {
		t.Fatal(err)
	}
	stray := []byte("not the restored database's log")
	if err := os.WriteFile(db+"-wal", stray, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := chatServer(t, "restore", "-data", srv.Data, backup)
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`kept as (\S+) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("restore did not say where it put the stray files:\n%s", out)
	}
	if b, err := os.ReadFile(m[1] + "-wal"); err != nil || !bytes.Equal(b, stray) {
		t.Fatalf("the stray -wal is not beside %s: %v", m[1], err)
	}
	again := testserver.Start(t, testserver.Options{Data: srv.Data})
	if got := len(allHistory(t, again.Addr, "general")); got != 3 {
		t.Fatalf("the restored server has %d messages in general, want 3", got)
	}
}
