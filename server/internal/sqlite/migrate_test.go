package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"chat/protocol"
	"chat/server/internal/history"
)

// schemaV3File is the schema version 3 servers created, as they wrote it.
const schemaV3File = schemaV3 + "PRAGMA user_version = 3;"

// oldDatabase writes a database of an older schema version: messages in
// a room, a direct-message room (by its canonical name) and one stored
// under another spelling, a claimed name, and for version 3 the epoch of
// general.
func oldDatabase(t *testing.T, version int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chat.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schema := schemaV3File
	if version == 2 {
		// Version 2 had no rooms table.
		schema = schema[:strings.Index(schema, "CREATE TABLE IF NOT EXISTS rooms")] + "PRAGMA user_version = 2;"
	}
	if _, err := db.Exec(schema); err != nil {
		t.Fatal(err)
	}
	insert := func(room string, seq, time int64) {
		if _, err := db.Exec("INSERT INTO messages VALUES (?, ?, ?, 'alice', 'alice', ?, 'hi')", room, seq, time, []byte(room+string(rune('0'+seq)))); err != nil {
			t.Fatal(err)
		}
	}
	insert("general", 1, 1000)
	insert("general", 2, 2000)
	insert("general", 3, 3000)
	insert("@alice@bob", 1, 2500)
	insert("@alice@bob", 2, 4000)
	insert("@bob@alice", 1, 5000) // not canonical: a room of its own before DMs existed
	if _, err := db.Exec("INSERT INTO names VALUES ('alice', 'Alice', ?, 1)", hashSecret("alice's secret")); err != nil {
		t.Fatal(err)
	}
	if version == 3 {
		if _, err := db.Exec("INSERT INTO rooms VALUES ('general', 4242)"); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// TestMigrationFromOlderSchemas: a database of version 2 or 3 opens as
// version 4 with its history, epochs and names intact, every room's head
// and last activity filled in and the direct-message rooms listed under
// their names.
func TestMigrationFromOlderSchemas(t *testing.T) {
	for _, version := range []int{2, 3} {
		t.Run(map[int]string{2: "v2", 3: "v3"}[version], func(t *testing.T) {
			ctx := context.Background()
			path := oldDatabase(t, version)
			names, err := OpenNames(path) // the server opens the names first
			if err != nil {
				t.Fatal(err)
			}
			defer names.Close()
			if ok, err := names.Claim(ctx, "ALICE", "alice's secret"); err != nil || !ok {
				t.Fatalf("alice's claim after migrating: %v, %v", ok, err)
			}
			var got results
			log, err := Open(path, got.sink, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			x, err := OpenInbox(path, InboxOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()

			var v int
			if err := log.read.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != schemaVersion {
				t.Fatalf("user_version %d, %v", v, err)
			}
			if e, err := log.Epoch(ctx, "general"); err != nil || (version == 3 && e != 4242) || e == 0 {
				t.Fatalf("general's epoch %d, %v", e, err)
			}
			active, err := x.Active(ctx, "", 10)
			if err != nil || len(active) != 1 || active[0] != (protocol.RoomInfo{Room: "general", Head: 3, Time: 3000}) {
				t.Fatalf("Active = %+v, %v", active, err)
			}
			for _, name := range []string{"alice", "bob"} {
				dms, err := x.Direct(ctx, name, 10)
				if err != nil || len(dms) != 1 || dms[0] != (protocol.RoomState{Room: "@alice@bob", Head: 2, Time: 4000}) {
					t.Fatalf("%s's DMs %+v, %v", name, dms, err)
				}
			}
			// History goes on where it stopped.
			if err := log.Append(&history.Request{Room: "general", Sender: "bob", ID: "b", Text: "after"}); err != nil {
				t.Fatal(err)
			}
			if err := log.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if len(got.all) != 1 || got.all[0].Msg.Seq != 4 {
				t.Fatalf("first message after migrating: %+v", got.all)
			}
			if heads, _ := x.Heads(ctx, []string{"general"}); len(heads) != 1 || heads[0].Head != 4 || heads[0].Time < 3000 {
				t.Fatalf("general after a new message: %+v", heads)
			}
		})
	}
}

// TestRoomQueriesReadIndexesOnly: the queries behind IDENTIFIED, LIST,
// JOINED and READ read indexes, never the messages table, and the room
// list walks its index without sorting.
func TestRoomQueriesReadIndexesOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	x, err := OpenInbox(path, InboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	plan := func(q string, args ...any) string {
		rows, err := x.read.Query("EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, detail)
		}
		return strings.Join(lines, "; ")
	}
	active := plan(activeQuery, "@", "x", 200)
	if !strings.Contains(active, "USING INDEX rooms_active") || strings.Contains(active, "TEMP B-TREE") {
		t.Errorf("the room list: %s", active)
	}
	for _, q := range []string{
		activeQuery,
		"SELECT room, head, time FROM rooms WHERE head > 0 AND room IN (?, ?)",
		`SELECT d.room, r.head, r.time, coalesce(m.seq, 0) FROM dms d JOIN rooms r ON r.room = d.room
			LEFT JOIN markers m ON m.name_key = d.name_key AND m.room = d.room WHERE d.name_key = ? AND r.head > 0`,
	} {
		p := plan(q, slices.Repeat([]any{"x"}, strings.Count(q, "?"))...)
		if strings.Contains(p, "messages") || strings.Contains(p, "SCAN dms") || strings.Contains(p, "SCAN markers") {
			t.Errorf("%s\nplan: %s", q, p)
		}
	}
}
