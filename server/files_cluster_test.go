package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"testing"

	"chat/protocol"
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
