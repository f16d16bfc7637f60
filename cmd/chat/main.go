// Command chat is the terminal chat client. It prints the room to stdout,
// one line per message ("[15:04] alice: hello"), and sends each line read
// from stdin. At the end of input it waits for its messages to be stored,
// leaves and exits, so it works in pipes and scripts:
//
//	echo "deploy finished" | chat -server chat.example.com:7878 -name ci-bot
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
	"strings"
	"syscall"
	"time"
	"unicode"

	"chat/client"
	"chat/protocol"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", envOr("CHAT_SERVER", "localhost:7878"), "server `address`: host:port, tls://host:port or wss://host/ws (env CHAT_SERVER)")
	name := fs.String("name", os.Getenv("CHAT_NAME"), "your name in the room (env CHAT_NAME)")
	roomName := fs.String("room", protocol.DefaultRoom, "room to join")
	key := fs.String("key", os.Getenv("CHAT_KEY"), "the server's access `key`, if it has one (env CHAT_KEY)")
	trust := fs.String("trust", "", "trust the server's certificate with this `fingerprint` (SHA256:…, as shown when it is refused) and remember it")
	nameKey := fs.String("name-key", "", "use this name `key` (from your other device) to own your names here too, and remember it")
	showNameKey := fs.Bool("show-name-key", false, "print this computer's name key, to copy to another device, and exit")
	wait := fs.Duration("wait", 10*time.Second, "at end of input, how long to wait for unacknowledged messages")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chat -name NAME [-server HOST:PORT] [-room ROOM]\n\nPrints the room's messages and sends each line of input.\n\n")
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
	if *trust != "" {
		st.Pins[*server] = strings.TrimSpace(*trust)
		if err := st.save(); err != nil {
			fmt.Fprintf(stderr, "chat: saving the fingerprint: %v\n", err)
			return 1
		}
	}
	c, err := client.New(client.Config{Addr: *server, Name: *name, Key: *key, Secret: st.NameKey,
		TLS: client.TLSOptions{Pin: st.Pins[*server]}, Software: "chat-terminal"})
	if err != nil {
		fmt.Fprintf(stderr, "chat: %v\n", err)
		return 2
	}
	if err := c.Join(*roomName); err != nil && !errors.Is(err, client.ErrClosed) {
		// ErrClosed: the client already stopped (a refused certificate,
		// say); the loop below prints why.
		fmt.Fprintf(stderr, "chat: %v\n", err)
		c.Close()
		return 2
	}
	room := protocol.Key(*roomName)
	fmt.Fprintf(stdout, "-- connecting to %s as %s\n", *server, *name)

	lines := make(chan string)
	inputDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		inputDone <- sc.Err()
	}()
	return loop(ctx, c, room, *server, *wait, lines, inputDone, stdout, stderr)
}

// loop prints events and sends lines until the input ends; then it waits
// until what it sent is stored and has come back (so a transcript in a
// pipe is complete), and leaves.
func loop(ctx context.Context, c *client.Client, room, server string, wait time.Duration,
	lines <-chan string, inputDone <-chan error, stdout, stderr io.Writer) int {
	p := printer{w: stdout, server: server}
	code := 0
	unseen := map[string]bool{} // ids sent, not yet printed
	var drained chan error
	var giveUp <-chan time.Time
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				return max(code, 1)
			}
			if m, isMsg := ev.(client.Message); isMsg {
				delete(unseen, m.ID)
			}
			if evCode, done := p.event(ev, room); done {
				return max(code, evCode)
			}
			if drained == nil && giveUp != nil && len(unseen) == 0 {
				c.Close() // all stored and shown: leave; the loop ends on Closed
				giveUp = nil
			}
		case line := <-lines:
			if strings.TrimSpace(line) == "" {
				continue
			}
			id, err := c.Send(room, line)
			if err != nil {
				fmt.Fprintf(stderr, "chat: not sent: %v\n", err)
				continue
			}
			unseen[id] = true
		case err := <-inputDone:
			inputDone = nil
			if err != nil {
				fmt.Fprintf(stderr, "chat: reading input: %v\n", err)
				code = 1
			}
			drained = make(chan error, 1)
			go func() {
				dctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				drained <- c.Drain(dctx)
			}()
		case err := <-drained:
			drained = nil
			if err != nil && !errors.Is(err, client.ErrClosed) {
				fmt.Fprintf(stderr, "chat: %v\n", err)
				code = 1
			}
			if len(unseen) == 0 {
				c.Close()
			} else {
				// Stored; their echo is on its way. Do not wait forever.
				giveUp = time.After(2 * time.Second)
			}
		case <-giveUp:
			giveUp = nil
			c.Close()
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

// printer turns events into lines.
type printer struct {
	w      io.Writer
	server string
}

// event prints ev and reports whether the program should end, and how.
func (p printer) event(ev client.Event, room string) (code int, done bool) {
	switch e := ev.(type) {
	case client.StateChanged:
		switch e.State {
		case client.Connected:
			fmt.Fprintln(p.w, "-- connected")
		case client.Reconnecting:
			fmt.Fprintf(p.w, "-- reconnecting in %v: %v\n", e.RetryIn.Round(100*time.Millisecond), e.Err)
		case client.Closed:
			if e.Err == nil {
				return 0, true
			}
			fmt.Fprintf(p.w, "-- disconnected: %v\n", e.Err)
			var cerr *client.CertificateError
			if errors.As(e.Err, &cerr) && cerr.Pinned == "" {
				fmt.Fprintf(p.w, "-- to trust this server, run again with: -server %s -trust %s\n", p.server, cerr.Fingerprint)
			}
			return 1, true
		}
	case client.Joined:
		verb := "joined"
		if e.Resumed {
			verb = "rejoined"
		}
		fmt.Fprintf(p.w, "-- %s %s as %s; %d here: %s\n", verb, e.Room, clean(e.Name), e.Count, clean(strings.Join(e.Members, ", ")))
	case client.Message:
		text := strings.ReplaceAll(clean(e.Text), "\n", "\n        ")
		fmt.Fprintf(p.w, "[%s] %s: %s\n", e.Time.Local().Format("15:04"), clean(e.Sender), text)
	case client.Presence:
		for _, ch := range e.Changes {
			fmt.Fprintf(p.w, "* %s %s\n", clean(ch.Name), ch.Kind)
		}
	case client.RoomError:
		if len(e.Unsent) > 0 {
			fmt.Fprintf(p.w, "-- %d messages not sent\n", len(e.Unsent))
		}
		fmt.Fprintf(p.w, "-- %v\n", e.Err)
		if e.Room == room && e.Err.Code/100 == 2 {
			return 1, true // our only room refused us
		}
	}
	return 0, false
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
