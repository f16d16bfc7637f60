package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"chat/server/internal/cluster/natstest"
)

// storesDial connects a node named name to the NATS servers of n, closed
// when the test ends.
func storesDial(t *testing.T, n *natstest.Cluster, name string) *Conn {
	t.Helper()
	return storesDialURL(t, n.URLs(), name)
}

// storesDialURL connects a node named name to the NATS server(s) at url,
// closed when the test ends. Dial provisions the stream and buckets; in
// a young NATS cluster on a loaded machine the meta leader may still
// count a server offline now and then ("no suitable peers for
// placement"), so a failed Dial is tried again, a bounded number of
// times: provisioning is idempotent.
func storesDialURL(t *testing.T, url, name string) *Conn {
	t.Helper()
	var err error
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		var c *Conn
		c, err = Dial(ctx, Options{URLs: []string{url}, Name: name})
		cancel()
		if err == nil {
			t.Cleanup(func() {
				if err := c.Close(); err != nil {
					t.Error(err)
				}
			})
			return c
		}
		t.Logf("dial %s: %v; again", name, err)
	}
	t.Fatal(err)
	return nil
}

func TestNamesAreClaimedByTheirFirstSecret(t *testing.T) {
	n := natstest.Start(t, 1)
	c := storesDial(t, n, "node-a")
	names := c.Names()
	ctx := context.Background()
	claim := func(name, secret string) bool {
		t.Helper()
		ok, err := names.Claim(ctx, name, secret)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for range 2 { // and it stays unclaimed
		if !claim("guest", "") {
			t.Fatal("an unclaimed name is refused without a secret")
		}
	}
	if !claim("Alice", "owner-secret") {
		t.Fatal("first claim refused")
	}
	if !claim("ALICE", "owner-secret") || !claim("ａｌｉｃｅ", "owner-secret") {
		t.Fatal("the owner is refused under another spelling of the name")
	}
	if claim("alice", "thief") || claim("alice", "") {
		t.Fatal("someone else got the name")
	}
	if claim("guest", "") != true || !claim("guest", "late-claimer") || claim("guest", "") {
		t.Fatal("a late claim of an unclaimed name did not take")
	}
	e, err := c.names.Get(ctx, Token("alice"))
	if err != nil || string(e.Value()) == "owner-secret" || len(e.Value()) != 32 {
		t.Fatalf("stored %v, %v: want a 32-byte hash, never the secret", e, err)
	}
	if got, err := names.Claimed(ctx, []string{"bob", "guest", "", "alice"}); err != nil || !slices.Equal(got, []string{"guest", "alice"}) {
		t.Fatalf("Claimed = %q, %v", got, err)
	}

	// An operator releases it through another node, as a command would.
	other := storesDial(t, n, "node-b").Names()
	if ok, err := other.Release(ctx, "Alice"); !ok || err != nil {
		t.Fatalf("release: %v %v", ok, err)
	}
	if ok, err := other.Release(ctx, "Alice"); ok || err != nil {
		t.Fatalf("released twice: %v %v", ok, err)
	}
	if !claim("alice", "new-owner") || claim("alice", "owner-secret") {
		t.Fatal("after the release the name was not free for a new owner")
	}
	if got, err := names.Claimed(ctx, []string{"alice"}); err != nil || len(got) != 1 {
		t.Fatalf("Claimed after the new claim = %q, %v", got, err)
	}
}

func TestConcurrentClaimsHaveOneWinner(t *testing.T) {
	n := natstest.Start(t, 1)
	names := storesDial(t, n, "node-a").Names()
	var wg sync.WaitGroup
	wins := make(chan string, 8)
	for i := range 8 {
		wg.Go(func() {
			secret := string(rune('a' + i))
			if ok, err := names.Claim(context.Background(), "contested", secret); err == nil && ok {
				wins <- secret
			}
		})
	}
	wg.Wait()
	close(wins)
	if len(wins) != 1 {
		t.Fatalf("%d claims succeeded", len(wins))
	}
}

// Two nodes, on two servers of a NATS cluster, claim the same names at
// the same moment with different secrets: each name gets one owner, and
// both nodes agree on it afterwards.
func TestTwoNodesRacingForANameHaveOneWinner(t *testing.T) {
	n := natstest.Start(t, 3)
	dial := func(name string, server int) *Names { return storesDialURL(t, n.URL(server), name).Names() }
	nodes := []*Names{dial("node-a", 0), dial("node-b", 1)}
	ctx := context.Background()
	for round := range 10 {
		name := fmt.Sprint("contested-", round)
		start := make(chan struct{})
		won := make([]bool, len(nodes))
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i, node := range nodes {
			wg.Go(func() {
				<-start
				won[i], errs[i] = node.Claim(ctx, name, fmt.Sprint("secret-", i))
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if won[0] == won[1] {
			t.Fatalf("round %d: node a won %v, node b won %v; want exactly one", round, won[0], won[1])
		}
		winner := 0
		if won[1] {
			winner = 1
		}
		for i, node := range nodes {
			if ok, err := node.Claim(ctx, name, fmt.Sprint("secret-", winner)); !ok || err != nil {
				t.Fatalf("round %d: node %d refuses the winner: %v %v", round, i, ok, err)
			}
			if ok, err := node.Claim(ctx, name, fmt.Sprint("secret-", 1-winner)); ok || err != nil {
				t.Fatalf("round %d: node %d accepts the loser: %v %v", round, i, ok, err)
			}
		}
	}
}

// TestNameClaimsExpireWhenIdle: with a NameExpiry, a claim nobody uses
// for that long is gone (the bucket's TTL), and one that is used is kept
// past it (Claim writes it again). Time passing is the behaviour under
// test, so the test waits for it.
func TestNameClaimsExpireWhenIdle(t *testing.T) {
	n := natstest.Start(t, 1)
	const expiry = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, Options{URLs: []string{n.URLs()}, Name: "node-a", NameExpiry: expiry})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	names := c.Names()
	claim := func(name, secret string) bool {
		t.Helper()
		ok, err := names.Claim(ctx, name, secret)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !claim("idle", "s1") || !claim("busy", "s2") {
		t.Fatal("first claims refused")
	}
	start := time.Now()
	// busy is used every half second; idle never.
	for time.Since(start) < expiry+expiry/2 {
		if !claim("busy", "s2") {
			t.Fatal("busy's owner refused")
		}
		if claim("busy", "other") {
			t.Fatal("busy taken by another secret while in use")
		}
		time.Sleep(500 * time.Millisecond) // time passing is what is tested
	}
	// idle's claim is older than expiry; JetStream removes expired
	// messages on its own timer: wait for it, bounded.
	for deadline := time.Now().Add(10 * time.Second); ; {
		got, err := names.Claimed(ctx, []string{"idle", "busy"})
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(got, []string{"busy"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("claimed after %v idle: %v, want [busy]", time.Since(start), got)
		}
		time.Sleep(100 * time.Millisecond) // waiting for the TTL to act
	}
	if !claim("idle", "newcomer") {
		t.Fatal("an expired name could not be claimed anew")
	}
	if claim("idle", "s1") {
		t.Fatal("the old owner still holds an expired name")
	}
}

// TestUsedClaimsAreNotRewrittenEachTime: a claim used again within the
// refresh interval is not written again (one write per name and
// interval, not per JOIN).
func TestUsedClaimsAreNotRewrittenEachTime(t *testing.T) {
	n := natstest.Start(t, 1)
	c := storesDial(t, n, "node-a")
	ctx := context.Background()
	if ok, err := c.Names().Claim(ctx, "alice", "s"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	_, rev, err := c.leaderGet(ctx, c.names, Token("alice"))
	if err != nil || rev == 0 {
		t.Fatal(rev, err)
	}
	for range 5 {
		if ok, err := c.Names().Claim(ctx, "alice", "s"); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	if _, again, err := c.leaderGet(ctx, c.names, Token("alice")); err != nil || again != rev {
		t.Fatalf("revision %d after using the claim, was %d: rewritten", again, rev)
	}
}
