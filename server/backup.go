package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"chat/server/internal/sqlite"
)

// backupFlags are the flags backup and restore share: where the data is
// (-data, or the cluster's NATS). Like the server, they default to the
// CHAT_* variables, so a systemd unit can read the server's own
// environment file.
func backupFlags(name, usage string, getenv func(string) string, stderr io.Writer) (*flag.FlagSet, *config) {
	fs := flag.NewFlagSet("chat-server "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := &config{}
	def := func(flagName, fallback string) string {
		if v := getenv(envName(flagName)); v != "" {
			return v
		}
		return fallback
	}
	fs.StringVar(&cfg.data, "data", def("data", "chat-data"), "the server's data `directory` (holding chat.db) (env CHAT_DATA)")
	fs.StringVar(&cfg.nats, "nats", def("nats", ""), "cluster mode: the cluster's NATS server `URLs`, comma-separated (env CHAT_NATS)")
	fs.StringVar(&cfg.natsCreds, "nats-creds", def("nats-creds", ""), "NATS credentials `file` (env CHAT_NATS_CREDS)")
	fs.StringVar(&cfg.natsCA, "nats-ca", def("nats-ca", ""), "CA certificate `file` (PEM) of the NATS servers (env CHAT_NATS_CA)")
	fs.StringVar(&cfg.natsCert, "nats-cert", def("nats-cert", ""), "client certificate `file` (PEM) for NATS (env CHAT_NATS_CERT)")
	fs.StringVar(&cfg.natsKey, "nats-key", def("nats-key", ""), "private key `file` (PEM) for -nats-cert (env CHAT_NATS_KEY)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs, cfg
}

// backup is `chat-server backup [-data DIR] [-force] FILE`: a consistent
// copy of the database of a server that may be running, checked before
// it is given its name.
func backup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs, cfg := backupFlags("backup", "Usage: chat-server backup [-data DIR | -nats URL] [-force] FILE\n"+
		"       chat-server backup [-data DIR | -nats URL] -dir DIRECTORY [-keep N]\n\n"+
		"Writes a consistent copy of the chat database to FILE (an SQLite file) while the server runs.\n"+
		"The server keeps serving; its writes never wait for the copy. FILE is checked before the command says done;\n"+
		"an existing FILE is kept unless -force is given.\n\n", getenv, stderr)
	force := fs.Bool("force", false, "replace FILE if it exists")
	dir := fs.String("dir", "", "instead of FILE: write "+backupPrefix+"TIME"+backupSuffix+" (UTC) into this `directory`")
	keep := fs.Int("keep", 0, "with -dir: after a successful backup, delete the oldest backups in the directory beyond these `N` (0: keep all)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if (fs.NArg() == 1) == (*dir != "") || fs.NArg() > 1 {
		fmt.Fprintln(stderr, "chat-server backup: give one FILE to write the backup to, or -dir DIRECTORY (flags before FILE)")
		return 2
	}
	if *keep < 0 || (*keep > 0 && *dir == "") {
		fmt.Fprintln(stderr, "chat-server backup: -keep is a number of backups to keep in -dir")
		return 2
	}
	file := fs.Arg(0)
	if *dir != "" {
		if err := os.MkdirAll(*dir, 0o700); err != nil {
			fmt.Fprintf(stderr, "chat-server backup: %v\n", err)
			return 1
		}
		file = filepath.Join(*dir, backupPrefix+time.Now().UTC().Format("20060102T150405.000Z")+backupSuffix)
	}
	code := 0
	if cfg.nats != "" {
		code = backupCluster(ctx, cfg, file, *force, stdout, stderr)
	} else {
		code = backupSingle(ctx, cfg, file, *force, stdout, stderr)
	}
	if code == 0 && *keep > 0 {
		removed, err := pruneBackups(*dir, *keep)
		for _, f := range removed {
			fmt.Fprintf(stdout, "deleted the old backup %s (keeping %d)\n", f, *keep)
		}
		if err != nil {
			fmt.Fprintf(stderr, "chat-server backup: deleting old backups: %v\n", err)
			return 1
		}
	}
	return code
}

// The names of backups that -dir writes and -keep prunes: their times
// sort as their names do.
const (
	backupPrefix = "chat-"
	backupSuffix = ".db"
)

// pruneBackups deletes the oldest backups that -dir wrote in dir beyond
// keep, and nothing else: only files named as -dir names them.
func pruneBackups(dir string, keep int) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ours []string
	for _, e := range entries {
		name := e.Name()
		stamp := strings.TrimSuffix(strings.TrimPrefix(name, backupPrefix), backupSuffix)
		if !e.Type().IsRegular() || !strings.HasPrefix(name, backupPrefix) || !strings.HasSuffix(name, backupSuffix) {
			continue
		}
		if _, err := time.Parse("20060102T150405.000Z", stamp); err != nil {
			continue
		}
		ours = append(ours, name)
	}
	sort.Strings(ours)
	var removed []string
	for len(ours) > keep {
		path := filepath.Join(dir, ours[0])
		if err := os.Remove(path); err != nil {
			return removed, err
		}
		// Its shared files' content goes with it (hard links, mostly).
		if err := os.RemoveAll(filesDirOf(path)); err != nil {
			return removed, err
		}
		removed = append(removed, path)
		ours = ours[1:]
	}
	return removed, nil
}

// backupSingle backs up the single server's database.
func backupSingle(ctx context.Context, cfg *config, file string, force bool, stdout, stderr io.Writer) int {
	db := filepath.Join(cfg.data, "chat.db")
	if _, err := os.Stat(db); err != nil {
		fmt.Fprintf(stderr, "chat-server backup: no chat database in %s (use -data): %v\n", cfg.data, err)
		return 1
	}
	start := time.Now()
	st, err := sqlite.Backup(ctx, db, file, force)
	if errors.Is(err, sqlite.ErrExists) {
		fmt.Fprintf(stderr, "chat-server backup: %s exists; give -force to replace it, or another file name\n", file)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "chat-server backup: %v\n", err)
		return 1
	}
	// The files' content after the database: content the copy's messages
	// carry was stored before it (a file is sent after its upload).
	cst, err := copyContent(filepath.Join(cfg.data, "files"), filesDirOf(file))
	if err != nil {
		fmt.Fprintf(stderr, "chat-server backup: the database is backed up to %s, but not the shared files' content: %v\n", file, err)
		return 1
	}
	fmt.Fprintf(stdout, "backed up %s to %s in %v: %s; integrity check ok\n", db, file, time.Since(start).Round(time.Millisecond), st)
	if cst.Files+cst.Skipped > 0 {
		fmt.Fprintf(stdout, "shared files' content in %s: %s\n", filesDirOf(file), cst)
	}
	return 0
}

// restore is `chat-server restore [-data DIR] FILE`: it puts a backup in
// place of the database of a stopped server. The database it replaces is
// kept beside it, renamed; every room gets a new history epoch, so that
// clients reload history they may hold from after the backup.
func restore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs, cfg := backupFlags("restore", "Usage: chat-server restore [-data DIR | -nats URL] FILE\n\n"+
		"Puts the backup FILE back as the chat database. Stop the server first: restore refuses while it runs.\n"+
		"The current database is kept, renamed to chat.db.before-restore-TIME. Every room gets a new history\n"+
		"epoch: clients that come back reload its history instead of keeping messages the backup does not have.\n"+
		"Names, read markers and mentions are as they were in the backup.\n\n", getenv, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "chat-server restore: give the backup FILE to restore (and flags before it)")
		return 2
	}
	file := fs.Arg(0)
	if cfg.nats != "" {
		return restoreCluster(ctx, cfg, file, stdout, stderr)
	}
	if st, err := os.Stat(cfg.data); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "chat-server restore: %s is not a directory (use -data for the server's data directory)\n", cfg.data)
		return 1
	}
	unlock, err := lockData(cfg.data, "chat-server restore")
	if errors.Is(err, errDataLocked) {
		fmt.Fprintf(stderr, "chat-server restore: a chat server is running on %s (%v); stop it first, then restore\n", cfg.data, err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "chat-server restore: %v\n", err)
		return 1
	}
	defer unlock()
	if _, err := sqlite.Check(ctx, file); err != nil {
		fmt.Fprintf(stderr, "chat-server restore: cannot restore %s, nothing was changed: %v\n", file, err)
		return 1
	}
	db := filepath.Join(cfg.data, "chat.db")
	incoming := db + ".restoring"
	removeDBFiles(incoming) // a restore interrupted earlier
	st, err := sqlite.Restore(ctx, file, incoming)
	if err != nil {
		fmt.Fprintf(stderr, "chat-server restore: cannot restore %s, nothing was changed: %v\n", file, err)
		return 1
	}
	// The shared files' content first: once the database is in place its
	// messages may be served.
	cst, err := copyContent(filesDirOf(file), filepath.Join(cfg.data, "files"))
	if err != nil {
		removeDBFiles(incoming)
		fmt.Fprintf(stderr, "chat-server restore: copying the shared files' content from %s: %v (the database was not changed)\n", filesDirOf(file), err)
		return 1
	}
	aside := ""
	// Any of the three files: a restore that crashed between its renames
	// left a -wal without its chat.db, which SQLite would lay over the
	// restored database.
	if anyExists(db, db+"-wal", db+"-shm") {
		aside = db + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		// The -wal holds committed messages not yet in chat.db: it moves
		// with it, under the name SQLite looks for beside the new name.
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(db+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(stderr, "chat-server restore: moving the current database aside: %v\n", err)
				return 1
			}
		}
	}
	if err := os.Rename(incoming, db); err != nil {
		fmt.Fprintf(stderr, "chat-server restore: %v (the current database is %s)\n", err, aside)
		return 1
	}
	_ = os.Remove(incoming + "-journal")
	if d, err := os.Open(cfg.data); err == nil {
		_ = d.Sync() // the renames, durable
		d.Close()
	}
	fmt.Fprintf(stdout, "restored %s into %s: %s\n", file, db, st)
	if cst.Files+cst.Skipped > 0 {
		fmt.Fprintf(stdout, "shared files' content from %s: %s\n", filesDirOf(file), cst)
	}
	fmt.Fprintf(stdout, "every room has a new history epoch: clients that resume reload its history\n")
	if aside != "" {
		fmt.Fprintf(stdout, "the database it replaced is kept as %s (delete it when you no longer need it)\n", aside)
	}
	return 0
}

// anyExists reports whether one of paths exists.
func anyExists(paths ...string) bool {
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return true
		}
	}
	return false
}

// removeDBFiles removes a database file and its companions.
func removeDBFiles(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		_ = os.Remove(path + suffix)
	}
}
