package cluster

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"

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
func (n *Names) Claim(ctx context.Context, name, secret string) (bool, error) {
	hash := ownerHash(secret)
	var stored []byte
	// Unclaimed: claim it. Devices on several nodes may race; Create
	// lets exactly one in, and the others read the winner's hash.
	claimed, err := n.c.kvCAS(ctx, n.kv, Token(protocol.Key(name)), func(cur []byte) ([]byte, bool, error) {
		stored = cur
		return hash, cur == nil && secret != "", nil
	})
	if err != nil || claimed {
		return claimed, err
	}
	return stored == nil || (secret != "" && subtle.ConstantTimeCompare(stored, hash) == 1), nil
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
