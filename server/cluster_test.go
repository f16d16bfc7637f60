package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chat/client"
	"chat/internal/clienttest"
	"chat/internal/testserver"
	"chat/protocol"
	"chat/server/internal/cluster/natstest"
)

// chatCluster is n chat server processes on one NATS cluster running in
// the test process.
type chatCluster struct {
	nats  *natstest.Cluster
	nodes []*testserver.Server
}

// startCluster starts natsServers NATS servers (embedded) and chatNodes
// chat servers in cluster mode on them.
func startCluster(t *testing.T, natsServers, chatNodes int, args ...string) *chatCluster {
	t.Helper()
	c := &chatCluster{nats: natstest.Start(t, natsServers)}
	for i := range chatNodes {
		a := append([]string{"-nats", c.nats.URLs(), "-node", fmt.Sprintf("node-%d", i), "-ping", "1s"}, args...)
		c.nodes = append(c.nodes, testserver.Start(t, testserver.Options{Args: a}))
	}
	return c
}

// addrs lists the nodes' TCP addresses, starting with node first.
func (c *chatCluster) addrs(first int) []string {
	var out []string
	for i := range c.nodes {
		out = append(out, c.nodes[(first+i)%len(c.nodes)].Addr)
	}
	return out
}

// member connects a client to the cluster, preferring node first.
func (c *chatCluster) member(t *testing.T, name string, first int, rooms ...string) *clienttest.Recorder {
	t.Helper()
	r := clienttest.New(t, client.Config{Addrs: c.addrs(first), Name: name,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
	for _, room := range rooms {
		r.C.Join(room)
		r.WaitJoined(t, room)
	}
	return r
}

// ids returns the client ids of msgs, in order.
func ids(msgs []client.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Sender + "/" + m.ID
	}
	return out
}

// TestClusterNodesShareRoomsInOneOrder: three chat nodes on a 3-server
// NATS cluster; members on different nodes in one room all see every
// message once, in the same order, and agree on who is there.
func TestClusterNodesShareRoomsInOneOrder(t *testing.T) {
	c := startCluster(t, 3, 3)
	names := []string{"ann", "bob", "cy"}
	var members []*clienttest.Recorder
	for i, name := range names {
		members = append(members, c.member(t, name, i, "general"))
	}
	// Presence crosses nodes: each sees the other two arrive (or lists
	// them in JOINED).
	for i, m := range members {
		for j, other := range names {
			if i == j {
				continue
			}
			m.Wait(t, names[i]+" hears of "+other, func(ev client.Event) bool {
				switch ev := ev.(type) {
				case client.Joined:
					return slices.Contains(ev.Members, other)
				case client.Presence:
					return slices.Contains(ev.Changes, protocol.PresenceChange{Kind: protocol.PresenceJoined, Name: other})
				}
				return false
			})
		}
	}
	// Everyone sends at once, through their own nodes.
	const each = 30
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				if _, err := m.C.Send("general", fmt.Sprintf("%s %d", names[i], k)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	var first []string
	for i, m := range members {
		msgs := m.WaitMessages(t, each*len(members))
		for k, msg := range msgs {
			if msg.Seq != uint64(k+1) {
				t.Fatalf("%s: message %d has seq %d (gap or disorder)", names[i], k, msg.Seq)
			}
		}
		if i == 0 {
			first = ids(msgs)
		} else if got := ids(msgs); !slices.Equal(got, first) {
			t.Fatalf("%s saw another order than %s:\n%v\n%v", names[i], names[0], got, first)
		}
	}
	// A late joiner on any node gets the same history and member list.
	late := c.member(t, "dee", 2)
	late.C.Join("general")
	j := late.WaitJoined(t, "general")
	for _, n := range names {
		if !slices.Contains(j.Members, n) {
			t.Errorf("JOINED on node 2 lists %v, missing %s", j.Members, n)
		}
	}
	if j.Count != 4 {
		t.Errorf("JOINED count %d, want 4", j.Count)
	}
	if got := ids(late.WaitMessages(t, 90)); !slices.Equal(got, first[len(first)-90:]) {
		t.Errorf("the late joiner's history differs from what the members saw")
	}
	// Health says NATS is fine.
	for _, n := range c.nodes {
		if h := health(t, n); h.Status != "ok" || h.NATS != "ok" {
			t.Errorf("node %s: /healthz %+v", n.Addr, h)
		}
	}
}

type healthz struct {
	Code   int
	Status string
	NATS   string
}

func health(t *testing.T, n *testserver.Server) healthz {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h healthz
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	h.Code = resp.StatusCode
	return h
}

// TestClusterNodeKilledClientsMoveOn: SIGKILL the node a sender and a
// watcher use while the sender streams: both reconnect to another node,
// resume, and nothing acknowledged is lost or doubled; the outbox drains.
func TestClusterNodeKilledClientsMoveOn(t *testing.T) {
	c := startCluster(t, 3, 3)
	sender := c.member(t, "streamer", 0, "general")
	watcher := c.member(t, "watcher", 0, "general")
	far := c.member(t, "far", 2, "general") // on a node that stays

	var sent []string
	send := func(i int) {
		id, err := sender.C.Send("general", fmt.Sprint("msg ", i))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, id)
	}
	for i := range 100 {
		send(i)
	}
	n := 0
	sender.Wait(t, "some acks", func(ev client.Event) bool {
		if _, ok := ev.(client.Acked); ok {
			n++
		}
		return n >= 50
	})
	for i := 100; i < 200; i++ {
		send(i)
	}
	c.nodes[0].Kill()
	for i := 200; i < 300; i++ {
		send(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sender.C.Drain(ctx); err != nil {
		t.Fatalf("outbox did not drain after the node died: %v\n%s", err, sender.Dump())
	}
	delivered(t, sender, sent[len(sent)-1])
	for _, r := range []*clienttest.Recorder{watcher, far} {
		msgs := r.WaitMessages(t, len(sent))
		for i, m := range msgs {
			if m.Seq != uint64(i+1) {
				t.Fatalf("message %d has seq %d", i, m.Seq)
			}
		}
		if len(msgs) != len(sent) {
			t.Fatalf("%d messages seen, want %d", len(msgs), len(sent))
		}
	}
	// far is on node 2, which has delivered everything by now.
	checkStoredOnce(t, clusterHistory(t, c.nodes[2].Addr, "general"), "streamer", sent)
	// The moved members are present through their new node: a newcomer
	// on the third node is told of exactly the four names (the dead
	// node's entries were taken over, not left as ghosts).
	late := c.member(t, "late", 2, "general")
	j := late.WaitJoined(t, "general")
	slices.Sort(j.Members)
	if want := []string{"far", "late", "streamer", "watcher"}; !slices.Equal(j.Members, want) || j.Count != 4 {
		t.Errorf("JOINED after the move lists %v (count %d), want %v", j.Members, j.Count, want)
	}
}

// TestClusterWithoutQuorumStopsAcknowledging: with R3 on three NATS
// servers, losing one changes nothing; losing two stops the
// acknowledgements (the node says so: /healthz and `unavailable`), and
// once they are back the outbox drains and nothing is lost or doubled.
func TestClusterWithoutQuorumStopsAcknowledging(t *testing.T) {
	c := startCluster(t, 3, 2)
	sender := c.member(t, "streamer", 0, "general")
	var sent []string
	send := func(i int) string {
		id, err := sender.C.Send("general", fmt.Sprint("msg ", i))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, id)
		return id
	}
	ackOf := func(id string) func(client.Event) bool {
		return func(ev client.Event) bool { a, ok := ev.(client.Acked); return ok && a.ID == id }
	}
	for i := range 20 {
		send(i)
	}
	sender.Wait(t, "acks with 3 of 3", ackOf(sent[len(sent)-1]))

	c.nats.Stop(2)
	for i := 20; i < 40; i++ {
		send(i)
	}
	sender.Wait(t, "acks with 2 of 3", ackOf(sent[len(sent)-1]))

	c.nats.Stop(1)
	id := send(40)
	// No ACK: the node tells the client it cannot store, and /healthz
	// says so.
	sender.Wait(t, "the node saying it cannot store", func(ev client.Event) bool {
		sc, ok := ev.(client.StateChanged)
		var pe *protocol.Error
		return ok && errors.As(sc.Err, &pe) && pe.Code == protocol.CodeUnavailable
	})
	if _, ok := sender.WaitFor(0, ackOf(id)); ok {
		t.Fatal("a message was acknowledged with 1 NATS server of 3")
	}
	for i := 41; i < 50; i++ {
		send(i)
	}
	c.nats.Restart(1)
	c.nats.Restart(2)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := sender.C.Drain(ctx); err != nil {
		t.Fatalf("outbox did not drain once NATS was back: %v\n%s", err, sender.Dump())
	}
	delivered(t, sender, sent[len(sent)-1])
	// Read from the node that delivered the sender's last copy: another
	// node's consumer may be behind it.
	addr, _ := sender.C.Server()
	checkStoredOnce(t, clusterHistory(t, addr, "general"), "streamer", sent)
}

// clusterHistory reads every message of room through the node at addr,
// answering the node's keepalive: a long history from JetStream takes
// longer than the tests' 1 s ping.
func clusterHistory(t *testing.T, addr, room string) []*protocol.Msg {
	t.Helper()
	r, _ := testserver.Handshake(t, addr)
	r.Send(&protocol.Join{Room: room, Name: "auditor", Resume: true, After: 0})
	j := testserver.Expect[*protocol.Joined](r)
	var out []*protocol.Msg
	for seq := j.After; seq < j.Head; {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("after %d of %d history entries: %v", seq, j.Head, err)
		}
		switch m := m.(type) {
		case *protocol.Msg:
			out, seq = append(out, m), m.Seq
		case *protocol.Update: // a change: its own seq, not a message
			seq = m.Seq
		case *protocol.Ping:
			r.Send(&protocol.Pong{Nonce: m.Nonce})
		case *protocol.Error:
			t.Fatalf("after %d of %d history entries: %v", seq, j.Head, m)
		}
	}
	r.Send(&protocol.Bye{})
	return out
}

// cutter is a client dialer whose connections the test can cut.
type cutter struct {
	mu    sync.Mutex
	conns []client.Conn
	dial  client.Dialer
}

func (c *cutter) Dial(ctx context.Context, addr string) (client.Conn, error) {
	conn, err := c.dial(ctx, addr)
	if err == nil {
		c.mu.Lock()
		c.conns = append(c.conns, conn)
		c.mu.Unlock()
	}
	return conn, err
}

// cut closes the newest connection (the live one, if any).
func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.conns); n > 0 {
		c.conns[n-1].Close()
		c.conns = c.conns[n-1:]
	}
}

// TestClusterSoak: 100 clients across three nodes send for a while
// under random connection cuts and one node kill. At the end every
// acknowledged message is in history exactly once, and every client saw
// the room in history order.
func TestClusterSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak takes about a minute; -short skips it")
	}
	c := startCluster(t, 3, 3)
	const clients, perClient = 100, 50
	rng := rand.New(rand.NewPCG(1, 2))
	type soaker struct {
		r    *clienttest.Recorder
		cut  *cutter
		sent []string
	}
	var all []*soaker
	for i := range clients {
		cu := &cutter{dial: client.TLSOptions{}.Dialer()}
		r := clienttest.New(t, client.Config{Addrs: c.addrs(i % 3), Name: fmt.Sprintf("s%03d", i), Dial: cu.Dial,
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
		r.C.Join("soak")
		all = append(all, &soaker{r: r, cut: cu})
	}
	for _, s := range all {
		s.r.WaitJoined(t, "soak")
	}
	for round := range perClient {
		for _, s := range all {
			id, err := s.r.C.Send("soak", fmt.Sprintf("%s round %d", s.r.C.Name(), round))
			if err != nil {
				t.Fatal(err)
			}
			s.sent = append(s.sent, id)
		}
		for range 5 {
			all[rng.IntN(clients)].cut.cut()
		}
		if round == perClient/2 {
			c.nodes[rng.IntN(3)].Kill()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, s := range all {
		if err := s.r.C.Drain(ctx); err != nil {
			t.Fatalf("%s: outbox did not drain: %v", s.r.C.Name(), err)
		}
	}
	// Every client has the whole room first: then every live node has
	// delivered it, and a JOIN there reports the whole history.
	for _, s := range all {
		s.r.WaitMessages(t, clients*perClient)
	}
	var live *testserver.Server
	for _, n := range c.nodes {
		if n.Running() {
			live = n
			break
		}
	}
	hist := clusterHistory(t, live.Addr, "soak")
	if len(hist) != clients*perClient {
		t.Fatalf("history holds %d messages, want %d", len(hist), clients*perClient)
	}
	for _, s := range all {
		checkStoredOnce(t, hist, s.r.C.Name(), s.sent)
	}
	for _, s := range all {
		msgs := s.r.WaitMessages(t, len(hist))
		for i, m := range msgs {
			if m.Seq != hist[i].Seq || m.ID != hist[i].ID {
				for k, ev := range s.r.Events() {
					switch ev := ev.(type) {
					case client.Joined, client.StateChanged, client.RoomError:
						t.Logf("event %d: %#v", k, ev)
					case client.Message:
						if ev.Seq < 3 || (ev.Seq > uint64(i)-3 && ev.Seq < uint64(i)+3) {
							t.Logf("event %d: message seq %d", k, ev.Seq)
						}
					}
				}
				t.Fatalf("%s: message %d is seq %d id %s, history has seq %d id %s", s.r.C.Name(), i, m.Seq, m.ID, hist[i].Seq, hist[i].ID)
			}
		}
	}
}

// TestMigrateSingleServerIntoCluster: a single server's history, names,
// read markers and direct messages move into a cluster with
// `chat-server migrate`; the cluster's nodes then serve them with the same
// sequence numbers, keep the names owned, and a re-run changes nothing.
func TestMigrateSingleServerIntoCluster(t *testing.T) {
	single := testserver.Start(t, testserver.Options{})
	const aliceKey, bobKey = "alice's key", "bob's key"
	alice, _ := joinAs(t, single.Addr, "general", "alice", aliceKey)
	bob, _ := joinAs(t, single.Addr, "general", "bob", bobKey)
	for i := 1; i <= 30; i++ {
		post(t, alice, "general", fmt.Sprint("g", i), fmt.Sprint("general ", i))
	}
	dm := protocol.DMRoom("alice", "bob")
	alice.Send(&protocol.Join{Room: dm, Name: "alice", Secret: aliceKey})
	until[*protocol.Joined](t, alice, nil)
	post(t, alice, dm, "d1", "just between us")
	bob.Send(&protocol.Read{Room: "general", Seq: 12})
	until[*protocol.Marker](t, bob, nil)
	before := allHistory(t, single.Addr, "general")
	if _, err := single.Stop(); err != nil {
		t.Fatal(err)
	}

	nats := natstest.Start(t, 1)
	migrate := func() string {
		t.Helper()
		out, err := exec.Command(testserver.Binary(t), "migrate", "-from-sqlite", single.Data, "-nats", nats.URLs()).CombinedOutput()
		if err != nil {
			t.Fatalf("chat-server migrate: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := migrate(); !strings.Contains(out, "migrated") {
		t.Fatalf("chat-server migrate said:\n%s", out)
	}
	migrate() // again: nothing to do, nothing doubled

	node := testserver.Start(t, testserver.Options{Args: []string{"-nats", nats.URLs()}})
	after := clusterHistory(t, node.Addr, "general")
	if len(after) != len(before) {
		t.Fatalf("%d messages after the migration, %d before", len(after), len(before))
	}
	for i := range before {
		if !reflect.DeepEqual(*after[i], *before[i]) {
			t.Fatalf("message %d changed: %+v, was %+v", i, after[i], before[i])
		}
	}
	// Bob's marker and the DM came along; the names stay owned.
	_, j := joinAs(t, node.Addr, "general", "bob", bobKey)
	if j.Read != 12 || j.Head != 30 {
		t.Errorf("bob's JOINED in the cluster: read %d head %d, want 12 and 30", j.Read, j.Head)
	}
	_, id := identify(t, node.Addr, "bob", bobKey)
	if len(id.DMs) != 1 || id.DMs[0].Room != dm {
		t.Errorf("bob's direct-message rooms in the cluster: %+v, want %s", id.DMs, dm)
	}
	thief, _ := testserver.Handshake(t, node.Addr)
	thief.Send(&protocol.Join{Room: "general", Name: "alice", Secret: "not alice's key"})
	expectRefusal(t, thief, protocol.CodeNameOwned, "general", false)
	// New messages continue the numbering.
	a2, _ := joinAs(t, node.Addr, "general", "alice", aliceKey)
	if ack := post(t, a2, "general", "g31", "after the move"); ack.Seq != 31 {
		t.Errorf("the first message in the cluster got seq %d, want 31", ack.Seq)
	}
	a2.Send(&protocol.Bye{})
	// The operator releases a name in the cluster; its next user claims it.
	out, err := exec.Command(testserver.Binary(t), "-release-name", "alice", "-nats", nats.URLs()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `released the name "alice"`) {
		t.Fatalf("-release-name in the cluster: %v\n%s", err, out)
	}
	newAlice, _ := testserver.Handshake(t, node.Addr)
	newAlice.Send(&protocol.Join{Room: "random", Name: "alice", Secret: "the new alice"})
	testserver.Expect[*protocol.Joined](newAlice)
}

// TestClusterOverTLSToNATS: a node reaches NATS over TLS with the CA given
// by -nats-ca; without it, it refuses to start and says why.
func TestClusterOverTLSToNATS(t *testing.T) {
	cert, key, _ := testserver.SelfSigned(t, t.TempDir())
	nats := natstest.StartWith(t, 1, natstest.Options{TLSCert: cert, TLSKey: key})
	node := testserver.Start(t, testserver.Options{Args: []string{"-nats", nats.URLs(), "-nats-ca", cert}})
	r, _ := joinAs(t, node.Addr, "general", "ann", "ann's key")
	if ack := post(t, r, "general", "m1", "over TLS to NATS"); ack.Seq != 1 {
		t.Fatalf("ACK seq %d", ack.Seq)
	}
	out, err := exec.Command(testserver.Binary(t), "-nats", nats.URLs(), "-tcp", "127.0.0.1:0", "-http", "",
		"-data", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not trusted (give its CA with -nats-ca)") {
		t.Errorf("a node without the CA: %v\n%s", err, out)
	}
}

// TestMigrateRefusesARunningServer: migrating while the single server
// still writes would miss what it stores meanwhile, so migrate refuses
// with a sentence while the server holds its data directory (before
// dialling NATS: the URL here is never used).
func TestMigrateRefusesARunningServer(t *testing.T) {
	single := testserver.Start(t, testserver.Options{})
	out, err := exec.Command(testserver.Binary(t), "migrate", "-from-sqlite", single.Data, "-nats", "nats://127.0.0.1:1").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("migrate under a running server: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "a chat server is running on "+single.Data) || !strings.Contains(string(out), "stop it first") {
		t.Fatalf("migrate's refusal: %s", out)
	}
}
