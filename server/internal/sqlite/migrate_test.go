package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"chat/protocol"
	"chat/server/internal/history"
)

// schemaV3File is the schema version 3 servers created, as they wrote it.
const schemaV3File = schemaV3 + "PRAGMA user_version = 3;"

// schemaV4File is the schema version 4 servers created.
const schemaV4File = schemaV3 + schemaV4 + "PRAGMA user_version = 4;"

// oldDatabase writes a database of an older schema version: messages in
// a room, a direct-message room (by its canonical name) and one stored
// under another spelling, a claimed name, and for version 3 the epoch of
// general; for version 4 the rooms and dms rows its server kept,
// including a room joined but never written to.
func oldDatabase(t *testing.T, version int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chat.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schema := schemaV3File
	switch version {
	case 4:
		schema = schemaV4File
	case 2:
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
	switch version {
	case 3:
		if _, err := db.Exec("INSERT INTO rooms VALUES ('general', 4242)"); err != nil {
			t.Fatal(err)
		}
	case 4:
		for _, q := range []string{
			"INSERT INTO rooms VALUES ('general', 4242, 3, 3000), ('@alice@bob', 1, 2, 4000), ('@bob@alice', 2, 1, 5000), ('joined', 3, 0, 0)",
			"INSERT INTO dms VALUES ('alice', '@alice@bob'), ('bob', '@alice@bob')",
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
	}
	return path
}

// TestMigrationFromOlderSchemas: a database of version 2, 3 or 4 opens
// as the current version with its history, epochs and names intact, every room's head
// and last activity filled in and the direct-message rooms listed under
// their names.
func TestMigrationFromOlderSchemas(t *testing.T) {
	for _, version := range []int{2, 3, 4} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
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
			if e, err := log.Epoch(ctx, "general"); err != nil || (version >= 3 && e != 4242) || e == 0 {
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
			// dms_recent orders by the activity copied into dms.
			var dmTimes []int64
			rows, err := log.read.Query("SELECT time FROM dms INDEXED BY dms_recent ORDER BY name_key")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var v int64
				if err := rows.Scan(&v); err != nil {
					t.Fatal(err)
				}
				dmTimes = append(dmTimes, v)
			}
			rows.Close()
			if !slices.Equal(dmTimes, []int64{4000, 4000}) {
				t.Fatalf("dms times %v, want 4000 for alice and bob", dmTimes)
			}
			if version == 4 {
				// A room joined but never written to keeps its epoch,
				// outside the room list.
				if e, err := log.Epoch(ctx, "joined"); err != nil || e != 3 {
					t.Fatalf("joined's epoch %d, %v", e, err)
				}
				var indexes []string
				rows, err := log.read.Query("SELECT name FROM sqlite_schema WHERE type = 'index' AND name IN ('rooms_active', 'rooms_listed', 'dms_recent') ORDER BY name")
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var n string
					_ = rows.Scan(&n)
					indexes = append(indexes, n)
				}
				rows.Close()
				if !slices.Equal(indexes, []string{"dms_recent", "rooms_listed"}) {
					t.Fatalf("indexes %v", indexes)
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
	active := plan(activeQuery, "x", 9999, 200)
	// The one scan is the walk of rooms_listed from the newest, stopped
	// by the LIMIT of the scalar subquery.
	if !strings.Contains(active, "SEARCH rooms USING COVERING INDEX rooms_listed") || strings.Contains(active, "TEMP B-TREE") ||
		strings.Contains(strings.ReplaceAll(active, "SCAN rooms USING COVERING INDEX rooms_listed", ""), "SCAN") {
		t.Errorf("the room list: %s", active)
	}
	direct := plan(directQuery, "alice", 100)
	if !strings.Contains(direct, "SEARCH d USING COVERING INDEX dms_recent") || strings.Contains(direct, "TEMP B-TREE") {
		t.Errorf("the direct-message rooms: %s", direct)
	}
	for _, q := range []string{
		activeQuery,
		"SELECT room, head, time FROM rooms WHERE head > 0 AND room IN (?, ?)",
		directQuery,
	} {
		p := plan(q, slices.Repeat([]any{"x"}, strings.Count(q, "?"))...)
		if strings.Contains(p, "messages") || strings.Contains(p, "SCAN dms") || strings.Contains(p, "SCAN markers") {
			t.Errorf("%s\nplan: %s", q, p)
		}
	}
}
