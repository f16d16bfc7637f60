package moderation

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                "192.0.2.7/32",
		"::ffff:192.0.2.7":         "192.0.2.7/32",
		"2001:db8:1:2:aaaa::1":     "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff::": "2001:db8:1:2::/64",
	} {
		if got := Network(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("Network(%s) = %s, want %s", in, got, want)
		}
	}
	if a := ParseRemote("127.0.0.2:4567"); a != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("ParseRemote host:port = %v", a)
	}
	if a := ParseRemote("[2001:db8::1]:80"); a != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("ParseRemote [v6]:port = %v", a)
	}
	if a := ParseRemote("test"); a.IsValid() {
		t.Errorf("ParseRemote of no address = %v", a)
	}
}

func TestBansMutesInvites(t *testing.T) {
	now := time.UnixMilli(1767225600000)
	later := now.Add(time.Hour)
	st := &State{}
	l := Limits{MaxBans: 3, MaxMutes: 1, MaxInvites: 2, MaxAllowed: 2, MaxOps: 1}
	if err := st.AddBan(Ban{Name: "mallory", Until: now.Add(time.Minute).UnixMilli()}, now, l); err != nil {
		t.Fatal(err)
	}
	if err := st.AddBan(Ban{Net: Network(netip.MustParseAddr("2001:db8::1")).String()}, now, l); err != nil {
		t.Fatal(err)
	}
	if st.NameBan("mallory", now) == nil || st.NameBan("mallory", later) != nil {
		t.Error("a timed name ban is not in force until its end, and only until then")
	}
	if st.AddrBan(netip.MustParseAddr("2001:db8::ffff"), later) == nil {
		t.Error("an address of the banned /64 is not banned")
	}
	if st.AddrBan(netip.MustParseAddr("2001:db8:0:1::1"), now) != nil {
		t.Error("an address of another /64 is banned")
	}
	// The same name again replaces its ban rather than adding one.
	if err := st.AddBan(Ban{Name: "mallory"}, now, l); err != nil || len(st.Bans) != 2 {
		t.Fatalf("re-ban: %v, %d bans", err, len(st.Bans))
	}
	if err := st.AddBan(Ban{Name: "trudy"}, now, l); err != nil {
		t.Fatal(err)
	}
	if err := st.AddBan(Ban{Name: "eve"}, now, l); !errors.Is(err, ErrFull) {
		t.Fatalf("a fourth ban with a limit of 3: %v", err)
	}
	if !st.Unban("", netip.MustParseAddr("2001:db8::42")) || st.AddrBan(netip.MustParseAddr("2001:db8::1"), now) != nil {
		t.Error("unban by an address of the /64 did not lift the ban")
	}
	if st.Unban("nobody", netip.Addr{}) {
		t.Error("unban of a name never banned reported a change")
	}

	if err := st.AddMute("trudy", later.UnixMilli(), now, l); err != nil {
		t.Fatal(err)
	}
	if st.MuteOf("trudy", now) == nil || st.MuteOf("trudy", later) != nil {
		t.Error("a timed mute is not in force until its end")
	}
	if err := st.AddMute("eve", 0, now, l); !errors.Is(err, ErrFull) {
		t.Fatalf("a second mute with a limit of 1: %v", err)
	}
	if !st.Unmute("trudy", now) || st.Unmute("trudy", now) {
		t.Error("unmute reported wrongly")
	}

	for _, c := range []string{"a", "b", "c"} {
		st.AddInvite(Invite{Code: c, Until: later.UnixMilli()}, now, l)
	}
	if len(st.Invites) != 2 || st.ValidInvite("a", now) || !st.ValidInvite("c", now) || st.ValidInvite("c", later) {
		t.Errorf("invites at a limit of 2: %#v", st.Invites)
	}
	if st.ValidInvite("", now) {
		t.Error("the empty code is valid")
	}
	for _, n := range []string{"bob", "carol", "dave"} {
		st.Allow(n, l)
	}
	if st.IsAllowed("bob") || !st.IsAllowed("dave") {
		t.Errorf("allowed at a limit of 2: %v", st.Allowed)
	}
	if ok, _ := st.AddOp("alice", l); !ok || !st.IsAllowed("alice") {
		t.Error("an operator is not allowed in")
	}
	if _, err := st.AddOp("zoe", l); !errors.Is(err, ErrFull) {
		t.Errorf("a second operator with a limit of 1: %v", err)
	}
	st.Prune(later)
	if len(st.Invites) != 0 || st.NameBan("mallory", later) == nil {
		t.Errorf("prune: invites %v; the ban for good must stay", st.Invites)
	}
}
