package chatapp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"chat/app/internal/settings"
	"chat/app/internal/ui"
	"chat/client"
	"chat/protocol"
)

// Commands of the App to the loop, besides the UI's intents.
type (
	nudge    struct{}
	shutdown struct{}
)

// drainWait bounds how long leaving or quitting waits for unacknowledged
// messages before dropping the connection.
const drainWait = 3 * time.Second

// loop owns the client. It runs on its own goroutine so that the window
// never blocks on the network, and it is the only reader of the client's
// events, so a SendResult always reaches the UI before the Acked of the
// same message.
type loop struct {
	opts  Options
	inbox *mailbox[any]
	post  func(session uint64, ev any)
	saved settings.Settings

	c         *client.Client // nil when not joined or joining
	session   uint64
	server    string
	name      string
	room      string
	key       string // the server's access key sent with this join
	joining   bool   // no Joined yet for this client
	connected bool   // this client has had a connection
	online    bool   // the last state this client reported was Connected

	retiring sync.WaitGroup // clients being closed in the background
}

// newLoop starts from opts.Saved, whose name key New has ensured.
func newLoop(opts Options, post func(uint64, any)) *loop {
	return &loop{opts: opts, inbox: newMailbox[any](), post: post, saved: opts.Saved}
}

func (l *loop) run() {
	for {
		var events <-chan client.Event
		if l.c != nil {
			events = l.c.Events()
		}
		select {
		case <-l.inbox.signal:
			for _, cmd := range l.inbox.take() {
				if _, ok := cmd.(shutdown); ok {
					l.retire(l.drainWait())
					l.retiring.Wait()
					return
				}
				l.perform(cmd)
			}
		case ev, ok := <-events:
			if !ok {
				l.c = nil // closed by itself; its final event was handled
				continue
			}
			l.event(ev)
		}
	}
}

func (l *loop) drainWait() time.Duration {
	if l.joining {
		return 0
	}
	return drainWait
}

func (l *loop) perform(cmd any) {
	switch in := cmd.(type) {
	case ui.JoinIntent:
		l.retire(0)
		l.join(in)
	case ui.CancelJoinIntent:
		l.retire(0)
	case ui.LeaveIntent:
		l.retire(drainWait)
	case ui.SendIntent:
		if l.c == nil {
			l.post(l.session, ui.SendResult{Token: in.Token, Err: errors.New("not in a room")})
			return
		}
		id, err := l.c.Send(l.room, in.Text)
		l.post(l.session, ui.SendResult{Token: in.Token, ID: id, Err: err})
	case ui.RetryIntent, nudge:
		if l.c != nil {
			l.c.Nudge()
		}
	case ui.ThemeIntent:
		l.saved.Dark = in.Dark
		l.save()
	case ui.TrustIntent:
		// Saved at once: the user compared the fingerprint and decided,
		// whatever the join that follows brings (a wrong name, a key).
		if l.saved.Pins == nil {
			l.saved.Pins = map[string]string{}
		}
		l.saved.Pins[in.Server] = in.Fingerprint
		l.save()
	case ui.ForgetCertIntent:
		delete(l.saved.Pins, in.Server)
		l.save()
	case ui.NameKeyIntent:
		l.saved.Secret = in.Key
		l.save()
	}
}

func (l *loop) join(in ui.JoinIntent) {
	l.session, l.server, l.name, l.room, l.key = in.Session, in.Server, in.Name, in.Room, in.Key
	cfg := client.Config{Addr: in.Server, Name: in.Name, Key: in.Key, Secret: l.saved.Secret,
		TLS: client.TLSOptions{Pin: l.saved.Pins[in.Server]}, Software: l.opts.Software, Logger: l.opts.Logger}
	if l.opts.Tune != nil {
		l.opts.Tune(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		l.post(l.session, ui.JoinFailed{Reason: "Cannot join: " + strings.TrimSuffix(err.Error(), ".") + ".", Field: ui.NameField})
		return
	}
	if err := c.Join(in.Room); err != nil {
		c.Close()
		l.post(l.session, ui.JoinFailed{Reason: "Cannot join: " + strings.TrimSuffix(err.Error(), ".") + ".", Field: ui.RoomField})
		return
	}
	l.c, l.joining, l.connected, l.online = c, true, false, false
}

// retire stops using the current client. It leaves the room and closes
// in the background, after waiting up to wait for unacknowledged messages,
// so that the next join does not wait for the old connection.
func (l *loop) retire(wait time.Duration) {
	c := l.c
	if c == nil {
		return
	}
	room, joined := l.room, !l.joining
	l.c, l.joining = nil, false
	l.retiring.Add(2)
	go func() {
		defer l.retiring.Done()
		for range c.Events() { // keep its queue flowing until it closes
		}
	}()
	go func() {
		defer l.retiring.Done()
		if wait > 0 && joined {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			_ = c.Drain(ctx)
			cancel()
			_ = c.Leave(room)
		}
		c.Close()
	}()
}

// event handles one event of the current client.
func (l *loop) event(ev client.Event) {
	switch e := ev.(type) {
	case client.StateChanged:
		switch e.State {
		case client.Connected:
			l.connected, l.online = true, true
		case client.Reconnecting:
			lost := l.online
			l.online = false
			if l.joining {
				// The first attempt failed: rather than retry in the
				// background with an address that may be mistyped, say so
				// and leave the form to the user.
				reason := unreachable(l.server, e.Err)
				if l.connected {
					reason = "The connection to " + l.server + " was lost before the room was joined" + because(netReason(e.Err)) + ". Try again."
				}
				l.fail(ui.JoinFailed{Reason: reason, Field: ui.ServerField})
				return
			}
			if e.Err != nil {
				// The UI shows why it is offline: in a sentence, not
				// as a Go error.
				e.Err = errors.New(offline(l.server, lost, e.Err))
				ev = e
			}
		case client.Closed:
			if e.Err == nil {
				return
			}
			var cerr *client.CertificateError
			if errors.As(e.Err, &cerr) && cerr.Fingerprint != "" {
				// Only the user can decide about a certificate: the
				// form asks, whether this was a join or a chat.
				l.post(l.session, ui.CertificateRefused{Server: l.server, Fingerprint: cerr.Fingerprint, Pinned: cerr.Pinned, Why: certWhy(cerr)})
				l.retire(0)
				return
			}
			l.fail(refusal(e.Err, l.attempt()))
			return
		}
	case client.Joined:
		if l.joining {
			l.joining = false
			l.saved.Server, l.saved.Name, l.saved.Room = l.server, l.name, l.room
			l.saved.Secret = l.c.Secret()
			// The key worked (or none was needed): remember it for this
			// server, or forget one the user cleared.
			if l.key != "" {
				if l.saved.Keys == nil {
					l.saved.Keys = map[string]string{}
				}
				l.saved.Keys[l.server] = l.key
			} else {
				delete(l.saved.Keys, l.server)
			}
			l.save()
		}
	case client.RoomError:
		if e.Err != nil && !e.Stays && (e.Room == "" || e.Room == protocol.Key(l.room)) {
			// The room refused us or took us out: this chat is over.
			l.fail(refusal(e.Err, l.attempt()))
			return
		}
	}
	l.post(l.session, ev)
}

// fail ends the current join or chat with f for the user.
func (l *loop) fail(f ui.JoinFailed) {
	if l.joining {
		l.post(l.session, f)
	} else {
		l.post(l.session, ui.Disconnected(f))
	}
	l.retire(0)
}

// attempt is what the current join asked for, to word a refusal.
func (l *loop) attempt() attempt {
	return attempt{server: l.server, name: l.name, room: l.room, key: l.key, joining: l.joining}
}

func (l *loop) save() {
	if err := l.opts.Store.Save(l.saved); err != nil {
		l.opts.Logger.Warn("saving settings", "err", err)
	}
}
