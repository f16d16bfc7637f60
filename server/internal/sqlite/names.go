package sqlite

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"chat/protocol"
)

// Names records who owns which name: the first JOIN of a name with a
// secret claims it, later ones must present the same secret. Only a
// SHA-256 of the secret is stored; secrets are random 128-bit values, so a
// fast hash is enough (nothing to brute-force from a dictionary).
type Names struct {
	write *sql.DB // its own connection, synchronous=NORMAL: see OpenNames
	read  *sql.DB
}

// OpenNames opens the names table of the database at path, creating the
// database if needed. Claims are
// committed without waiting for the disk (synchronous=NORMAL): a claim
// lost to a power cut only means the name is unclaimed until its owner's
// next join, and 2000 people joining must not cost 2000 disk syncs.
func OpenNames(path string) (*Names, error) {
	write, read, err := openPair(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: names in %s: %w", path, err)
	}
	return &Names{write: write, read: read}, nil
}

// openPair opens a writer connection committing without waiting for the
// disk (synchronous=NORMAL: what it writes survives a crash of the
// server, not always a power cut) and a pool of readers, and migrates the
// schema.
func openPair(path string) (write, read *sql.DB, err error) {
	base := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	write, err = sql.Open("sqlite", withAutoVacuum(base)+"&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, nil, err
	}
	write.SetMaxOpenConns(1)
	read, err = sql.Open("sqlite", base+"&mode=ro")
	if err != nil {
		write.Close()
		return nil, nil, err
	}
	read.SetMaxOpenConns(4)
	if err := migrate(context.Background(), write); err != nil {
		read.Close()
		write.Close()
		return nil, nil, err
	}
	return write, read, nil
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Claim reports whether secret may use name: it may if nobody claimed the
// name (then a non-empty secret claims it) or if it is the secret that
// did. An empty secret never claims and never matches a claim.
func (n *Names) Claim(ctx context.Context, name, secret string) (bool, error) {
	key := protocol.Key(name)
	stored, err := n.owner(ctx, n.read, key)
	if err != nil {
		return false, err
	}
	if stored != nil || secret == "" {
		return stored == nil || (secret != "" && subtle.ConstantTimeCompare(stored, hashSecret(secret)) == 1), nil
	}
	// Unclaimed: claim it. Two devices may race; the database picks one
	// and the other sees the winner's hash below.
	if _, err := n.write.ExecContext(ctx, `INSERT INTO names (name_key, name, secret_hash, claimed) VALUES (?, ?, ?, ?)
		ON CONFLICT (name_key) DO NOTHING`, key, name, hashSecret(secret), time.Now().UnixMilli()); err != nil {
		return false, err
	}
	stored, err = n.owner(ctx, n.write, key)
	if err != nil || stored == nil {
		return false, errors.Join(err, errors.New("claim vanished"))
	}
	return subtle.ConstantTimeCompare(stored, hashSecret(secret)) == 1, nil
}

func (n *Names) owner(ctx context.Context, db *sql.DB, key string) ([]byte, error) {
	var h []byte
	err := db.QueryRowContext(ctx, "SELECT secret_hash FROM names WHERE name_key = ?", key).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return h, err
}

// Claimed returns those of keys (protocol.Key of names) that are claimed.
func (n *Names) Claimed(ctx context.Context, keys []string) ([]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	rows, err := n.read.QueryContext(ctx, "SELECT name_key FROM names WHERE name_key IN ("+placeholders(len(keys))+")", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// placeholders returns "?, ?, …" with n question marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// Release forgets the claim on name, so the next JOIN with a secret
// claims it anew. It reports whether the name was claimed. It works while
// a server runs on the same database.
func (n *Names) Release(ctx context.Context, name string) (bool, error) {
	res, err := n.write.ExecContext(ctx, "DELETE FROM names WHERE name_key = ?", protocol.Key(name))
	if err != nil {
		return false, err
	}
	k, err := res.RowsAffected()
	return k > 0, err
}

// Close closes the connections.
func (n *Names) Close() error { return errors.Join(n.read.Close(), n.write.Close()) }
