package main

// Moderation through real sockets: the server binary with an operator
// token, raw protocol connections from distinct loopback addresses.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"chat/internal/testserver"
	"chat/protocol"
)

const testOperToken = "the-operators-token"

func startModServer(t *testing.T) *testserver.Server {
	t.Helper()
	return testserver.Start(t, testserver.Options{Args: []string{"-operator-token", testOperToken}})
}

// dialFrom connects to addr from the loopback address local (127.0.0.2,
// 127.0.0.3, …: Linux routes all of 127/8 to lo) and says HELLO.
func dialFrom(t *testing.T, addr, local string) *testserver.Raw {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := testserver.Wrap(t, c)
	r.Send(&protocol.Hello{Version: protocol.Version, Client: "raw-test"})
	w := testserver.Expect[*protocol.Welcome](r)
	if w.Flags&protocol.WelcomeModeration == 0 {
		t.Fatalf("WELCOME flags %b: no moderation bit", w.Flags)
	}
	return r
}

// await reads frames until one of type T matches ok, skipping the others;
// a closing ERROR or a closed connection fails the test.
func await[T protocol.Message](t *testing.T, r *testserver.Raw, what string, ok func(T) bool) T {
	t.Helper()
	for {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("%s: waiting for %s: %v", r, what, err)
		}
		if v, is := m.(T); is && (ok == nil || ok(v)) {
			return v
		}
		if e, is := m.(*protocol.Error); is && e.Closing() {
			t.Fatalf("%s: waiting for %s: %v", r, what, e)
		}
	}
}

// refusal reads until an ERROR and checks its code and room.
func refusal(t *testing.T, r *testserver.Raw, what string, code protocol.ErrorCode, room string) *protocol.Error {
	t.Helper()
	e := await[*protocol.Error](t, r, what, nil)
	if e.Code != code || e.Room != room || e.Closing() {
		t.Fatalf("%s: got %v (flags %d, room %q), want %v in %q, not closing", what, e, e.Flags, e.Room, code, room)
	}
	return e
}

func modJoin(t *testing.T, r *testserver.Raw, room, name, secret string) *protocol.Joined {
	t.Helper()
	r.Send(&protocol.Join{Room: room, Name: name, Secret: secret})
	return await[*protocol.Joined](t, r, name+" joined "+room, nil)
}

// moderate sends a MODERATE and waits for its MODERATED.
func moderate(t *testing.T, r *testserver.Raw, m *protocol.Moderate) *protocol.Moderated {
	t.Helper()
	r.Send(m)
	for {
		msg, err := r.Read()
		if err != nil {
			t.Fatalf("%v: %v", m.Action, err)
		}
		switch v := msg.(type) {
		case *protocol.Moderated:
			if v.Action != m.Action {
				t.Fatalf("MODERATED %v for a MODERATE %v", v.Action, m.Action)
			}
			return v
		case *protocol.Error:
			t.Fatalf("MODERATE %v %q: %v", m.Action, m.Target, v)
		}
	}
}

func modEvent(t *testing.T, r *testserver.Raw, action protocol.ModAction) *protocol.ModEvent {
	t.Helper()
	return await(t, r, "MODEVENT "+action.String(), func(ev *protocol.ModEvent) bool { return ev.Action == action })
}

// TestModerationKickBanByName: the first proven name is the room's
// operator; others are forbidden to moderate; a kicked member may come
// back, a banned name may not, under any spelling, until unbanned.
func TestModerationKickBanByName(t *testing.T) {
	srv := startModServer(t)
	alice := dialFrom(t, srv.Addr, "127.0.0.1")
	if j := modJoin(t, alice, "General", "Alice", "alice-key"); j.Modes != protocol.ModeOperator || j.Topic != "" {
		t.Fatalf("the room's first proven name: modes %b topic %q, want operator", j.Modes, j.Topic)
	}
	mallory := dialFrom(t, srv.Addr, "127.0.0.1")
	if j := modJoin(t, mallory, "general", "mallory", "mallory-key"); j.Modes != 0 {
		t.Fatalf("mallory's modes %b", j.Modes)
	}
	bob := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, bob, "general", "bob", "")

	// Not operators: forbidden, and nothing happens.
	mallory.Send(&protocol.Moderate{Room: "general", Action: protocol.ModBan, Target: "alice"})
	refusal(t, mallory, "mallory's ban", protocol.CodeForbidden, "general")
	bob.Send(&protocol.Moderate{Room: "GENERAL", Action: protocol.ModKick, Target: "alice"})
	refusal(t, bob, "bob's kick", protocol.CodeForbidden, "general")
	// An operator's name joined without its key has no rights either.
	aliceNoKey := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, aliceNoKey, "random", "alice", "alice-key")
	aliceNoKey.Send(&protocol.Moderate{Room: "general", Action: protocol.ModKick, Target: "bob"})
	refusal(t, aliceNoKey, "a kick for a room not joined", protocol.CodeForbidden, "general")
	// Unknown actions and absent targets.
	alice.Send(&protocol.Moderate{Room: "general", Action: 99, Target: "bob"})
	refusal(t, alice, "action 99", protocol.CodeNotFound, "")
	alice.Send(&protocol.Moderate{Room: "general", Action: protocol.ModKick, Target: "nobody"})
	refusal(t, alice, "a kick of a name not in the room", protocol.CodeNotFound, "general")

	// Kick: everyone sees it, bob gets kicked, and may join again.
	if got := moderate(t, alice, &protocol.Moderate{Room: "general", Action: protocol.ModKick, Target: "Bob", Text: "calm down"}); got.Target != "bob" || got.Room != "general" {
		t.Fatalf("MODERATED %+v", got)
	}
	for _, r := range []*testserver.Raw{mallory, bob} {
		ev := modEvent(t, r, protocol.ModKick)
		if ev.Actor != "Alice" || ev.Target != "bob" || ev.Text != "calm down" || ev.Room != "general" {
			t.Fatalf("kick event %+v", ev)
		}
	}
	refusal(t, bob, "bob's kick", protocol.CodeKicked, "general")
	await(t, mallory, "bob left", func(p *protocol.Presence) bool {
		return slices.Contains(p.Changes, protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: "bob"})
	})
	// Out of the room: a SEND is as for a room not joined (closing), so
	// check with a new JOIN instead, which works.
	modJoin(t, bob, "general", "bob", "")

	// Ban with a reason, for an hour.
	moderate(t, alice, &protocol.Moderate{Room: "general", Action: protocol.ModBan, Target: "mallory", Seconds: 3600, Text: "spam"})
	ev := modEvent(t, bob, protocol.ModBan)
	if ev.Target != "mallory" || ev.Text != "spam" || ev.Until < protocol.Millis(time.Now().Add(59*time.Minute)) {
		t.Fatalf("ban event %+v", ev)
	}
	modEvent(t, mallory, protocol.ModBan)
	if e := refusal(t, mallory, "mallory's ban", protocol.CodeBanned, "general"); !strings.Contains(e.Text, "until") || !strings.Contains(e.Text, "spam") {
		t.Fatalf("ban text %q does not say until when and why", e.Text)
	}
	for _, name := range []string{"mallory", "MALLORY", "ｍａｌｌｏｒｙ"} {
		again := dialFrom(t, srv.Addr, "127.0.0.3")
		again.Send(&protocol.Join{Room: "general", Name: name, Secret: "mallory-key"})
		refusal(t, again, "a banned name's join as "+name, protocol.CodeBanned, "general")
	}
	// Other rooms are not concerned.
	modJoin(t, mallory, "random", "mallory", "mallory-key")

	moderate(t, alice, &protocol.Moderate{Room: "general", Action: protocol.ModUnban, Target: "Mallory"})
	modEvent(t, bob, protocol.ModUnban)
	modJoin(t, mallory, "general", "mallory", "mallory-key")
	alice.Send(&protocol.Moderate{Room: "general", Action: protocol.ModUnban, Target: "mallory"})
	refusal(t, alice, "an unban of a name not banned", protocol.CodeNotFound, "general")
}

// TestModerationBanAddress: a ban by address removes every connection in
// the room from the target's address (IPv4: the address), whatever its
// name, and refuses joins from it; other addresses are not touched.
func TestModerationBanAddress(t *testing.T) {
	srv := startModServer(t)
	alice := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, alice, "general", "alice", "alice-key")
	troll := dialFrom(t, srv.Addr, "127.0.0.2")
	modJoin(t, troll, "general", "troll", "")
	sock := dialFrom(t, srv.Addr, "127.0.0.2")
	modJoin(t, sock, "general", "sockpuppet", "")
	nice := dialFrom(t, srv.Addr, "127.0.0.3")
	modJoin(t, nice, "general", "nice", "")

	got := moderate(t, alice, &protocol.Moderate{Room: "general", Action: protocol.ModBanAddress, Target: "troll"})
	if got.Target != "troll" {
		t.Fatalf("MODERATED %+v", got)
	}
	ev := modEvent(t, nice, protocol.ModBanAddress)
	if ev.Target != "troll" || strings.Contains(ev.Text, "127.") {
		t.Fatalf("the event %+v must name the target, never its address", ev)
	}
	refusal(t, troll, "the target's removal", protocol.CodeBanned, "general")
	refusal(t, sock, "the same address's other name", protocol.CodeBanned, "general")

	fresh := dialFrom(t, srv.Addr, "127.0.0.2")
	fresh.Send(&protocol.Join{Room: "general", Name: "fresh"})
	refusal(t, fresh, "a join from the banned address", protocol.CodeBanned, "general")
	modJoin(t, dialFrom(t, srv.Addr, "127.0.0.3"), "general", "fresh", "")

	// nice is still in and can talk.
	nice.Send(&protocol.Send{Room: "general", ID: "n1", Text: "still here"})
	await(t, nice, "nice's ACK", func(*protocol.Ack) bool { return true })
	await(t, alice, "nice's message", func(m *protocol.Msg) bool { return m.Text == "still here" })

	moderate(t, alice, &protocol.Moderate{Room: "general", Action: protocol.ModUnban, Target: "127.0.0.2"})
	if ev := modEvent(t, nice, protocol.ModUnban); ev.Target != "" {
		t.Fatalf("an address unban's event names %q", ev.Target)
	}
	modJoin(t, fresh, "general", "fresh2", "")
}

// TestModerationMute: a muted name's SENDs are refused and not stored,
// others' go through; JOINED tells the muted name; unmute lifts it.
func TestModerationMute(t *testing.T) {
	srv := startModServer(t)
	alice := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, alice, "general", "alice", "alice-key")
	bob := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, bob, "general", "bob", "bob-key")
	carol := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, carol, "general", "carol", "")

	moderate(t, alice, &protocol.Moderate{Room: "general", Action: protocol.ModMute, Target: "bob", Seconds: 600})
	if ev := modEvent(t, bob, protocol.ModMute); ev.Target != "bob" || ev.Until == 0 {
		t.Fatalf("mute event %+v", ev)
	}
	bob.Send(&protocol.Send{Room: "General", ID: "b1", Text: "can you hear me"})
	if e := refusal(t, bob, "bob's muted SEND", protocol.CodeMuted, "general"); !strings.Contains(e.Text, "not sent") {
		t.Fatalf("muted text %q", e.Text)
	}
	carol.Send(&protocol.Send{Room: "general", ID: "c1", Text: "carol talks"})
	m := await(t, alice, "carol's message", func(*protocol.Msg) bool { return true })
	if m.Text != "carol talks" || m.Seq != 1 {
		t.Fatalf("the first stored message is %d %q: bob's muted one was stored", m.Seq, m.Text)
	}
	// Another device of bob joins: JOINED says muted.
	bob2 := dialFrom(t, srv.Addr, "127.0.0.1")
	if j := modJoin(t, bob2, "general", "bob", "bob-key"); j.Modes != protocol.ModeMuted {
		t.Fatalf("bob's JOINED modes %b, want muted", j.Modes)
	}
	moderate(t, alice, &protocol.Moderate{Room: "general", Action: protocol.ModUnmute, Target: "bob"})
	modEvent(t, bob, protocol.ModUnmute)
	bob.Send(&protocol.Send{Room: "general", ID: "b2", Text: "back"})
	if a := await(t, bob, "bob's ACK", func(*protocol.Ack) bool { return true }); a.Seq != 2 {
		t.Fatalf("bob's message stored as %d", a.Seq)
	}
	alice.Send(&protocol.Moderate{Room: "general", Action: protocol.ModUnmute, Target: "bob"})
	refusal(t, alice, "unmute of a name not muted", protocol.CodeNotFound, "general")
}

// TestModerationServerOperatorAndTopic: the token makes a server
// operator, who sets a topic in a room it is not in; JOINED carries the
// topic; a wrong token is forbidden.
func TestModerationServerOperatorAndTopic(t *testing.T) {
	srv := startModServer(t)
	alice := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, alice, "general", "alice", "alice-key")
	oper := dialFrom(t, srv.Addr, "127.0.0.1")
	oper.Send(&protocol.Moderate{Room: "general", Action: protocol.ModTopic, Text: "not yet"})
	refusal(t, oper, "a topic before oper", protocol.CodeForbidden, "general")
	oper.Send(&protocol.Moderate{Action: protocol.ModOper, Text: "guess"})
	refusal(t, oper, "a wrong token", protocol.CodeForbidden, "")
	moderate(t, oper, &protocol.Moderate{Action: protocol.ModOper, Text: testOperToken})
	moderate(t, oper, &protocol.Moderate{Room: "General", Action: protocol.ModTopic, Text: "Friday: release party"})
	ev := modEvent(t, alice, protocol.ModTopic)
	if ev.Actor != "operator" || ev.Text != "Friday: release party" || ev.Target != "" {
		t.Fatalf("topic event %+v", ev)
	}
	// The server operator makes bob an operator; bob's JOINED says so.
	moderate(t, oper, &protocol.Moderate{Room: "general", Action: protocol.ModOp, Target: "bob"})
	bob := dialFrom(t, srv.Addr, "127.0.0.1")
	j := modJoin(t, bob, "general", "bob", "bob-key")
	if j.Topic != "Friday: release party" || j.Modes != protocol.ModeOperator {
		t.Fatalf("bob's JOINED: topic %q modes %b", j.Topic, j.Modes)
	}
	// A server operator in the room cannot be kicked by a room operator.
	if j := modJoin(t, oper, "general", "root", ""); j.Modes != protocol.ModeOperator {
		t.Fatalf("a server operator's JOINED modes %b, want operator", j.Modes)
	}
	moderate(t, bob, &protocol.Moderate{Room: "general", Action: protocol.ModKick, Target: "root"})
	modEvent(t, oper, protocol.ModKick)
	oper.Send(&protocol.Send{Room: "general", ID: "o1", Text: "still in"})
	await(t, oper, "the server operator's ACK", func(*protocol.Ack) bool { return true })

	// Without a token on the server, nobody becomes an operator.
	plain := testserver.Start(t, testserver.Options{})
	r := dialFrom(t, plain.Addr, "127.0.0.1")
	r.Send(&protocol.Moderate{Action: protocol.ModOper, Text: ""})
	refusal(t, r, "oper on a server without a token", protocol.CodeForbidden, "")
}

// TestModerationInviteOnly: an invite-only room admits its operators,
// the names present when it closed, and names with a valid invite code
// (which stay allowed); unknown and expired codes are refused.
func TestModerationInviteOnly(t *testing.T) {
	srv := startModServer(t)
	alice := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, alice, "club", "alice", "alice-key")
	bob := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, bob, "club", "bob", "bob-key")
	moderate(t, alice, &protocol.Moderate{Room: "club", Action: protocol.ModInviteOnlyOn})
	modEvent(t, bob, protocol.ModInviteOnlyOn)

	carol := dialFrom(t, srv.Addr, "127.0.0.1")
	carol.Send(&protocol.Join{Room: "club", Name: "carol", Secret: "carol-key"})
	refusal(t, carol, "a join without a code", protocol.CodeInviteOnly, "club")
	carol.Send(&protocol.Join{Room: "club", Name: "carol", Secret: "carol-key", Invite: "made-up"})
	if e := refusal(t, carol, "a join with an unknown code", protocol.CodeInviteOnly, "club"); !strings.Contains(e.Text, "unknown or expired") {
		t.Fatalf("text %q", e.Text)
	}
	inv := moderate(t, alice, &protocol.Moderate{Room: "club", Action: protocol.ModInvite})
	if len(inv.Text) < 8 {
		t.Fatalf("invite code %q", inv.Text)
	}
	carol.Send(&protocol.Join{Room: "club", Name: "carol", Secret: "carol-key", Invite: inv.Text})
	if j := await[*protocol.Joined](t, carol, "carol's join with the code", nil); j.Modes != protocol.ModeInviteOnly {
		t.Fatalf("carol's JOINED modes %b", j.Modes)
	}
	// Carol stays allowed, without the code.
	carol.Send(&protocol.Leave{Room: "club"})
	await[*protocol.Left](t, carol, "LEFT", nil)
	modJoin(t, carol, "club", "carol", "carol-key")
	// Bob was in when the room closed: another device of his gets in.
	modJoin(t, dialFrom(t, srv.Addr, "127.0.0.1"), "club", "bob", "bob-key")
	// A name without a key is admitted by a code, but not remembered.
	erin := dialFrom(t, srv.Addr, "127.0.0.1")
	erin.Send(&protocol.Join{Room: "club", Name: "erin", Invite: inv.Text})
	await[*protocol.Joined](t, erin, "erin's join with the code", nil)
	erin.Send(&protocol.Leave{Room: "club"})
	await[*protocol.Left](t, erin, "LEFT", nil)
	erin.Send(&protocol.Join{Room: "club", Name: "erin"})
	refusal(t, erin, "erin again without the code", protocol.CodeInviteOnly, "club")

	short := moderate(t, alice, &protocol.Moderate{Room: "club", Action: protocol.ModInvite, Seconds: 1})
	// Time passing is what is tested: the code expires after a second.
	time.Sleep(1100 * time.Millisecond)
	dave := dialFrom(t, srv.Addr, "127.0.0.1")
	dave.Send(&protocol.Join{Room: "club", Name: "dave", Secret: "dave-key", Invite: short.Text})
	refusal(t, dave, "a join with an expired code", protocol.CodeInviteOnly, "club")

	moderate(t, alice, &protocol.Moderate{Room: "club", Action: protocol.ModInviteOnlyOff})
	if j := modJoin(t, dave, "club", "dave", "dave-key"); j.Modes != 0 {
		t.Fatalf("dave's JOINED modes %b after invite-only-off", j.Modes)
	}
}

// TestModerationDeleteHidesTheText: a deleted message keeps its place with
// an empty text for everyone who reads it later (JOINED replay from the
// server's memory, PAGE from the database, and after a restart), and the
// audit log records the deletion without the text.
func TestModerationDeleteHidesTheText(t *testing.T) {
	srv := startModServer(t)
	alice := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, alice, "general", "alice", "alice-key")
	bob := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, bob, "general", "bob", "")
	for i, text := range []string{"one", "my password is hunter2", "three"} {
		bob.Send(&protocol.Send{Room: "general", ID: fmt.Sprint("b", i), Text: text})
		await(t, bob, "ACK", func(*protocol.Ack) bool { return true })
	}
	alice.Messages(3)
	moderate(t, alice, &protocol.Moderate{Room: "general", Action: protocol.ModDelete, Seq: 2})
	if ev := modEvent(t, bob, protocol.ModDelete); ev.Seq != 2 || ev.Actor != "alice" || ev.Text != "" {
		t.Fatalf("delete event %+v", ev)
	}
	alice.Send(&protocol.Moderate{Room: "general", Action: protocol.ModDelete, Seq: 9})
	refusal(t, alice, "a delete of a message that does not exist", protocol.CodeNotFound, "general")

	check := func(what string, msgs []*protocol.Msg) {
		t.Helper()
		want := []string{"one", "", "three"}
		if len(msgs) != 3 {
			t.Fatalf("%s: %d messages", what, len(msgs))
		}
		for i, m := range msgs {
			if m.Seq != uint64(i+1) || m.Text != want[i] || m.Sender != "bob" || m.ID != fmt.Sprint("b", i) {
				t.Fatalf("%s: message %d is %+v, want text %q", what, i+1, m, want[i])
			}
		}
	}
	carol := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, carol, "general", "carol", "")
	check("the JOINED replay", carol.Messages(3))
	carol.Send(&protocol.History{Room: "general", Before: 4})
	page := await[*protocol.Page](t, carol, "PAGE", nil)
	var fromPage []*protocol.Msg
	for i := range page.Messages {
		fromPage = append(fromPage, &page.Messages[i])
	}
	check("the PAGE", fromPage)

	// The audit log, read by the subcommand while the server runs.
	out, err := exec.Command(testserver.Binary(t), "audit", "-data", srv.Data).CombinedOutput()
	if err != nil {
		t.Fatalf("chat-server audit: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("action=delete")) || !bytes.Contains(out, []byte("seq=2")) || !bytes.Contains(out, []byte(`actor="alice"`)) ||
		!bytes.Contains(out, []byte(`room="general"`)) || !bytes.Contains(out, []byte("remote=127.0.0.1:")) {
		t.Fatalf("the audit log does not record the deletion:\n%s", out)
	}
	if bytes.Contains(out, []byte("hunter2")) {
		t.Fatalf("the audit log holds the message's text:\n%s", out)
	}
	recs := srv.LogRecords("moderation")
	if len(recs) == 0 || strings.Contains(fmt.Sprint(recs), "hunter2") {
		t.Fatalf("the server's moderation log lines: %v", recs)
	}

	// After a restart the text is still gone (it was removed from the
	// database, not hidden in memory).
	srv.Restart()
	dave := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, dave, "general", "dave", "")
	check("the replay after a restart", dave.Messages(3))
}

// TestAuditSubcommand: -room filters, -n bounds, and a missing database
// is a sentence and exit 1.
func TestAuditSubcommand(t *testing.T) {
	srv := startModServer(t)
	alice := dialFrom(t, srv.Addr, "127.0.0.1")
	modJoin(t, alice, "general", "alice", "alice-key")
	modJoin(t, alice, "random", "alice", "alice-key")
	moderate(t, alice, &protocol.Moderate{Room: "general", Action: protocol.ModTopic, Text: "first"})
	moderate(t, alice, &protocol.Moderate{Room: "random", Action: protocol.ModTopic, Text: "second"})
	moderate(t, alice, &protocol.Moderate{Room: "general", Action: protocol.ModTopic, Text: "third"})
	run := func(args ...string) string {
		out, err := exec.Command(testserver.Binary(t), append([]string{"audit", "-data", srv.Data}, args...)...).Output()
		if err != nil {
			t.Fatalf("audit %v: %v", args, err)
		}
		return string(out)
	}
	if out := run("-room", "General"); strings.Count(out, "\n") != 2 || !strings.Contains(out, `detail="first"`) || strings.Contains(out, "second") {
		t.Fatalf("-room general:\n%s", out)
	}
	if out := run("-n", "1"); strings.Count(out, "\n") != 1 || !strings.Contains(out, `detail="third"`) {
		t.Fatalf("-n 1:\n%s", out)
	}
	cmd := exec.Command(testserver.Binary(t), "audit", "-data", t.TempDir())
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "no chat database") {
		t.Fatalf("audit of an empty directory: %v\n%s", err, out)
	}
}

// TestOperatorTokenFromFileAndEnvironment: the token may come from a file
// (trimmed) or CHAT_OPERATOR_TOKEN; an empty file is a sentence and exit 1.
func TestOperatorTokenFromFileAndEnvironment(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := testserver.Start(t, testserver.Options{Args: []string{"-operator-token-file", file}})
	r := dialFrom(t, srv.Addr, "127.0.0.1")
	moderate(t, r, &protocol.Moderate{Action: protocol.ModOper, Text: "from-a-file"})

	env := testserver.Start(t, testserver.Options{Env: []string{"CHAT_OPERATOR_TOKEN=from-the-env"}})
	r = dialFrom(t, env.Addr, "127.0.0.1")
	r.Send(&protocol.Moderate{Action: protocol.ModOper, Text: "from-a-file"})
	refusal(t, r, "another server's token", protocol.CodeForbidden, "")
	moderate(t, r, &protocol.Moderate{Action: protocol.ModOper, Text: "from-the-env"})

	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code := run(context.Background(), []string{"-operator-token-file", empty, "-data", t.TempDir(), "-tcp", "127.0.0.1:0", "-http", ""},
		func(string) string { return "" }, &out, &out)
	if code != 1 || !strings.Contains(out.String(), "-operator-token-file "+empty+" is empty") {
		t.Fatalf("an empty token file: exit %d, %q", code, out.String())
	}
}

// TestModerationKickAcrossClusterNodes: two chat server processes on one
// NATS; a kick made through node 0 removes the member connected to node
// 1, which gets the MODEVENT and ERROR kicked, and the room's other member
// on node 1 sees the event too.
func TestModerationKickAcrossClusterNodes(t *testing.T) {
	c := startCluster(t, 1, 2, "-operator-token", testOperToken)
	alice := dialFrom(t, c.nodes[0].Addr, "127.0.0.1")
	modJoin(t, alice, "general", "alice", "alice-key")
	bob := dialFrom(t, c.nodes[1].Addr, "127.0.0.1")
	modJoin(t, bob, "general", "bob", "")
	carol := dialFrom(t, c.nodes[1].Addr, "127.0.0.1")
	modJoin(t, carol, "general", "carol", "")
	// Bob is present for node 0 once alice hears of him.
	await(t, alice, "bob's presence on node 0", func(p *protocol.Presence) bool {
		return slices.Contains(p.Changes, protocol.PresenceChange{Kind: protocol.PresenceJoined, Name: "bob"})
	})
	moderate(t, alice, &protocol.Moderate{Room: "general", Action: protocol.ModKick, Target: "bob", Text: "across"})
	for _, r := range []*testserver.Raw{bob, carol} {
		if ev := modEvent(t, r, protocol.ModKick); ev.Target != "bob" || ev.Actor != "alice" || ev.Text != "across" {
			t.Fatalf("kick event on node 1: %+v", ev)
		}
	}
	refusal(t, bob, "bob kicked on node 1", protocol.CodeKicked, "general")
	await(t, carol, "bob left", func(p *protocol.Presence) bool {
		return slices.Contains(p.Changes, protocol.PresenceChange{Kind: protocol.PresenceLeft, Name: "bob"})
	})
	modJoin(t, bob, "general", "bob", "")
}
