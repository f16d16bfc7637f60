package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chat/internal/testserver"
	"chat/protocol"
	"chat/server/internal/cluster/natstest"
)

// TestClusterUploadResumesOnAnotherNode: an upload begun through node A
// is cut off half-way; the client comes back through node B, which
// knows how far it got (unfinished uploads live in JetStream), finishes
// it and sends the message; a member on node A fetches the file, which
// node A reads from the object store.
func TestClusterUploadResumesOnAnotherNode(t *testing.T) {
	c := startCluster(t, 1, 2)
	a, b := c.nodes[0], c.nodes[1]
	bob := fileClient(t, a.Addr, "general", "bob", "")
	alice := fileClient(t, a.Addr, "general", "alice", "")
	data := randomBytes(1_000_000, 9)
	const id = "cluster-upload"

	alice.Send(&protocol.Upload{Room: "general", ID: id, Name: "across.bin", Size: uint64(len(data))})
	awaitFrame[*protocol.Uploaded](t, alice, "UPLOADED of the begin", nil)
	half := len(data) / 2 / chunkSize * chunkSize
	sendChunks(alice, "general", id, "across.bin", data, 0, half)
	if err := alice.Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := alice.Read(); err != nil {
			break // node A read every chunk and closed
		}
	}
	alice.Conn.Close()
	a.WaitLog("connection closed", func(rec map[string]any) bool { return rec["client"] == "raw-test" && rec["reason"] != nil })

	again := fileClient(t, b.Addr, "general", "alice", "")
	again.Send(&protocol.Upload{Room: "general", ID: id, Name: "across.bin", Size: uint64(len(data))})
	if u := awaitFrame[*protocol.Uploaded](t, again, "UPLOADED of the resume on node B", nil); u.Received != uint64(half) {
		t.Fatalf("node B resumes at %d, want %d", u.Received, half)
	}
	sendChunks(again, "general", id, "across.bin", data, half, len(data))
	f := awaitFrame(t, again, "the finished upload", func(u *protocol.Uploaded) bool { return u.File != nil }).File
	sum := sha256.Sum256(data)
	if f.ID != hex.EncodeToString(sum[:]) || f.Size != uint64(len(data)) {
		t.Fatalf("stored %+v", f)
	}
	seq := sendFile(t, again, "general", id, "sent through B", f)
	if m := awaitFrame(t, bob, "the message on node A", func(m *protocol.Msg) bool { return m.Seq == seq }); m.File == nil || m.File.ID != f.ID {
		t.Fatalf("node A delivered %+v", m)
	}
	got, _ := fetchAll(t, bob, "general", f.ID)
	if sha256.Sum256(got) != sum {
		t.Fatal("the file fetched through node A is not the one uploaded through B")
	}
	// Not a member: refused on either node, with the id.
	eve := fileClient(t, b.Addr, "lobby", "eve", "")
	if e := fetchRefused(t, eve, "general", f.ID); e.Code != protocol.CodeForbidden || e.ID != f.ID {
		t.Fatalf("a non-member's FETCH on node B: %v", e)
	}
}

// TestMigrateAndClusterBackupCarryFiles: a single server's files go into
// the cluster with `migrate` and are served there; a cluster backup
// takes their content beside the backup file, and a restore into another
// cluster serves them again.
func TestMigrateAndClusterBackupCarryFiles(t *testing.T) {
	single := testserver.Start(t, testserver.Options{})
	alice := fileClient(t, single.Addr, "general", "alice", "")
	img := testPNG(t, 200, 100)
	photo := upload(t, alice, "general", "p1", "photo.png", img)
	seq := sendFile(t, alice, "general", "p1", "a photo", photo)
	doc := randomBytes(150_000, 11)
	docFile := upload(t, alice, "general", "d1", "doc.bin", doc)
	sendFile(t, alice, "general", "d1", "", docFile)
	if _, err := single.Stop(); err != nil {
		t.Fatal(err)
	}

	nats := natstest.Start(t, 1)
	if code, out, errOut := chatServer(t, "migrate", "-from-sqlite", single.Data, "-nats", nats.URLs()); code != 0 || !strings.Contains(out, "shared files: 3 files") {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	check := func(where, addr string) {
		t.Helper()
		bob := fileClient(t, addr, "general", "bob", "")
		m := awaitFrame(t, bob, "the photo's message "+where, func(m *protocol.Msg) bool { return m.Seq == seq })
		if m.File == nil || *m.File != *photo {
			t.Fatalf("%s: the message carries %+v, want %+v", where, m.File, photo)
		}
		if got, mime := fetchAll(t, bob, "general", photo.ID); !bytes.Equal(got, img) || mime != "image/png" {
			t.Fatalf("%s: the photo is %d bytes of %q", where, len(got), mime)
		}
		if thumb, _ := fetchAll(t, bob, "general", photo.Thumb); len(thumb) == 0 {
			t.Fatalf("%s: no preview", where)
		}
		if got, _ := fetchAll(t, bob, "general", docFile.ID); !bytes.Equal(got, doc) {
			t.Fatalf("%s: the document differs", where)
		}
		bob.Conn.Close()
	}
	node := testserver.Start(t, testserver.Options{Args: []string{"-nats", nats.URLs()}})
	check("after the migration", node.Addr)

	backupFile := filepath.Join(t.TempDir(), "cluster.db")
	if code, out, errOut := chatServer(t, "backup", "-nats", nats.URLs(), backupFile); code != 0 || !strings.Contains(out, "shared files") {
		t.Fatalf("cluster backup: exit %d\n%s%s", code, out, errOut)
	}
	for _, id := range []string{photo.ID, photo.Thumb, docFile.ID} {
		if _, err := os.Stat(filepath.Join(filesDirOf(backupFile), id[:2], id)); err != nil {
			t.Fatalf("the cluster backup lacks %s: %v", id, err)
		}
	}
	other := natstest.Start(t, 1)
	if code, out, errOut := chatServer(t, "restore", "-nats", other.URLs(), backupFile); code != 0 {
		t.Fatalf("restore into a cluster: exit %d\n%s%s", code, out, errOut)
	}
	restored := testserver.Start(t, testserver.Options{Args: []string{"-nats", other.URLs()}})
	check("after a restore into another cluster", restored.Addr)
}
