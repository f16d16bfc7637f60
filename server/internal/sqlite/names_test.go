package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"chat/server/internal/history"
)

func openNames(t *testing.T) (*Names, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chat.db")
	l, err := Open(path, func([]history.Result) {}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n, err := OpenNames(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, path
}

func TestNamesAreClaimedByTheirFirstSecret(t *testing.T) {
	n, path := openNames(t)
	ctx := context.Background()
	claim := func(name, secret string) bool {
		t.Helper()
		ok, err := n.Claim(ctx, name, secret)
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
	var stored []byte
	if err := n.read.QueryRow("SELECT secret_hash FROM names WHERE name_key = 'alice'").Scan(&stored); err != nil || string(stored) == "owner-secret" || len(stored) != 32 {
		t.Fatalf("stored %q, %v: want a 32-byte hash, never the secret", stored, err)
	}

	// An operator releases it, from another handle, as a command would.
	other, err := OpenNames(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if ok, err := other.Release(ctx, "Alice"); !ok || err != nil {
		t.Fatalf("release: %v %v", ok, err)
	}
	if ok, _ := other.Release(ctx, "Alice"); ok {
		t.Fatal("released twice")
	}
	if !claim("alice", "new-owner") || claim("alice", "owner-secret") {
		t.Fatal("after the release the name was not free for a new owner")
	}
}

func TestConcurrentClaimsHaveOneWinner(t *testing.T) {
	n, _ := openNames(t)
	var wg sync.WaitGroup
	wins := make(chan string, 8)
	for i := range 8 {
		wg.Go(func() {
			secret := string(rune('a' + i))
			if ok, err := n.Claim(context.Background(), "contested", secret); err == nil && ok {
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

func TestNamesOpenANewDatabase(t *testing.T) {
	n, err := OpenNames(filepath.Join(t.TempDir(), "new.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if ok, err := n.Claim(context.Background(), "first", "s"); !ok || err != nil {
		t.Fatalf("claim in a new database: %v %v", ok, err)
	}
}

// TestNameClaimsExpireWhenIdle: a claim unused for the expiry is void (a
// new secret claims the name), one in use is kept, and the sweep deletes
// expired rows in batches.
func TestNameClaimsExpireWhenIdle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	clock := time.Unix(1_000_000, 0)
	n, err := OpenNamesWith(path, NamesOptions{Expiry: 30 * 24 * time.Hour, SweepEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.now = func() time.Time { return clock }
	ctx := context.Background()
	claim := func(name, secret string) bool {
		t.Helper()
		ok, err := n.Claim(ctx, name, secret)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !claim("idle", "s1") || !claim("busy", "s2") {
		t.Fatal("first claims refused")
	}
	for range 40 { // 40 days: busy joins daily, idle never
		clock = clock.Add(24 * time.Hour)
		if !claim("busy", "s2") || claim("busy", "thief") {
			t.Fatal("busy's claim did not hold while in use")
		}
	}
	got, err := n.Claimed(ctx, []string{"idle", "busy"})
	if err != nil || !slices.Equal(got, []string{"busy"}) {
		t.Fatalf("Claimed = %v, %v; want [busy]", got, err)
	}
	if !claim("idle", "newcomer") || claim("idle", "s1") {
		t.Fatal("an expired name did not go to the next secret")
	}
	// Many idle claims: the sweep deletes them, more than one batch.
	for i := range sweepBatch + 10 {
		if !claim(fmt.Sprint("old", i), "x") {
			t.Fatal("claim refused")
		}
	}
	clock = clock.Add(31 * 24 * time.Hour)
	if !claim("busy", "s2") {
		t.Fatal("busy lost after a long pause")
	}
	deleted, err := n.Sweep(ctx)
	if err != nil || deleted != sweepBatch+10+1 { // the old ones and newcomer's idle
		t.Fatalf("Sweep deleted %d, %v; want %d", deleted, err, sweepBatch+11)
	}
	var rows int
	if err := n.read.QueryRow("SELECT count(*) FROM names").Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("rows left after the sweep: %d, %v; want busy's", rows, err)
	}
}

// TestNamesWithoutExpiryKeepClaims: the default keeps claims for good.
func TestNamesWithoutExpiryKeepClaims(t *testing.T) {
	n, _ := openNames(t)
	clock := time.Unix(1_000_000, 0)
	n.now = func() time.Time { return clock }
	ctx := context.Background()
	if ok, err := n.Claim(ctx, "alice", "s"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	clock = clock.Add(10 * 365 * 24 * time.Hour)
	if ok, err := n.Claim(ctx, "alice", "other"); err != nil || ok {
		t.Fatalf("claim lapsed without expiry: %v, %v", ok, err)
	}
	if k, err := n.Sweep(ctx); err != nil || k != 0 {
		t.Fatalf("Sweep without expiry: %d, %v", k, err)
	}
}

// TestOldClaimsDoNotExpireOnUpgrade: a claim made long ago in a database
// without last-use times counts as used at the upgrade, so turning on an
// expiry does not release names that may be in use.
func TestOldClaimsDoNotExpireOnUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	l, err := Open(path, func([]history.Result) {}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.write.Exec("INSERT INTO names (name_key, name, secret_hash, claimed) VALUES ('old', 'old', ?, 0)", hashSecret("s")); err != nil {
		t.Fatal(err)
	}
	n, err := OpenNamesWith(path, NamesOptions{Expiry: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	if got, err := n.Claimed(ctx, []string{"old"}); err != nil || len(got) != 1 {
		t.Fatalf("Claimed after the upgrade = %v, %v", got, err)
	}
	if ok, err := n.Claim(ctx, "old", "thief"); err != nil || ok {
		t.Fatalf("another secret took an old claim: %v, %v", ok, err)
	}
	if k, err := n.Sweep(ctx); err != nil || k != 0 {
		t.Fatalf("Sweep right after the upgrade deleted %d, %v", k, err)
	}
}
