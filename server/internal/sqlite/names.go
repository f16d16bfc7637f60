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
//
// With an expiry (NamesOptions.Expiry), a claim not used for that long (no
// JOIN or IDENTIFY with the name: Claim is called for both) is void: the
// next secret claims the name anew, and a background sweep deletes such
// claims in bounded batches.
type Names struct {
	write *sql.DB // its own connection, synchronous=NORMAL: see OpenNames
	read  *sql.DB

	expiry time.Duration
	now    func() time.Time
	stop   chan struct{} // closed by Close: ends the sweep
	swept  chan struct{} // closed when the sweep has ended
}

// NamesOptions are the policies of Names. Zero values take the defaults.
type NamesOptions struct {
	// Expiry is how long a claim lasts without use; 0: for good.
	Expiry time.Duration
	// SweepEvery is how often expired claims are deleted (default a
	// tenth of Expiry, at most an hour).
	SweepEvery time.Duration
}

// sweepBatch bounds the claims one sweep statement deletes, so that the
// writer connection is never held for long.
const sweepBatch = 1000

// OpenNames opens the names table of the database at path, creating the
// database if needed. Claims are
// committed without waiting for the disk (synchronous=NORMAL): a claim
// lost to a power cut only means the name is unclaimed until its owner's
// next join, and 2000 people joining must not cost 2000 disk syncs.
func OpenNames(path string) (*Names, error) { return OpenNamesWith(path, NamesOptions{}) }

// OpenNamesWith is OpenNames with options.
func OpenNamesWith(path string, opts NamesOptions) (*Names, error) {
	write, read, err := openPair(path)
	if err == nil {
		err = addUsedColumn(context.Background(), write)
		if err != nil {
			write.Close()
			read.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: names in %s: %w", path, err)
	}
	n := &Names{write: write, read: read, expiry: opts.Expiry, now: time.Now,
		stop: make(chan struct{}), swept: make(chan struct{})}
	if n.expiry > 0 {
		every := opts.SweepEvery
		if every <= 0 {
			every = min(n.expiry/10, time.Hour)
		}
		go n.sweepLoop(every)
	} else {
		close(n.swept)
	}
	return n, nil
}

// addUsedColumn gives the names table the time each claim was last used
// (Unix milliseconds), if it lacks it: a claim from before counts as
// used now (when it was last used is unknown, and a name in use must not
// be released for a claim made long ago). It is added here rather than by a schema
// version: a server of before ignores the column, so the database stays
// usable by it.
func addUsedColumn(ctx context.Context, db *sql.DB) error {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pragma_table_info('names') WHERE name = 'used'").Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := db.ExecContext(ctx, `ALTER TABLE names ADD COLUMN used INTEGER NOT NULL DEFAULT 0;
		UPDATE names SET used = max(claimed, CAST(unixepoch('subsec') * 1000 AS INTEGER));
		CREATE INDEX IF NOT EXISTS names_used ON names (used);`)
	if err != nil && strings.Contains(err.Error(), "duplicate column") {
		return nil // another connection added it first
	}
	return err
}

// cutoff returns the last-use time below which a claim has expired, in
// Unix milliseconds (0 without expiry: none has).
func (n *Names) cutoff() int64 {
	if n.expiry <= 0 {
		return 0
	}
	return n.now().Add(-n.expiry).UnixMilli()
}

// refreshAfter is how old a claim's last-use time gets before Claim
// writes a new one: a tenth of the expiry, at most a day. Most joins
// then write nothing, and a name expires within that of its last use.
func (n *Names) refreshAfter() time.Duration {
	if n.expiry <= 0 {
		return 24 * time.Hour
	}
	return min(n.expiry/10, 24*time.Hour)
}

func (n *Names) sweepLoop(every time.Duration) {
	defer close(n.swept)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			if _, err := n.Sweep(context.Background()); err != nil {
				// The next tick tries again; the claims stay void meanwhile.
				continue
			}
		}
	}
}

// Sweep deletes expired claims, sweepBatch per statement, and returns how
// many it deleted. Claim and Claimed ignore expired claims already; the
// sweep only frees their rows.
func (n *Names) Sweep(ctx context.Context) (int, error) {
	cut := n.cutoff()
	if cut == 0 {
		return 0, nil
	}
	total := 0
	for {
		res, err := n.write.ExecContext(ctx, `DELETE FROM names WHERE name_key IN
			(SELECT name_key FROM names INDEXED BY names_used WHERE used < ? LIMIT ?)`, cut, sweepBatch)
		if err != nil {
			return total, err
		}
		k, err := res.RowsAffected()
		total += int(k)
		if err != nil || k < sweepBatch {
			return total, err
		}
		select {
		case <-n.stop:
			return total, nil
		default:
		}
	}
}

// openPair opens a writer connection committing without waiting for the
// disk (synchronous=NORMAL: what it writes survives a crash of the
// server, not always a power cut) and a pool of readers, and migrates the
// schema.
func openPair(path string) (write, read *sql.DB, err error) {
	base := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	write, err = sql.Open("sqlite", withAutoVacuum(base)+"&_pragma=synchronous(NORMAL)&_pragma=secure_delete(1)&_txlock=immediate")
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
	stored, used, err := n.owner(ctx, n.read, key)
	if err != nil {
		return false, err
	}
	if stored != nil || secret == "" {
		ok := stored == nil || (secret != "" && subtle.ConstantTimeCompare(stored, hashSecret(secret)) == 1)
		// The last use is kept up to date without an expiry too, so that
		// turning one on later does not release names in use.
		if ok && stored != nil && n.now().Sub(time.UnixMilli(used)) >= n.refreshAfter() {
			if _, err := n.write.ExecContext(ctx, "UPDATE names SET used = max(used, ?) WHERE name_key = ?", n.now().UnixMilli(), key); err != nil {
				return false, err
			}
		}
		return ok, nil
	}
	// Unclaimed (or expired): claim it. Two devices may race; the
	// database picks one and the other sees the winner's hash below.
	now := n.now().UnixMilli()
	if _, err := n.write.ExecContext(ctx, `INSERT INTO names (name_key, name, secret_hash, claimed, used) VALUES (?1, ?2, ?3, ?4, ?4)
		ON CONFLICT (name_key) DO UPDATE SET name = excluded.name, secret_hash = excluded.secret_hash,
			claimed = excluded.claimed, used = excluded.used
		WHERE names.used < ?5`, key, name, hashSecret(secret), now, n.cutoff()); err != nil {
		return false, err
	}
	stored, _, err = n.owner(ctx, n.write, key)
	if err != nil || stored == nil {
		return false, errors.Join(err, errors.New("claim vanished"))
	}
	return subtle.ConstantTimeCompare(stored, hashSecret(secret)) == 1, nil
}

// owner returns the secret hash of key's claim and when it was last used,
// nil if unclaimed or expired.
func (n *Names) owner(ctx context.Context, db *sql.DB, key string) ([]byte, int64, error) {
	var h []byte
	var used int64
	err := db.QueryRowContext(ctx, "SELECT secret_hash, used FROM names WHERE name_key = ? AND used >= ?", key, n.cutoff()).Scan(&h, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, nil
	}
	return h, used, err
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
	args = append(args, n.cutoff())
	rows, err := n.read.QueryContext(ctx, "SELECT name_key FROM names WHERE name_key IN ("+placeholders(len(keys))+") AND used >= ?", args...)
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
func (n *Names) Close() error {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	<-n.swept
	return errors.Join(n.read.Close(), n.write.Close())
}
