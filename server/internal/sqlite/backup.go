package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"chat/server/internal/history"
)

// ErrExists is returned by Backup when its destination exists and
// overwriting was not asked for.
var ErrExists = errors.New("the backup file exists already")

// BackupStats describe a chat database: what a backup holds or a
// restore put back.
type BackupStats struct {
	Rooms    int64 // rows of the rooms table: every room with history or an epoch
	Messages int64
	Names    int64 // claimed names
	Markers  int64 // read markers
	Bytes    int64 // size of the file
	Version  int   // schema version (PRAGMA user_version)
}

func (s BackupStats) String() string {
	return fmt.Sprintf("%d rooms, %d messages, %d claimed names, %d read markers, %d bytes (schema version %d)",
		s.Rooms, s.Messages, s.Names, s.Markers, s.Bytes, s.Version)
}

// roDSN opens path read-only. The busy timeout covers the moment a
// running server's checkpoint holds the WAL index.
func roDSN(path string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(10000)"
}

// Backup writes a consistent copy of the database at src (which a server
// may be using) to dst and checks it. The copy is made by VACUUM INTO
// through a connection of its own: a read transaction, which in WAL mode
// never blocks the server's writer (it only keeps the WAL from being
// checkpointed past the snapshot until it ends). The copy is written to a
// temporary file beside dst, made a single self-contained file (no WAL),
// checked with PRAGMA integrity_check, synced, and only then given the
// name dst: an interrupted backup never leaves a half-written dst. An
// existing dst is kept (ErrExists) unless overwrite is set.
func Backup(ctx context.Context, src, dst string, overwrite bool) (BackupStats, error) {
	var st BackupStats
	if _, err := os.Stat(src); err != nil {
		return st, fmt.Errorf("no database to back up: %w", err)
	}
	if !overwrite {
		if _, err := os.Lstat(dst); err == nil {
			return st, fmt.Errorf("%s: %w", dst, ErrExists)
		}
	}
	tmp, err := TempFile(dst)
	if err != nil {
		return st, err
	}
	done := false
	defer func() {
		if !done {
			RemoveDB(tmp)
		}
	}()
	if err := vacuumInto(ctx, src, tmp); err != nil {
		return st, fmt.Errorf("copying %s: %w", src, err)
	}
	st, err = Place(ctx, tmp, dst, overwrite)
	done = err == nil
	return st, err
}

// TempFile returns the name of a new empty file beside path, for a copy
// that Place then gives path's name.
func TempFile(path string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("creating the backup file: %w", err)
	}
	return f.Name(), f.Close()
}

// Place finishes a backup written to tmp: it makes it a single file (no
// WAL), checks it (Check), syncs it and gives it the name dst, keeping an
// existing dst (ErrExists) unless overwrite is set. On failure tmp stays
// for the caller to remove (RemoveDB).
func Place(ctx context.Context, tmp, dst string, overwrite bool) (BackupStats, error) {
	var st BackupStats
	if err := singleFile(ctx, tmp); err != nil {
		return st, fmt.Errorf("finishing the copy: %w", err)
	}
	st, err := Check(ctx, tmp)
	if err != nil {
		return st, fmt.Errorf("the copy failed its check, so it was not kept: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return st, err
	}
	if overwrite {
		err = os.Rename(tmp, dst)
	} else {
		// A hard link fails if dst appeared meanwhile, where a rename
		// would replace it.
		if err = os.Link(tmp, dst); err == nil {
			err = os.Remove(tmp)
		} else if errors.Is(err, os.ErrExist) {
			err = fmt.Errorf("%s: %w", dst, ErrExists)
		} else if _, serr := os.Lstat(dst); serr == nil {
			err = fmt.Errorf("%s: %w", dst, ErrExists)
		} else {
			// A file system without hard links.
			err = os.Rename(tmp, dst)
		}
	}
	if err != nil {
		return st, err
	}
	return st, syncDir(filepath.Dir(dst))
}

// vacuumInto copies src into the empty file dst in one read transaction.
func vacuumInto(ctx context.Context, src, dst string) error {
	db, err := sql.Open("sqlite", roDSN(src))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", dst)
	return err
}

// singleFile makes the database at path use a rollback journal, so it is
// one file that can be copied and opened anywhere, and closes it.
func singleFile(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath())
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	var mode string
	err = db.QueryRowContext(ctx, "PRAGMA journal_mode = DELETE").Scan(&mode)
	return errors.Join(err, db.Close())
}

// Check reads the database file at path and says whether it is a chat
// database this server can use, whole (PRAGMA integrity_check), and what
// it holds. Its errors are sentences for an operator.
func Check(ctx context.Context, path string) (BackupStats, error) {
	var st BackupStats
	fi, err := os.Stat(path)
	if err != nil {
		return st, err
	}
	if !fi.Mode().IsRegular() {
		return st, fmt.Errorf("%s is not a regular file", path)
	}
	st.Bytes = fi.Size()
	if fi.Size() == 0 {
		return st, fmt.Errorf("%s is empty, not a chat database", path)
	}
	db, err := sql.Open("sqlite", roDSN(path))
	if err != nil {
		return st, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// One read transaction: the numbers agree with each other.
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, notADatabase(path, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "PRAGMA integrity_check(10)")
	if err != nil {
		return st, notADatabase(path, err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return st, notADatabase(path, err)
		}
		if line != "ok" {
			problems = append(problems, strings.Join(strings.Fields(line), " "))
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return st, notADatabase(path, err)
	}
	if len(problems) > 0 {
		return st, fmt.Errorf("%s is damaged (SQLite's integrity check: %s)", path, strings.Join(problems, "; "))
	}
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&st.Version); err != nil {
		return st, notADatabase(path, err)
	}
	if st.Version > schemaVersion {
		return st, fmt.Errorf("%s has schema version %d, newer than this server's (%d): use a newer server", path, st.Version, schemaVersion)
	}
	tables := map[string]bool{}
	trows, err := tx.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table'")
	if err != nil {
		return st, notADatabase(path, err)
	}
	for trows.Next() {
		var name string
		if err := trows.Scan(&name); err != nil {
			trows.Close()
			return st, notADatabase(path, err)
		}
		tables[name] = true
	}
	if err := errors.Join(trows.Err(), trows.Close()); err != nil {
		return st, notADatabase(path, err)
	}
	if !tables["messages"] {
		return st, fmt.Errorf("%s is an SQLite database but not a chat server's (it has no messages table)", path)
	}
	for table, n := range map[string]*int64{"rooms": &st.Rooms, "messages": &st.Messages, "names": &st.Names, "markers": &st.Markers} {
		if !tables[table] {
			continue
		}
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(n); err != nil {
			return st, fmt.Errorf("%s: counting %s: %w", path, table, err)
		}
	}
	return st, nil
}

// notADatabase words the error of a file SQLite cannot read.
func notADatabase(path string, err error) error {
	return fmt.Errorf("%s is not a usable chat database: %w", path, err)
}

// Restore makes a new database file at dst, which must not exist, from
// the backup at src: checked (Check), copied, its schema brought up to
// this server's version, and every room given a new history epoch, so
// that clients resuming with the epoch they had see that history changed
// under them and reload it (protocol: JOINED epoch). Names, read markers
// and mentions stay as in the backup. The server must not be running on
// dst's database.
func Restore(ctx context.Context, src, dst string) (BackupStats, error) {
	st, err := Check(ctx, src)
	if err != nil {
		return st, err
	}
	if _, err := os.Lstat(dst); err == nil {
		return st, fmt.Errorf("%s: exists already", dst)
	}
	ok := false
	defer func() {
		if !ok {
			RemoveDB(dst)
		}
	}()
	if err := vacuumInto(ctx, src, dst); err != nil {
		return st, fmt.Errorf("copying %s: %w", src, err)
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: dst}).EscapedPath()+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return st, err
	}
	db.SetMaxOpenConns(1)
	err = migrate(ctx, db)
	if err == nil {
		st.Rooms, err = newEpochs(ctx, db)
	}
	// Closing the only connection checkpoints the WAL into the file.
	if err = errors.Join(err, db.Close()); err != nil {
		return st, fmt.Errorf("restoring into %s: %w", dst, err)
	}
	if err := syncFile(dst); err != nil {
		return st, err
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return st, err
	}
	ok = true
	return st, nil
}

// newEpochs gives every room a new random history epoch, different from
// its old one, in one transaction, and returns how many rooms it changed.
func newEpochs(ctx context.Context, db *sql.DB) (int64, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "SELECT room, epoch FROM rooms")
	if err != nil {
		return 0, err
	}
	old := map[string]int64{}
	for rows.Next() {
		var room string
		var epoch int64
		if err := rows.Scan(&room, &epoch); err != nil {
			rows.Close()
			return 0, err
		}
		old[room] = epoch
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, err
	}
	for room, epoch := range old {
		e := int64(history.NewEpoch())
		for e == epoch {
			e = int64(history.NewEpoch())
		}
		if _, err := tx.ExecContext(ctx, "UPDATE rooms SET epoch = ? WHERE room = ?", e, room); err != nil {
			return 0, err
		}
	}
	return int64(len(old)), tx.Commit()
}

// RemoveDB removes a database file and its WAL and shared-memory files.
func RemoveDB(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		_ = os.Remove(p)
	}
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// syncDir makes a rename or new file in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	// Some file systems cannot sync a directory; the data is synced.
	if errors.Is(err, os.ErrInvalid) {
		err = nil
	}
	return errors.Join(err, d.Close())
}
