package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chat/protocol"
)

// Names records who owns which name, cluster-wide, in bucket chat-names
// (key Token(name key), value the SHA-256 of the owner's secret): the
// first JOIN of a name with a secret claims it, later ones on any node
// must present the same secret. It has the semantics of sqlite.Names and
// stores the same hash, so a migration copies hashes as they are.
type Names struct {
	c  *Conn
	kv jetstream.KeyValue
}

// Names returns the cluster's name owners (the hub's Owners).
func (c *Conn) Names() *Names { return &Names{c: c, kv: c.names} }

// ownerHash is what chat-names stores of a secret: its SHA-256, as
// sqlite.Names does. Secrets are random 128-bit values, so a fast hash is
// enough (nothing to brute-force from a dictionary).
func ownerHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Claim reports whether secret may use name: it may if nobody claimed the
// name (then a non-empty secret claims it) or if it is the secret that
// did. An empty secret never claims and never matches a claim.
//
// A claim that is used is written again (the same
// value, a new revision) once it is refreshAfter old, which restarts the
// bucket's TTL: a name expires NameExpiry after its last use, give or take
// refreshAfter, at the cost of at most one write per name and refresh
// interval.
func (n *Names) Claim(ctx context.Context, name, secret string) (bool, error) {
	hash := ownerHash(secret)
	key := Token(protocol.Key(name))
	for try := range maxCASTries {
		m, err := n.c.leaderMsg(ctx, "KV_"+n.kv.Bucket(), getReq{LastBySubj: "$KV." + n.kv.Bucket() + "." + key})
		if err != nil {
			return false, err
		}
		if m == nil || deleted(m) {
			if secret == "" {
				return true, nil // unclaimed, and an empty secret claims nothing
			}
			// Unclaimed: claim it. Devices on several nodes may race;
			// Create lets exactly one in, and the others read the
			// winner's hash on the next round.
			_, err := n.kv.Create(ctx, key, hash)
			if err == nil {
				return true, nil
			}
			// A conflict: read again. No stream answering: its replicas
			// are electing a leader; try again while the loop lasts (as
			// kvCAS does).
			if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrNoStreamResponse) &&
				!errors.Is(err, nats.ErrNoResponders) {
				return false, err
			}
			if try > 0 {
				select { // back off a little
				case <-time.After(time.Duration(try) * time.Millisecond):
				case <-ctx.Done():
					return false, ctx.Err()
				}
			}
			continue
		}
		ok := secret != "" && subtle.ConstantTimeCompare(m.Data, hash) == 1
		// Refreshed without an expiry too, so that turning one on later
		// does not release names in use.
		if ok && time.Since(m.Time) >= refreshAfter(n.c.opts.NameExpiry) {
			// The claim is checked; the refresh only moves its expiry.
			// One that fails (another device refreshed at the same
			// moment, or JetStream is electing a leader) is tried again
			// at the next use, so its error does not fail the JOIN.
			_, _ = n.kv.Update(ctx, key, hash, m.Seq)
		}
		return ok, nil
	}
	return false, errors.New("cluster: claiming a name: too much contention")
}

// refreshAfter is how old a used claim gets before Claim writes it again:
// a tenth of the expiry, at most a day.
func refreshAfter(expiry time.Duration) time.Duration {
	if expiry <= 0 {
		return 24 * time.Hour
	}
	return min(expiry/10, 24*time.Hour)
}

// deleted reports whether a KV entry is a delete or purge marker.
func deleted(m *storedMsg) bool {
	return bytes.Contains(m.Header, []byte("KV-Operation: DEL")) || bytes.Contains(m.Header, []byte("KV-Operation: PURGE"))
}

// owner returns the secret hash stored under key, nil if unclaimed. It
// reads from the bucket stream's leader, like every read here (see
// DESIGN.md): a replica may be behind, and right after the bucket is
// created it may not answer at all.
func (n *Names) owner(ctx context.Context, key string) ([]byte, error) {
	v, rev, err := n.c.leaderGet(ctx, n.kv, key)
	if err != nil || rev == 0 {
		return nil, err
	}
	return v, nil
}

// Claimed returns those of keys (protocol.Key of names) that are
// claimed, in the order given. The reads run in parallel, at most
// maxParallelReads at once: one round trip each, however many keys.
func (n *Names) Claimed(ctx context.Context, keys []string) ([]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	claimed := make([]bool, len(keys))
	err := eachParallel(len(keys), func(i int) error {
		if keys[i] == "" { // no name has the empty key, and "" is no KV key
			return nil
		}
		h, err := n.owner(ctx, Token(keys[i]))
		claimed[i] = h != nil
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for i, k := range keys {
		if claimed[i] {
			out = append(out, k)
		}
	}
	return out, nil
}

// Release forgets the claim on name, so the next JOIN with a secret
// claims it anew. It reports whether the name was claimed. It works
// while the cluster's nodes run.
func (n *Names) Release(ctx context.Context, name string) (bool, error) {
	return n.c.kvCAS(ctx, n.kv, Token(protocol.Key(name)), func(cur []byte) ([]byte, bool, error) {
		return nil, cur != nil, nil
	})
}
