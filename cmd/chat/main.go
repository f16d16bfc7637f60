// Command chat is the terminal chat client. It prints the room to stdout,
// one line per message ("[15:04] alice: hello"), and sends each line read
// from stdin. At the end of input it waits for its messages to be stored,
// leaves and exits, so it works in pipes and scripts:
//
//	echo "deploy finished" | chat -server chat.example.com:7878 -name ci-bot
//
// -server (or CHAT_SERVER) takes a comma-separated list of the addresses
// of one service, the nodes of a cluster: chat connects to the first
// that answers, trying every address each host name resolves to, moves
// to another when the connection is lost, and says which one it is
// connected to. Certificates are trusted (-trust) per address.
//
// Lines starting with / are commands: /join ROOM (join it, or switch to
// it; lines then go there), /part (leave the current room), /msg NAME
// text (a direct message), /rooms (the server's rooms), /names (who is
// in the current room), the commands on messages (/reply SEQ text,
// /edit SEQ text, /delete SEQ, /react SEQ EMOJI, /unreact SEQ EMOJI,
// /search WORDS; SEQ is a message's number, shown as [12] once one of
// these is used), files (/upload PATH [caption] sends a file, /download
// SEQ PATH saves one; a file message prints as "alice sent photo.jpg
// (1.2 MB): caption"), the moderation commands (/kick, /ban, /mute,
// /topic, /invite… for operators; /help lists them) and /help; "//" starts a line that begins with
// "/". Changes print as lines a script can read: "* alice edited [12]:
// new text", "* alice deleted [12]", "* bob reacted 👍 to [12]"; a reply
// as "alice (reply to [7] bob: first words…): text". In several rooms at once, each line says which one it is about
// ("[#random] [15:04] bob: hi", "[@bob] …" for direct messages). A direct
// message for us opens its conversation: chat joins it and prints it.
// What chat prints counts as read on our name's other devices.
//
// Your own lines appear when the server has stored them, at their place in
// the room, so that everyone's transcript has one order. Sending is paced
// to the server's rate limit (5 lines a second after a burst of 20 by
// default): a long pipe takes a while, and chat exits 0 only once every
// line is stored.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"chat/client"
	"chat/protocol"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", envOr("CHAT_SERVER", "localhost:7878"), "server `address`: host:port, tls://host:port or wss://host/ws; several, comma-separated, for the nodes of a cluster (env CHAT_SERVER)")
	name := fs.String("name", os.Getenv("CHAT_NAME"), "your name in the room (env CHAT_NAME)")
	roomName := fs.String("room", protocol.DefaultRoom, "room to join first (@NAME: the direct messages with NAME)")
	invite := fs.String("invite", "", "invite `code` for the -room room, when it is invite-only (an operator's /invite gives one)")
	key := fs.String("key", os.Getenv("CHAT_KEY"), "the server's access `key`, if it has one (env CHAT_KEY)")
	trust := fs.String("trust", "", "trust the server's certificate with this `fingerprint` (SHA256:…, as shown when it is refused) and remember it; ADDRESS=SHA256:… for one server of a list (a plain fingerprint: for every server listed)")
	nameKey := fs.String("name-key", "", "use this name `key` (from your other device) to own your names here too, and remember it")
	showNameKey := fs.Bool("show-name-key", false, "print this computer's name key, to copy to another device, and exit")
	wait := fs.Duration("wait", 10*time.Second, "at end of input, how long to wait for unacknowledged messages without progress (sending is paced to the server's rate; each acknowledgement starts the wait again)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chat -name NAME [-server HOST:PORT[,HOST:PORT…]] [-room ROOM]\n\nPrints the room's messages and sends each line of input. Type /help for the commands:\n"+
			"/join, /part, /msg, /rooms, /names; on messages (SEQ is a message's number, shown as [SEQ] once one of these is used, or after /seqs on):\n"+
			"/reply SEQ TEXT, /edit SEQ TEXT, /delete SEQ, /react SEQ EMOJI, /unreact SEQ EMOJI, /search WORDS;\n"+
			"/upload PATH [CAPTION], /download SEQ PATH; and moderation.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	st, err := loadState()
	if err != nil {
		fmt.Fprintf(stderr, "chat: %v\n", err)
		return 1
	}
	if *nameKey != "" {
		// Keys are often pasted in groups or across lines: spaces are not part of them.
		st.NameKey = strings.Join(strings.Fields(*nameKey), "")
		if err := st.save(); err != nil {
			fmt.Fprintf(stderr, "chat: saving the name key: %v\n", err)
			return 1
		}
	}
	if *showNameKey {
		fmt.Fprintln(stdout, st.NameKey)
		return 0
	}
	if *name == "" {
		fmt.Fprintln(stderr, "chat: give your name with -name NAME")
		return 2
	}
	servers := client.SplitAddrs(*server)
	if len(servers) == 0 {
		fmt.Fprintln(stderr, "chat: give the server's address with -server HOST:PORT")
		return 2
	}
	if *trust != "" {
		for addr, fp := range trustArg(*trust, servers) {
			st.Pins[addr] = fp
		}
		if err := st.save(); err != nil {
			fmt.Fprintf(stderr, "chat: saving the fingerprint: %v\n", err)
			return 1
		}
	}
	// Pins are per address: the nodes of a cluster may each have a
	// certificate of their own.
	pins := map[string]string{}
	for _, addr := range servers {
		if fp, ok := st.Pins[addr]; ok {
			pins[addr] = fp
		}
	}
	c, err := client.New(client.Config{Addr: servers[0], Addrs: servers[1:], Name: *name, Key: *key, Secret: st.NameKey,
		TLS: client.TLSOptions{Pins: pins}, Software: "chat-terminal"})
	if err != nil {
		fmt.Fprintf(stderr, "chat: %v\n", err)
		return 2
	}
	room, err := roomArg(c, *roomName)
	if err == nil {
		err = c.JoinWith(room, client.JoinOptions{Invite: strings.TrimSpace(*invite)})
	}
	if err != nil && !errors.Is(err, client.ErrClosed) {
		// ErrClosed: the client already stopped (a refused certificate,
		// say); the loop below prints why.
		fmt.Fprintf(stderr, "chat: %v\n", err)
		c.Close()
		return 2
	}
	list := strings.Join(servers, ",")
	fmt.Fprintf(stdout, "-- connecting to %s as %s\n", list, *name)

	lines := make(chan string)
	inputDone := make(chan error, 1)
	if ed, restore := keyInput(stdin, stdout); ed != nil {
		// A person at a terminal: key by key, so the room hears that
		// they are typing.
		defer restore()
		ed.limit = c.MaxText
		drafts := make(chan bool, 1)
		go func() {
			// A panic here would end chat with the terminal still
			// without echo; give it back first.
			defer func() {
				if p := recover(); p != nil {
					restore()
					panic(p)
				}
			}()
			ed.run(lines, drafts, inputDone)
		}()
		return loopDrafts(ctx, c, room, list, *wait, lines, drafts, inputDone, ed.over(stdout), ed.over(stderr))
	}
	go func() {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		inputDone <- sc.Err()
	}()
	return loop(ctx, c, room, list, *wait, lines, inputDone, stdout, stderr)
}

// keyInput returns the editor for input from a terminal, with output to
// a terminal too, and the function that gives the terminal its line
// editing back; nil when input is a pipe or a file (lines are read as
// they are, and no typing indicator is sent), or the system has no
// key-by-key input.
func keyInput(stdin io.Reader, stdout io.Writer) (*editor, func()) {
	f, ok := stdin.(*os.File)
	if !ok || !isTerminal(f) || !isTerminal(stdout) {
		return nil, nil
	}
	ed := &editor{in: f, out: stdout}
	restore, err := rawInput(f, ed.redrawDraft)
	if err != nil {
		return nil, nil
	}
	return ed, restore
}

// trustArg returns the pins a -trust value sets: ADDRESS=FINGERPRINT
// pins that address; a plain fingerprint pins every address listed
// (the nodes of a cluster often share one certificate).
func trustArg(v string, servers []string) map[string]string {
	v = strings.TrimSpace(v)
	pins := map[string]string{}
	if addr, fp, ok := strings.Cut(v, "="); ok && !strings.HasPrefix(strings.ToUpper(v), "SHA256:") {
		pins[strings.TrimSpace(addr)] = strings.TrimSpace(fp)
		return pins
	}
	for _, addr := range servers {
		pins[addr] = v
	}
	return pins
}

// loop prints events and handles lines (commands, or text for the
// current room) until the input ends; then it waits until what it sent is
// stored and has come back (so a transcript in a pipe is complete), and
// what it asked for (joins, room lists) has come, and leaves.
//
// Our own lines are printed when the server's MESSAGE brings them, not
// when they are typed: at their place in the room's sequence, so every
// member's transcript has the same order, even for a line typed offline
// that is stored after what others said meanwhile.
//
// At the end of input it waits as long as the messages make progress: the
// client paces what it sends to the server's rate, so a long pipe takes a
// while, and -wait bounds the time without any acknowledgement, not the
// whole send.
func loop(ctx context.Context, c *client.Client, room, server string, wait time.Duration,
	lines <-chan string, inputDone <-chan error, stdout, stderr io.Writer) int {
	return loopDrafts(ctx, c, room, server, wait, lines, nil, inputDone, stdout, stderr)
}

// loopDrafts is loop with the drafts of an interactive terminal (the
// line being typed, after each key): the current room hears that the
// user is typing, unless the draft is a command.
func loopDrafts(ctx context.Context, c *client.Client, room, server string, wait time.Duration,
	lines <-chan string, drafts <-chan bool, inputDone <-chan error, stdout, stderr io.Writer) int {
	t := newTerm(c, room, server, stdout, stderr)
	// The downloads end with the client: wait for them to remove their
	// partial files.
	defer func() {
		c.Close()
		t.transfers.Wait()
	}()
	code := 0
	unacked := map[string]bool{}              // ids sent, not yet stored
	unseen := map[string]bool{}               // ids sent, not yet printed
	changes := newChangeWaits(maxChangeWaits) // changes acknowledged, until their UPDATE is printed
	ended, closing, echoWait := false, false, false
	var giveUp *time.Timer
	var giveUpC <-chan time.Time
	arm := func(d time.Duration) {
		if giveUp != nil {
			giveUp.Stop()
		}
		giveUp = time.NewTimer(d)
		giveUpC = giveUp.C
	}
	// What is printed is marked read once the room is quiet for a moment,
	// so that one READ covers a burst of messages.
	markT := time.NewTimer(time.Hour)
	markT.Stop()
	defer markT.Stop()
	leave := func() {
		if !closing {
			closing = true
			c.Close() // the loop ends on Closed
		}
	}
	// settle leaves once everything sent is stored and printed, and what
	// was asked for has come; once it is stored, the echo is on its way,
	// but it does not wait forever for it.
	// Downloads are waited for like the lines: as long as they make
	// progress (the -wait timer, started again on progress).
	settle := func() {
		switch {
		case !ended || len(unacked) > 0 || t.downloads > 0:
		case len(unseen) == 0 && !t.pending():
			leave()
		case !echoWait:
			echoWait = true
			arm(2 * time.Second)
		}
	}
	offlineNoted := false
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				return max(code, 1)
			}
			switch e := ev.(type) {
			case client.Message:
				delete(unseen, e.ID)
				markT.Reset(time.Second)
			case client.Acked:
				delete(unacked, e.ID)
				if _, ok := t.changes[e.ID]; ok {
					// A change is seen when its UPDATE comes.
					delete(t.changes, e.ID)
					for _, id := range changes.acked(e.Room, e.Seq, e.ID) {
						delete(unseen, id) // its UPDATE came first, or it waited too long
					}
				}
				if ended && !echoWait {
					arm(wait) // progress: the wait starts again
				}
			case client.Updated:
				if id, ok := changes.updated(e.Room, e.Seq); ok {
					delete(unseen, id)
				}
			case client.RoomError:
				for _, id := range e.Unsent {
					delete(unacked, id)
					delete(unseen, id)
				}
				if len(e.Unsent) > 0 {
					code = 1 // lines not stored: the exit says so
				}
			case client.Left:
				for _, id := range e.Unsent {
					delete(unacked, id)
					delete(unseen, id)
				}
				if len(e.Unsent) > 0 {
					code = 1
				}
			case client.StateChanged:
				if e.State == client.Connected {
					offlineNoted = false
				}
			case client.Uploading:
				if ended && !echoWait {
					arm(wait) // progress: the wait starts again
				}
			}
			if evCode, done := t.event(ev); done {
				return max(code, evCode)
			}
			settle()
		case line := <-lines:
			refused := t.refused
			id := t.line(line)
			if t.refused > refused {
				code = 1 // a line not stored: the exit says so
			}
			if id == "" {
				continue
			}
			unacked[id], unseen[id] = true, true
			if c.State() == client.Reconnecting && !offlineNoted {
				offlineNoted = true
				fmt.Fprintln(stdout, "-- not connected: what you type is sent when the connection is back, and shown at its place in the room")
			}
		case err := <-inputDone:
			inputDone = nil
			ended = true
			if err != nil {
				fmt.Fprintf(stderr, "chat: reading input: %v\n", err)
				code = 1
			}
			arm(wait)
			settle()
		case d := <-drafts:
			t.draft(d)
		case f := <-t.results:
			refused := t.refused
			t.moved = false
			f()
			if t.refused > refused {
				code = 1 // a download failed: the exit says so
			}
			if t.moved && ended && !echoWait {
				arm(wait) // a download's progress: the wait starts again
			}
			settle()
		case <-markT.C:
			t.markRead()
		case <-giveUpC:
			giveUpC = nil
			if len(unacked) > 0 {
				fmt.Fprintf(stderr, "chat: %d messages still unacknowledged, none stored for %v\n", len(unacked), wait)
				code = 1
			}
			if t.downloads > 0 {
				// Closing the client ends them: their files are removed.
				what := fmt.Sprintf("%d downloads have", t.downloads)
				if t.downloads == 1 {
					what = "a download has"
				}
				fmt.Fprintf(stderr, "chat: %s not finished, with no progress for %v; partial files are removed\n", what, wait)
				code = 1
			}
			leave()
		case <-ctx.Done():
			c.Close()
			return 130
		}
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// clean makes text safe for a terminal: control characters other than
// newline and tab are shown escaped instead of being obeyed.
func clean(s string) string {
	if strings.IndexFunc(s, unsafeRune) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return r != '\n' && r != '\t' && unicode.IsControl(r)
}

// maxChangeWaits bounds the changes waiting for their UPDATE, and the
// UPDATEs remembered for changes not acknowledged yet.
const maxChangeWaits = 1024

// changeWaits matches the changes chat sent to their UPDATEs, so that the
// end of input waits until they are printed. A change's place in its
// room ("room seq") is known from its ACK; the UPDATE may come before the
// ACK (they travel separately), so the places of recent UPDATEs are
// remembered too. Both are bounded: the oldest is forgotten (a change
// forgotten stops being waited for).
type changeWaits struct {
	max     int
	waiting map[string]string // place → id of a change acknowledged, its UPDATE not seen
	order   []string          // places waiting, oldest first
	seen    map[string]bool   // places of UPDATEs seen
	seenFIF []string          // places seen, oldest first
}

func newChangeWaits(max int) *changeWaits {
	return &changeWaits{max: max, waiting: map[string]string{}, seen: map[string]bool{}}
}

func place(room string, seq uint64) string { return room + " " + strconv.FormatUint(seq, 10) }

// acked notes that change id is stored at seq of room; it returns the
// changes no longer waited for: id itself if its UPDATE came already, or
// the oldest waiting one when too many wait.
func (w *changeWaits) acked(room string, seq uint64, id string) []string {
	p := place(room, seq)
	if w.seen[p] {
		delete(w.seen, p)
		return []string{id}
	}
	w.waiting[p] = id
	w.order = append(w.order, p)
	var done []string
	for len(w.waiting) > w.max && len(w.order) > 0 {
		old := w.order[0]
		w.order = w.order[1:]
		if id, ok := w.waiting[old]; ok {
			delete(w.waiting, old)
			done = append(done, id)
		}
	}
	w.compact()
	return done
}

// updated notes the UPDATE at seq of room; it returns the change it
// settles, if one was acknowledged there.
func (w *changeWaits) updated(room string, seq uint64) (string, bool) {
	p := place(room, seq)
	if id, ok := w.waiting[p]; ok {
		delete(w.waiting, p)
		w.compact()
		return id, true
	}
	if !w.seen[p] {
		w.seen[p] = true
		w.seenFIF = append(w.seenFIF, p)
		for len(w.seenFIF) > w.max {
			delete(w.seen, w.seenFIF[0])
			w.seenFIF = w.seenFIF[1:]
		}
	}
	return "", false
}

// compact drops from order the places no longer waiting, once they are
// most of it, so that order stays within twice the bound.
func (w *changeWaits) compact() {
	if len(w.order) <= 2*len(w.waiting)+16 {
		return
	}
	w.order = slices.DeleteFunc(w.order, func(p string) bool { _, ok := w.waiting[p]; return !ok })
}
