package protocol

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the messages in golden_test.go")

// goldenMessages are the spec's reference encodings: two files each in
// testdata/golden, NAME.hex (the frame) and NAME.json (its decoded values,
// see golden_values_test.go). A change to the wire format shows up as a
// diff there.
var goldenMessages = []struct {
	name string
	msg  Message
	note string // for the JSON: what the vector shows, when not obvious
}{
	{"hello", &Hello{Version: 1, Client: "chat-go/1.0"}, ""},
	{"join", &Join{Room: "general", Name: "alice"}, ""},
	{"join-resume", &Join{Room: "general", Name: "alice", Resume: true, After: 300, Key: "k", Secret: "s", Epoch: 0x5eed1234}, ""},
	{"send", &Send{Room: "general", ID: "\x01\x02\x03\x04", Text: "hi ~ there"}, ""},
	{"leave", &Leave{Room: "general"}, ""},
	{"bye", &Bye{}, ""},
	{"ping", &Ping{Nonce: 7}, ""},
	{"pong", &Pong{Nonce: 7}, ""},
	{"welcome", &Welcome{Version: 1, Server: "chat-server/1.0", Time: 1767225600000,
		MaxFrame: 16384, MaxText: 4096, MaxName: 32, MaxRoom: 64, MaxRooms: 16, History: 100, PingMs: 30000,
		Limits: Limits{SendIntervalMs: 200, SendBurst: 20, FloodAfterMs: 10000, RetryAfterMs: 5000,
			QueueFrames: 4096, MaxListed: 500, PresenceBatchAbove: 64, IdleTimeoutMs: 120000}}, ""},
	{"welcome-key", &Welcome{Version: 1, Server: "chat-server/1.0", Time: 1767225600000,
		MaxFrame: 16384, MaxText: 4096, MaxName: 32, MaxRoom: 64, MaxRooms: 16, History: 100, PingMs: 30000,
		Flags: WelcomeKeyRequired,
		Limits: Limits{SendIntervalMs: 0, SendBurst: 20, FloodAfterMs: 10000, RetryAfterMs: 5000,
			QueueFrames: 4096, MaxListed: 500, PresenceBatchAbove: 64, IdleTimeoutMs: 120000}},
		"flags bit 0: JOIN must carry the server's key; send interval 0: no rate limit"},
	{"welcome-inbox", &Welcome{Version: 1, Server: "chat-server/1.1", Time: 1767225600000,
		MaxFrame: 16384, MaxText: 4096, MaxName: 32, MaxRoom: 64, MaxRooms: 64, History: 100, PingMs: 30000,
		Flags: WelcomeInbox,
		Limits: Limits{SendIntervalMs: 200, SendBurst: 20, FloodAfterMs: 10000, RetryAfterMs: 5000,
			QueueFrames: 4096, MaxListed: 500, PresenceBatchAbove: 64, IdleTimeoutMs: 120000}},
		"flags bit 1 inbox: the server understands IDENTIFY, HISTORY, READ and LIST"},
	{"joined", &Joined{Room: "general", Name: "alice", After: 0, Head: 2, Count: 2, Members: []string{"alice", "bob"}, Epoch: 0x5eed1234},
		"read 0, mentions 0: no read marker (a JOIN without secret, or nothing read yet)"},
	{"joined-unread", &Joined{Room: "general", Name: "alice", After: 290, Head: 300, Count: 2, Members: []string{"alice", "bob"},
		Epoch: 0x5eed1234, Read: 295, Mentions: 2},
		"alice read up to 295; 2 of the messages 296-300 mention her"},
	{"identify", &Identify{Name: "alice", Secret: "\x8f\x1e\x03\xa7\x5c\x91\x22\xd0\x6b\x4e\xf5\x10\x39\xc8\x77\x2a"}, ""},
	{"identified", &Identified{Name: "alice", DMs: []RoomState{
		{Room: "@alice@bob", Head: 12, Time: 1767225590000, Read: 10},
		{Room: "@alice@carol", Head: 3, Time: 1767139200000, Read: 3}}},
		"two DM rooms, most recently active first: 2 unread from bob, none from carol"},
	{"identified-none", &Identified{Name: "alice"}, "a name without direct messages"},
	{"history", &History{Room: "general", Before: 291, Limit: 50}, "the 50 messages before 291: 241-290"},
	{"history-newest", &History{Room: "general"}, "before 0: the newest messages; limit 0: the server's default (100)"},
	{"page", &Page{Room: "general", Before: 291, Messages: []Msg{
		{Room: "general", Seq: 289, Time: 1767225500000, Sender: "bob", ID: "b289", Text: "older"},
		{Room: "general", Seq: 290, Time: 1767225510000, Sender: "alice", ID: "\x01\x02", Text: "newer, still older than 291"}}},
		"flags 0: older messages exist"},
	{"page-first", &Page{Room: "general", Before: 3, First: true, Messages: []Msg{
		{Room: "general", Seq: 1, Time: 1767225000000, Sender: "bob", ID: "b1", Text: "first!"},
		{Room: "general", Seq: 2, Time: 1767225001000, Sender: "carol", ID: "c1", Text: "hi bob"}}},
		"flags 1 first: the page reaches the room's first message"},
	{"page-empty", &Page{Room: "general", Before: 1, First: true}, "nothing below sequence 1"},
	{"read", &Read{Room: "general", Seq: 300}, ""},
	{"list", &List{Query: "gen"}, ""},
	{"list-all", &List{}, "an empty query lists every room"},
	{"rooms", &Rooms{Query: "", Rooms: []RoomInfo{
		{Room: "general", Members: 12, Head: 300, Time: 1767225600000},
		{Room: "random", Members: 3, Head: 41, Time: 1767225000000},
		{Room: "quiet", Members: 0, Head: 7, Time: 1767139200000},
		{Room: "new room", Members: 1}}},
		"most members first, then most recent activity; a room without messages has head 0 and time 0"},
	{"rooms-empty", &Rooms{Query: "zzz"}, "no room matches"},
	{"marker", &Marker{Room: "general", Seq: 300}, ""},
	{"notice-mention", &Notice{Kind: NoticeMention, Msg: Msg{Room: "general", Seq: 301, Time: 1767225600500,
		Sender: "bob", ID: "b301", Text: "@Alice lunch?"}}, "kind 1: the message mentions the receiver's name"},
	{"notice-direct", &Notice{Kind: NoticeDirect, Msg: Msg{Room: "@alice@bob", Seq: 13, Time: 1767225600600,
		Sender: "bob", ID: "b13", Text: "are you there?"}}, "kind 2: a message in a direct-message room of the receiver's name"},
	{"ack", &Ack{Room: "general", ID: "\x01\x02\x03\x04", Seq: 3, Time: 1767225600250}, ""},
	{"message", &Msg{Room: "general", Seq: 3, Time: 1767225600250, Sender: "alice", ID: "\x01\x02\x03\x04", Text: "hi ~ there"}, ""},
	{"message-unicode", &Msg{Room: "général", Seq: 128, Time: 1767225600250, Sender: "Zoë", ID: "x",
		Text: "line one\nline two 🎉 שלום"}, ""},
	{"presence", &Presence{Room: "general", Count: 2, Changes: []PresenceChange{{PresenceJoined, "bob"}}}, ""},
	{"presence-left", &Presence{Room: "general", Count: 2, Changes: []PresenceChange{{PresenceLeft, "bob"}, {PresenceJoined, "carol"}, {PresenceLeft, "dave"}}},
		"several changes, applied in order: bob left, carol joined, dave left"},
	{"presence-unknown-kind", &Presence{Room: "general", Count: 3, Changes: []PresenceChange{{3, "erin"}, {PresenceJoined, "frank"}}},
		"kind 3 is not defined: a receiver skips that change, applies the others and count"},
	{"left", &Left{Room: "general"}, ""},
	{"error", NewError(CodeNameTaken, "general", "the name alice is taken in general"), "flags 0: not closing; the room stays refused"},
	{"error-restart", NewError(CodeServerRestarting, "", "server restarting"), "flags 3: closing and reconnect"},
	{"error-idle", &Error{Code: CodeTimeout, Flags: ErrorClosing, Text: "in no room for 2m0s; connect again to join a room"},
		"the idle timeout: flags 1, closing without reconnect"},
	{"error-forbidden", NewError(CodeForbidden, "@bob@carol", "only bob and carol can join their direct messages"),
		"flags 0: not closing; the room is the DM's canonical name"},
	{"join-invite", &Join{Room: "club", Name: "dave", Secret: "s", Invite: "Xq3k9PzA"},
		"an invite code from the MODERATED of an invite, for an invite-only room"},
	{"joined-moderated", &Joined{Room: "club", Name: "alice", After: 0, Head: 2, Count: 1, Members: []string{"alice"},
		Epoch: 0x5eed1234, Topic: "Friday: release party", Modes: ModeInviteOnly | ModeOperator},
		"modes 3: the room is invite-only (bit 0) and alice is one of its operators (bit 1)"},
	{"moderate-oper", &Moderate{Action: ModOper, Text: "s3cret-operator-token"},
		"action 1 oper: room empty, text the server's operator token"},
	{"moderate-kick", &Moderate{Room: "general", Action: ModKick, Target: "mallory", Text: "spam"},
		"action 4 kick, with a reason"},
	{"moderate-ban", &Moderate{Room: "general", Action: ModBan, Target: "mallory", Seconds: 86400, Text: "flooding"},
		"action 5 ban for a day (86400 s)"},
	{"moderate-delete", &Moderate{Room: "general", Action: ModDelete, Seq: 289},
		"action 10 delete: the text of message 289 is removed"},
	{"moderate-invite", &Moderate{Room: "club", Action: ModInvite, Seconds: 3600},
		"action 14 invite: a code valid for an hour"},
	{"moderated-invite", &Moderated{Room: "club", Action: ModInvite, Text: "Xq3k9PzA"},
		"the invite code to hand to the invited person"},
	{"moderated-op", &Moderated{Room: "general", Action: ModOp, Target: "bob"}, ""},
	{"modevent-ban", &ModEvent{Room: "general", Action: ModBan, Actor: "alice", Target: "mallory",
		Until: 1767312000000, Text: "flooding"}, "until: the end of the ban"},
	{"modevent-delete", &ModEvent{Room: "general", Action: ModDelete, Actor: "operator", Seq: 289},
		"a server operator not in the room deleted message 289"},
	{"modevent-topic", &ModEvent{Room: "general", Action: ModTopic, Actor: "alice", Text: "Friday: release party"}, ""},
	{"error-banned", NewError(CodeBanned, "general", "mallory is banned from general until 2026-01-02 00:00 UTC"),
		"flags 0: not closing; the room stays refused"},
	{"error-room-create-refused", NewError(CodeRoomCreateRefused, "plans", "there is no room plans yet, and creating rooms on this server needs its room creation key"),
		"code 212: the JOIN would have created the room; flags 0: not closing"},

	// Acting on messages (README.md section 4): reply, edit, delete, react,
	// typing, search.
	{"welcome-messages", &Welcome{Version: 1, Server: "chat-server/1.3", Time: 1767225600000,
		MaxFrame: 16384, MaxText: 4096, MaxName: 32, MaxRoom: 64, MaxRooms: 64, History: 100, PingMs: 30000,
		Flags: WelcomeInbox | WelcomeModeration | WelcomeMessages,
		Limits: Limits{SendIntervalMs: 200, SendBurst: 20, FloodAfterMs: 10000, RetryAfterMs: 5000,
			QueueFrames: 4096, MaxListed: 500, PresenceBatchAbove: 64, IdleTimeoutMs: 120000}},
		"flags 14: inbox (bit 1), moderation (bit 2) and messages (bit 3): CHANGE, TYPING, SEARCH, SEND's reply, HISTORY's flags"},
	{"joined-no-typing", &Joined{Room: "lobby", Name: "alice", After: 900, Head: 1000, Count: 250, Members: []string{"alice", "bob"},
		Epoch: 0x5eed1234, Modes: ModeNoTyping},
		"modes 8 no-typing: 250 members, more than the server forwards typing for; 2 of the 250 names listed"},
	{"send-reply", &Send{Room: "general", ID: "\x05\x06\x07\x08", Text: "me too", Reply: 3},
		"reply 3: answers message 3 of general"},
	{"message-reply", &Msg{Room: "general", Seq: 4, Time: 1767225601000, Sender: "bob", ID: "\x05\x06\x07\x08", Text: "me too", Reply: 3},
		"the appended fields are written when one is set: reply 3, never edited, no reactions"},
	{"message-edited", &Msg{Room: "general", Seq: 3, Time: 1767225600250, Sender: "alice", ID: "\x01\x02\x03\x04",
		Text: "hi ~ there, all", Edited: 1767225660000},
		"text as edited; edited: when it last changed"},
	{"message-deleted", &Msg{Room: "general", Seq: 5, Time: 1767225602000, Sender: "alice", ID: "a5", Edited: 1767225700000},
		"empty text and edited set: deleted (by its sender or an operator) at edited"},
	{"message-reactions", &Msg{Room: "general", Seq: 3, Time: 1767225600250, Sender: "alice", ID: "\x01\x02\x03\x04",
		Text: "hi ~ there", Reactions: []Reaction{
			{Emoji: "👍", Count: 2, Names: []string{"bob", "carol"}},
			{Emoji: "🎉", Count: 1, Names: []string{"bob"}}}},
		"reactions in the order of the reaction set, only emoji with a count; names oldest first"},
	{"notice-reply", &Notice{Kind: NoticeMention, Msg: Msg{Room: "general", Seq: 302, Time: 1767225600700,
		Sender: "bob", ID: "b302", Text: "@alice see above", Reply: 299}},
		"a NOTICE carries MESSAGE's appended fields as MESSAGE does"},
	{"history-full", &History{Room: "general", Before: 291, Limit: 50, Full: true},
		"flags 1 full: PAGE records with every MESSAGE field"},
	{"page-full", &Page{Room: "general", Before: 10, Full: true, Messages: []Msg{
		{Room: "general", Seq: 6, Time: 1767225500000, Sender: "bob", ID: "b6", Text: "lunch?",
			Reactions: []Reaction{{Emoji: "👍", Count: 1, Names: []string{"alice"}}}},
		{Room: "general", Seq: 8, Time: 1767225510000, Sender: "alice", ID: "a8", Text: "yes, at noon", Reply: 6, Edited: 1767225520000},
		{Room: "general", Seq: 9, Time: 1767225530000, Sender: "bob", ID: "b9", Edited: 1767225540000}}},
		"flags 2 full: each record has reply, edited and reactions; seq 7 and 10 are change entries, which PAGE skips"},
	{"error-invalid", &Error{Code: CodeInvalid, Room: "general", Text: "🦄 is not a reaction", ID: "c1"},
		"code 214 invalid, with the id of the CHANGE it refuses"},
	{"error-change-forbidden", &Error{Code: CodeForbidden, Room: "general", Text: "message 4 is bob's: only its sender edits it", ID: "c2"},
		"code 206: an edit of another name's message; id: the CHANGE's"},
	{"change-edit", &Change{Room: "general", Kind: ChangeEdit, Target: 3, ID: "c3", Text: "hi ~ there, all"},
		"kind 1 edit: the new text of message 3"},
	{"change-delete", &Change{Room: "general", Kind: ChangeDelete, Target: 5, ID: "c4"},
		"kind 2 delete: text empty"},
	{"change-react", &Change{Room: "general", Kind: ChangeReact, Target: 3, ID: "c5", Text: "🎉"},
		"kind 3 react: text is the emoji"},
	{"change-unreact", &Change{Room: "general", Kind: ChangeUnreact, Target: 3, ID: "c6", Text: "🎉"},
		"kind 4 unreact: takes the name's 🎉 back"},
	{"update-edit", &Update{Room: "general", Seq: 6, Time: 1767225660000, Actor: "alice", Kind: ChangeEdit, Target: 3,
		State: &Msg{Room: "general", Seq: 3, Time: 1767225600250, Sender: "alice", ID: "\x01\x02\x03\x04",
			Text: "hi ~ there, all", Edited: 1767225660000}},
		"flags 1: the state of message 3 after the edit follows"},
	{"update-react", &Update{Room: "general", Seq: 7, Time: 1767225670000, Actor: "bob", Kind: ChangeReact, Target: 3, Emoji: "👍",
		State: &Msg{Room: "general", Seq: 3, Time: 1767225600250, Sender: "alice", ID: "\x01\x02\x03\x04",
			Text: "hi ~ there, all", Edited: 1767225660000, Reactions: []Reaction{{Emoji: "👍", Count: 1, Names: []string{"bob"}}}}},
		"bob reacted 👍 to message 3"},
	{"update-delete", &Update{Room: "general", Seq: 8, Time: 1767225700000, Actor: "operator", Kind: ChangeDelete, Target: 5,
		State: &Msg{Room: "general", Seq: 5, Time: 1767225602000, Sender: "alice", ID: "a5", Edited: 1767225700000}},
		"a server operator deleted message 5: its state has an empty text"},
	{"update-replay", &Update{Room: "general", Seq: 6, Time: 1767225660000, Actor: "alice", Kind: ChangeEdit, Target: 3},
		"flags 0, no state: in a replay, message 3 itself or a later UPDATE carries its final state"},
	{"typing", &Typing{Room: "general"}, ""},
	{"typing-stopped", &Typing{Room: "general", Stopped: true}, "flags 1 stopped: the user stopped typing (sent the text or cleared it)"},
	{"is-typing", &IsTyping{Room: "general", Name: "bob"}, "bob is typing: show it for 6 s unless renewed"},
	{"is-typing-stopped", &IsTyping{Room: "@alice@bob", Name: "bob", Stopped: true}, "flags 1 stopped"},
	{"search", &Search{Query: "lunch"}, "every room in scope, newest first; limit 0: 20"},
	{"search-room", &Search{Query: "release par", Room: "general", Before: 1767225600000, Limit: 5},
		"only general, messages before 2026-01-01T00:00:00Z, at most 5; the last word is a prefix"},
	{"results", &Results{Query: "lunch", More: true, Hits: []Hit{
		{Room: "general", Seq: 6, Time: 1767225500000, Sender: "bob", Text: "lunch?", Matches: []Span{{0, 5}}},
		{Room: "@alice@bob", Seq: 12, Time: 1767225400000, Sender: "alice", Text: "Lunch at noon? Lunch!",
			Matches: []Span{{0, 5}, {15, 20}}}}},
		"newest first; matches: byte offsets [start, end) in text; flags 1 more: ask again with before 1767225400000"},
	{"results-empty", &Results{Query: "zebra"}, "nothing matches"},

	// Files (README.md section 4): upload, send, fetch.
	{"welcome-files", &Welcome{Version: 1, Server: "chat-server/1.4", Time: 1767225600000,
		MaxFrame: 16384, MaxText: 4096, MaxName: 32, MaxRoom: 64, MaxRooms: 64, History: 100, PingMs: 30000,
		Flags: WelcomeInbox | WelcomeModeration | WelcomeMessages | WelcomeFiles,
		Limits: Limits{SendIntervalMs: 200, SendBurst: 20, FloodAfterMs: 10000, RetryAfterMs: 5000,
			QueueFrames: 4096, MaxListed: 500, PresenceBatchAbove: 64, IdleTimeoutMs: 120000,
			FileBytesPerSec: 8 << 20, MaxUpload: 25 << 20}},
		"flags 30: inbox, moderation, messages and files (bit 4); file rate 8 MiB/s, max upload 25 MiB"},
	{"upload-begin", &Upload{Room: "general", ID: goldenUploadID, Name: "photo.jpg", Size: 1234567},
		"the begin frame: offset 0, no data; starts the upload, or resumes it (UPLOADED says from where)"},
	{"upload-chunk", &Upload{Room: "general", ID: goldenNotesID, Name: "notes.txt", Size: 12, Offset: 7, Data: []byte("world")},
		"the second chunk of a 12-byte file: bytes 7-11 (the server has 0-6); a real chunk fills its frame up to max frame"},
	{"uploaded-begin", &Uploaded{Room: "general", ID: goldenUploadID},
		"the answer to a begin frame of a new upload: the server has nothing; files 0: not complete"},
	{"uploaded-progress", &Uploaded{Room: "general", ID: goldenUploadID, Received: 1 << 20},
		"progress (about every MiB), or the answer to a chunk at the wrong offset: go on from byte 1048576"},
	{"uploaded-done", &Uploaded{Room: "general", ID: goldenUploadID, Received: 1234567, File: &goldenPhoto},
		"complete and stored: the file record; its id is the SHA-256 of the stored (metadata-stripped) bytes"},
	{"send-file", &Send{Room: "general", ID: goldenUploadID, File: goldenPhoto.ID},
		"the upload's id; an empty caption; reply 0 is written because file follows it"},
	{"send-file-caption", &Send{Room: "general", ID: goldenNotesID, Text: "the notes, as promised", Reply: 4, File: goldenNotes.ID},
		"a caption and a reply"},
	{"message-file", &Msg{Room: "general", Seq: 10, Time: 1767225700000, Sender: "alice", ID: goldenUploadID, File: &goldenPhoto},
		"an image without caption: reply, edited and reactions written as zeros, then the file; a client of before reads a message with an empty text"},
	{"message-file-caption", &Msg{Room: "general", Seq: 11, Time: 1767225710000, Sender: "alice", ID: goldenNotesID,
		Text: "the notes, as promised", Reply: 4, File: &goldenNotes}, "a file that is not an image: width, height 0, no thumb"},
	{"notice-file", &Notice{Kind: NoticeDirect, Msg: Msg{Room: "@alice@bob", Seq: 14, Time: 1767225720000,
		Sender: "bob", ID: "b14", File: &goldenPhoto}}, "a NOTICE carries the file as MESSAGE does"},
	{"update-file", &Update{Room: "general", Seq: 12, Time: 1767225730000, Actor: "bob", Kind: ChangeReact, Target: 10, Emoji: "👍",
		State: &Msg{Room: "general", Seq: 10, Time: 1767225700000, Sender: "alice", ID: goldenUploadID,
			Reactions: []Reaction{{Emoji: "👍", Count: 1, Names: []string{"bob"}}}, File: &goldenPhoto}},
		"flags 3: the state follows (bit 0), and its file after it (bit 1)"},
	{"update-delete-file", &Update{Room: "general", Seq: 13, Time: 1767225740000, Actor: "alice", Kind: ChangeDelete, Target: 10,
		State: &Msg{Room: "general", Seq: 10, Time: 1767225700000, Sender: "alice", ID: goldenUploadID, Edited: 1767225740000}},
		"deleting a message removes its file with its text: flags 1, the state has no file"},
	{"history-files", &History{Room: "general", Before: 12, Limit: 50, Full: true, Files: true},
		"flags 3: full records (bit 0) with their files (bit 1)"},
	{"page-files", &Page{Room: "general", Before: 12, Full: true, Files: true, Messages: []Msg{
		{Room: "general", Seq: 9, Time: 1767225690000, Sender: "bob", ID: "b9", Text: "pictures?"},
		{Room: "general", Seq: 10, Time: 1767225700000, Sender: "alice", ID: goldenUploadID, File: &goldenPhoto},
		{Room: "general", Seq: 11, Time: 1767225710000, Sender: "alice", ID: goldenNotesID, Text: "the notes, as promised", Reply: 4, File: &goldenNotes}}},
		"flags 6: full records (bit 1) each followed by its file (bit 2): files 0 for a message without one"},
	{"fetch", &Fetch{Room: "general", File: goldenPhoto.Thumb, Offset: 0, Length: MaxPart},
		"the photo's preview, the first 64 KiB (all of it: it is smaller)"},
	{"fetch-range", &Fetch{Room: "general", File: goldenNotes.ID, Offset: 7, Length: 5}, "bytes 7-11 of notes.txt"},
	{"part", &Part{Room: "general", File: goldenNotes.ID, Offset: 0, Size: 12, MIME: "text/plain; charset=utf-8", Data: []byte("hello, world")},
		"a whole small file: offset 0, all 12 bytes"},
	{"part-range", &Part{Room: "general", File: goldenNotes.ID, Offset: 7, Size: 12, MIME: "text/plain; charset=utf-8", Data: []byte("world")},
		"the answer to fetch-range"},
	{"error-too-big", &Error{Code: CodeTooBig, Room: "general", Text: "video.mp4 is 40.0 MiB; this server takes files up to 25.0 MiB", ID: "\x20\x21\x22\x23"},
		"code 215, at the begin frame; id: the upload's"},
	{"error-quota", &Error{Code: CodeQuota, Room: "general", Text: "alice's files would take 1.02 GiB; the limit is 1.00 GiB", ID: goldenUploadID},
		"code 216: the name's (or the server's) quota, checked at the begin frame with the whole size"},
	{"error-file-not-found", &Error{Code: CodeNotFound, Room: "general", Text: "no message of general carries this file", ID: goldenPhoto.ID},
		"a FETCH of a file no live message of the room carries; id: the FETCH's file"},
}

// The files of the golden vectors.
var (
	goldenUploadID = "\x10\x11\x12\x13\x14\x15\x16\x17"
	goldenNotesID  = "\x30\x31\x32\x33\x34\x35\x36\x37"
	goldenPhoto    = File{ID: "5f1b8e6c2a7d9e04b3c1f8a6d2e9b7c4a1f0e3d6c9b8a7f6e5d4c3b2a1908172",
		Name: "photo.jpg", Type: "image/jpeg", Size: 1234567, Width: 3024, Height: 4032,
		Thumb: "b7e23ec29af22b0b4e41da31e868d57226121c84e7c8f1d1a1ba5a1ba1e5b3c4", ThumbWidth: 240, ThumbHeight: 320}
	// goldenNotes is a file whose content is "hello, world": its ID is
	// that text's SHA-256.
	goldenNotes = File{ID: "09ca7e4eaa6e8ae9c7d261167129184883644d07dfba7cbfbc4c8a2e08360d5b",
		Name: "notes.txt", Type: "text/plain; charset=utf-8", Size: 12}
)

// checkGoldenValues decodes the vector's hex with the spec's tables alone
// (decodeBySpec) and compares it, field by field, with its JSON.
func checkGoldenValues(t *testing.T, frame []byte, jsonPath string) {
	t.Helper()
	doc, err := readGolden(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBySpec(frame)
	if err != nil {
		t.Fatalf("the hex does not decode by the spec's tables: %v", err)
	}
	if got.Frame != doc.Frame || got.Type != doc.Type || got.Length != doc.Length {
		t.Errorf("the hex is %s %s of length %d; the JSON says %s %s of length %d",
			got.Frame, got.Type, got.Length, doc.Frame, doc.Type, doc.Length)
	}
	if len(got.Fields) != len(doc.Fields) {
		t.Fatalf("the hex has %d fields, the JSON %d", len(got.Fields), len(doc.Fields))
	}
	for i, f := range got.Fields {
		w := doc.Fields[i]
		if f.Name != w.Name || f.Kind != w.Kind {
			t.Errorf("field %d: the spec has %s (%s), the JSON %s (%s)", i, f.Name, f.Kind, w.Name, w.Kind)
			continue
		}
		if g, w := canonical(f.Value), canonical(w.Value); g != w {
			t.Errorf("field %s: the hex says %s, the JSON %s", f.Name, g, w)
		}
	}
}

// readHexFile parses a hex dump in which '#' starts a comment.
func readHexFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var digits strings.Builder
	for line := range strings.Lines(string(data)) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

func formatHex(m Message, frame []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s frame: length %d, type 0x%02x, payload %d bytes\n", m.Type(), len(frame)-LengthSize, frame[LengthSize], len(frame)-LengthSize-1)
	fmt.Fprintf(&b, "%s  # length\n%s  # type\n", hex.EncodeToString(frame[:4]), hex.EncodeToString(frame[4:5]))
	payload := frame[5:]
	for len(payload) > 0 {
		n := min(16, len(payload))
		fmt.Fprintf(&b, "%s\n", spaced(payload[:n]))
		payload = payload[n:]
	}
	return b.String()
}

func spaced(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = hex.EncodeToString([]byte{c})
	}
	return strings.Join(parts, " ")
}

func TestGoldenVectors(t *testing.T) {
	seen := map[Type]bool{}
	for _, g := range goldenMessages {
		t.Run(g.name, func(t *testing.T) {
			path := filepath.Join("testdata", "golden", g.name+".hex")
			frame := Encode(g.msg)
			if *update {
				if err := os.WriteFile(path, []byte(formatHex(g.msg, frame)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			jsonPath := strings.TrimSuffix(path, ".hex") + ".json"
			if *update {
				doc := goldenDocOf(g.msg, len(frame)-LengthSize, g.note)
				if err := os.WriteFile(jsonPath, marshalGolden(doc), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := readHexFile(t, path)
			checkGoldenValues(t, want, jsonPath)
			if !bytes.Equal(frame, want) {
				t.Fatalf("encoding changed:\n got %x\nwant %x", frame, want)
			}
			got, err := Decode(want[LengthSize:])
			if err != nil {
				t.Fatalf("decode golden: %v", err)
			}
			if !reflect.DeepEqual(got, g.msg) {
				t.Fatalf("decode golden:\n got %#v\nwant %#v", got, g.msg)
			}
		})
		seen[g.msg.Type()] = true
	}
	for typ := range typeNames {
		if !seen[typ] {
			t.Errorf("no golden vector for %v", typ)
		}
	}
}

// TestSpecExampleSession checks that the example session in README.md is
// byte for byte what this package encodes and decodes, so the spec cannot
// drift from the code.
func TestSpecExampleSession(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "<!-- example-session -->")
	if !ok {
		t.Fatal("README.md has no <!-- example-session --> block")
	}
	block, _, _ := strings.Cut(rest, "<!-- /example-session -->")
	var frames [][]byte
	for line := range strings.Lines(block) {
		// Frame lines look like "C→S  00 00 00 0e 01 …  # comment".
		fields := strings.Fields(line)
		if len(fields) < 2 || (fields[0] != "C→S" && fields[0] != "S→C") {
			continue
		}
		hexPart, _, _ := strings.Cut(strings.Join(fields[1:], " "), "#")
		b, err := hex.DecodeString(strings.ReplaceAll(hexPart, " ", ""))
		if err != nil {
			t.Fatalf("bad hex in %q: %v", line, err)
		}
		frames = append(frames, b)
	}
	if len(frames) < 8 {
		t.Fatalf("found %d frames in the example session, want at least 8", len(frames))
	}
	for i, frame := range frames {
		body, err := ReadFrame(bytes.NewReader(frame), MaxFrame, nil)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		m, err := Decode(body)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if again := Encode(m); !bytes.Equal(again, frame) {
			t.Fatalf("frame %d (%v) does not re-encode to itself:\n got %x\nwant %x", i, m.Type(), again, frame)
		}
	}
}
