package chatapp

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"chat/app/internal/platform"
	"chat/app/internal/settings"
	"chat/app/internal/ui"
	"chat/client"
	"chat/internal/modcmd"
	"chat/protocol"
)

// Commands of the App to the loop, besides the UI's intents.
type (
	nudge    struct{}
	shutdown struct{}
	// focus reports whether the window has the focus: notifications show
	// only while it does not.
	focus struct{ focused bool }
	// permissionAnswered: the user decided about notifications.
	permissionAnswered struct{}
	// moderated is the answer to a ModerateIntent, for the session
	// that asked.
	moderated struct {
		session uint64
		result  ui.ModerateResult
	}
)

// modTimeout bounds the wait for the server's answer to a moderation
// command.
const modTimeout = 30 * time.Second

// drainWait bounds how long leaving or quitting waits for unacknowledged
// messages before dropping the connection.
const drainWait = 3 * time.Second

// markDelay coalesces read marks: a conversation read while messages
// keep coming sends one READ for the lot, not one per message.
const markDelay = 400 * time.Millisecond

// loop owns the client. It runs on its own goroutine so that the window
// never blocks on the network, and it is the only reader of the client's
// events, so a SendResult always reaches the UI before the Acked of the
// same message.
//
// One client holds every conversation: the room the form asked for, the
// rooms remembered for the server, and the direct conversations that the
// server lists for the name with unread messages, that a notice announces
// or that the user opens.
type loop struct {
	opts     Options
	inbox    *mailbox[any]
	post     func(session uint64, ev any)
	saved    settings.Settings
	notifier platform.Notifier

	c         *client.Client // nil when not joined or joining
	session   uint64
	server    string
	name      string
	room      string // the form's room, canonical
	key       string // the server's access key sent with this join
	joining   bool   // no Joined yet for the form's room
	connected bool   // this client has had a connection
	online    bool   // the last state this client reported was Connected
	focused   bool   // the window has the focus

	// rooms are the conversations joined or being joined, by canonical
	// name, with our read marker in each.
	rooms map[string]*room
	// marks are the read marks waiting for markTimer.
	marks     map[string]uint64
	markTimer *time.Timer

	retiring sync.WaitGroup // clients being closed in the background

	// changeIDs are the ids of edits, deletions and reactions sent and
	// not yet acknowledged or refused (bounded by maxChangeIDs): their
	// ACK is no message of the UI's, their refusal no unsent message.
	changeIDs map[string]bool

	// uploads are the files being sent (SendFile), by message id, to
	// close once the client no longer reads them; images bounds the
	// pictures fetched and decoded at once, the newest asked first.
	uploads map[string]io.Closer
	images  *imageQueue
	// decoding lets one full-size picture be decoded at a time: each
	// may take hundreds of MiB while decoding.
	decoding chan struct{}
}

// room is what the loop knows of a conversation.
type room struct {
	read   uint64
	joined bool // a Joined came: a ban or kick ends a membership, not a join
	// older are the pages asked for while the room was not joined on a
	// connection (the client refused them): asked again after its next
	// Joined. A page asked for on a connection that then dropped the
	// client library asks again itself.
	older []ui.LoadOlderIntent
}

// newLoop starts from opts.Saved, whose name key New has ensured.
func newLoop(opts Options, post func(uint64, any)) *loop {
	return &loop{opts: opts, inbox: newMailbox[any](), post: post, saved: opts.Saved,
		notifier: opts.Notifier, focused: true, marks: map[string]uint64{}, changeIDs: map[string]bool{},
		uploads: map[string]io.Closer{}, images: &imageQueue{max: imageFetches}, decoding: make(chan struct{}, 1)}
}

func (l *loop) run() {
	l.markTimer = time.NewTimer(time.Hour)
	l.markTimer.Stop()
	defer l.markTimer.Stop()
	for {
		var events <-chan client.Event
		if l.c != nil {
			events = l.c.Events()
		}
		select {
		case <-l.inbox.signal:
			for _, cmd := range l.inbox.take() {
				if _, ok := cmd.(shutdown); ok {
					l.flushMarks()
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
		case <-l.markTimer.C:
			l.flushMarks()
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
	if l.performMessages(cmd) {
		return
	}
	switch in := cmd.(type) {
	case ui.JoinIntent:
		l.retire(0)
		l.join(in)
	case ui.CancelJoinIntent:
		l.retire(0)
	case ui.SignOutIntent:
		l.flushMarks()
		l.retire(drainWait)
	case ui.SendIntent:
		if l.c == nil {
			l.post(l.session, ui.SendResult{Token: in.Token, Room: in.Room, Err: errors.New("not connected")})
			return
		}
		send := l.c.Send
		if in.Reply != 0 {
			send = func(room, text string) (string, error) { return l.c.SendReply(room, text, in.Reply) }
		}
		id, err := send(in.Room, in.Text)
		l.post(l.session, ui.SendResult{Token: in.Token, Room: in.Room, ID: id, Err: err})
	case ui.AttachIntent:
		l.attach(in)
	case chosen:
		l.sendChosen(in)
	case ui.LoadImageIntent:
		l.loadImage(in)
	case ui.SaveFileIntent:
		l.saveFile(in)
	case ui.JoinRoomIntent:
		l.joinRoomWith(in.Room, in.Invite)
	case ui.ModerateIntent:
		l.moderate(in)
	case moderated:
		l.post(in.session, in.result)
	case ui.DirectIntent:
		l.joinRoom(in.Room)
	case ui.LeaveRoomIntent:
		if l.c != nil {
			_ = l.c.Leave(in.Room)
		}
		k := protocol.Key(in.Room)
		delete(l.rooms, k)
		delete(l.marks, k)
		l.saved.RemoveRoom(l.server, k)
		if l.saved.Room == k {
			l.saved.Room = "" // the form offers the default room again
		}
		l.save()
	case ui.OpenIntent:
		k := protocol.Key(in.Room)
		switch {
		case protocol.IsDM(k):
			// A direct conversation is joined when it is opened, if it
			// was not for unread messages or a notice (see Identified).
			l.joinRoom(in.Room)
		case l.saved.Room != k:
			l.saved.Room = k // the form offers it next time
			l.save()
		}
	case ui.MarkReadIntent:
		k := protocol.Key(in.Room)
		if in.Seq > l.marks[k] {
			if len(l.marks) == 0 {
				l.markTimer.Reset(markDelay)
			}
			l.marks[k] = in.Seq
		}
	case ui.LoadOlderIntent:
		l.history(in)
	case ui.OpenURLIntent:
		if l.opts.OpenURL != nil {
			if err := l.opts.OpenURL(in.URL); err != nil {
				l.opts.Logger.Warn("opening a link", "err", err)
			}
		}
	case ui.ListRoomsIntent:
		if l.c != nil {
			if err := l.c.ListRooms(in.Query); err != nil {
				l.opts.Logger.Debug("listing rooms", "err", err)
			}
		}
	case ui.QuietIntent:
		l.saved.SetQuiet(l.server, protocol.Key(in.Room), in.Quiet)
		l.save()
	case ui.NotificationsIntent:
		l.notifier.RequestPermission(func() { l.inbox.put(permissionAnswered{}) })
	case permissionAnswered:
		l.post(l.session, ui.NotificationsAsk{Ask: l.notifier.NeedsPermission()})
	case focus:
		l.focused = in.focused
		l.opts.Logger.Debug("window focus", "focused", in.focused)
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
		// Pinned for the address that presented it, when the server
		// field lists several: each node may have its own certificate.
		key := in.Server
		if in.Addr != "" {
			key = in.Addr
		}
		l.saved.Pins[key] = in.Fingerprint
		l.save()
	case ui.ForgetCertIntent:
		delete(l.saved.Pins, in.Server)
		delete(l.saved.Pins, in.Addr)
		l.save()
	case ui.NameKeyIntent:
		l.saved.Secret = in.Key
		l.save()
	}
}

func (l *loop) join(in ui.JoinIntent) {
	l.session, l.server, l.name, l.room, l.key = in.Session, in.Server, in.Name, protocol.Key(in.Room), in.Key
	for id := range l.uploads {
		l.uploadEnded(id) // the old client reads them no more
	}
	l.rooms, l.marks, l.changeIDs = map[string]*room{}, map[string]uint64{}, map[string]bool{}
	// The server field may list several addresses (the nodes of a
	// cluster); the client tries them in turn. Pins are per address,
	// and one saved for the whole field applies to those without.
	servers := client.SplitAddrs(in.Server)
	pins := map[string]string{}
	for _, a := range servers {
		if fp, ok := l.saved.Pins[a]; ok {
			pins[a] = fp
		}
	}
	cfg := client.Config{Name: in.Name, Key: in.Key, Secret: l.saved.Secret,
		TLS: client.TLSOptions{Pin: l.saved.Pins[in.Server], Pins: pins}, Software: l.opts.Software, Logger: l.opts.Logger}
	if len(servers) > 0 {
		cfg.Addr, cfg.Addrs = servers[0], servers[1:]
	}
	if l.opts.Tune != nil {
		l.opts.Tune(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		l.post(l.session, ui.JoinFailed{Reason: "Cannot join: " + strings.TrimSuffix(err.Error(), ".") + ".", Field: ui.NameField})
		return
	}
	if err := c.JoinWith(in.Room, client.JoinOptions{Invite: in.Invite}); err != nil {
		c.Close()
		l.post(l.session, ui.JoinFailed{Reason: "Cannot join: " + strings.TrimSuffix(err.Error(), ".") + ".", Field: ui.RoomField})
		return
	}
	l.c, l.joining, l.connected, l.online = c, true, false, false
	l.rooms[l.room] = &room{}
	// The rooms of the last visits to this server come along; the
	// direct conversations follow from the server's Identified.
	for _, r := range l.saved.Rooms[l.server] {
		l.joinRoom(r)
	}
}

// history asks for a page of older messages. The list asks once: one
// refused for want of a connection is asked again after the room's next
// Joined.
func (l *loop) history(in ui.LoadOlderIntent) {
	if l.c == nil {
		return
	}
	err := l.c.History(in.Room, in.Before, in.Limit)
	if err == nil {
		return
	}
	l.opts.Logger.Debug("asking for history", "room", in.Room, "err", err)
	if r := l.rooms[protocol.Key(in.Room)]; r != nil && errors.Is(err, client.ErrNotConnected) {
		r.older = append(r.older, in)
	}
}

// joinRoom joins another conversation on the current client.
func (l *loop) joinRoom(name string) { l.joinRoomWith(name, "") }

// joinRoomWith is joinRoom with an invite code for an invite-only room.
func (l *loop) joinRoomWith(name, invite string) {
	k := protocol.Key(name)
	if l.c == nil || l.rooms[k] != nil {
		return
	}
	if err := l.c.JoinWith(name, client.JoinOptions{Invite: invite}); err != nil {
		l.post(l.session, ui.RoomFailed{Room: k, Reason: "Cannot join " + name + ": " + strings.TrimSuffix(err.Error(), ".") + "."})
		return
	}
	l.rooms[k] = &room{}
}

// retire stops using the current client. It leaves the rooms and closes
// in the background, after waiting up to wait for unacknowledged
// messages, so that the next join does not wait for the old connection.
// The rooms stay remembered in the settings for the next join.
func (l *loop) retire(wait time.Duration) {
	c := l.c
	if c == nil {
		return
	}
	joined := !l.joining
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
		}
		c.Close() // the server takes the connection's rooms with it
	}()
}

// flushMarks sends the read marks collected since the timer started.
func (l *loop) flushMarks() {
	for k, seq := range l.marks {
		if l.c != nil && l.rooms[k] != nil {
			if err := l.c.MarkRead(k, seq); err != nil {
				l.opts.Logger.Debug("marking read", "room", k, "err", err)
			}
		}
		delete(l.marks, k)
	}
}

// event handles one event of the current client.
func (l *loop) event(ev client.Event) {
	switch e := ev.(type) {
	case client.StateChanged:
		l.stateChanged(e)
	case client.Joined:
		if l.joining && protocol.Key(e.Room) == l.room {
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
			l.post(l.session, ui.NotificationsAsk{Ask: l.notifier.NeedsPermission()})
		}
		k := protocol.Key(e.Room)
		r := l.rooms[k]
		if r == nil {
			return // left since
		}
		r.joined = true
		if e.Reset {
			r.read = e.Read // the old history's numbers mean nothing in the new one
		} else {
			r.read = max(r.read, e.Read)
		}
		if !protocol.IsDM(k) && !slices.Contains(l.saved.Rooms[l.server], k) {
			l.saved.AddRoom(l.server, k)
			l.save()
		}
		l.post(l.session, ui.RoomJoined{Room: k, Name: e.Name, Members: e.Members, Count: e.Count, Resumed: e.Resumed, Reset: e.Reset,
			Read: e.Read, Head: e.Head, Mentions: e.Mentions, Quiet: l.saved.IsQuiet(l.server, k),
			Topic: e.Topic, InviteOnly: e.InviteOnly, Operator: e.Operator, Muted: e.Muted, Removed: e.Removed})
		older := r.older
		r.older = nil
		if !e.Reset { // else the pages belong to a history that is gone
			for _, in := range older {
				l.history(in)
			}
		}
	case client.RoomError:
		l.roomError(e)
	case client.Left:
		for _, id := range e.Unsent {
			l.uploadEnded(id) // a file queued for the room left is read no more
		}
	case client.Presence:
		p := ui.Presence{Room: protocol.Key(e.Room), Count: e.Count}
		for _, ch := range e.Changes {
			p.Changes = append(p.Changes, ui.PresenceChange{Name: ch.Name, Joined: ch.Kind == protocol.PresenceJoined})
		}
		l.post(l.session, p)
	case client.Uploading:
		l.post(l.session, ui.UploadProgress{Room: protocol.Key(e.Room), ID: e.ID, Sent: e.Sent, Size: e.Size, Done: e.Done})
	case client.Acked:
		l.uploadEnded(e.ID)
		if l.changeIDs[e.ID] {
			delete(l.changeIDs, e.ID) // the change's Updated tells the UI
			return
		}
		l.post(l.session, ev)
	case client.Updated:
		// Logged for the window tests, which wait for what the app learns.
		l.opts.Logger.Debug("message changed", "room", e.Room, "target", e.Target, "kind", e.Kind.String(), "actor", e.Actor)
		l.post(l.session, updated(e))
	case client.Typing:
		l.opts.Logger.Debug("typing", "room", e.Room, "name", e.Name, "stopped", e.Stopped)
		l.post(l.session, ui.Typing{Room: protocol.Key(e.Room), Name: e.Name, Stopped: e.Stopped})
	case client.Message, client.Page, client.ModEvent:
		l.post(l.session, ev)
	case client.OperRefused:
		l.opts.Logger.Info("no longer a server operator", "err", e.Err)
	case client.Identified:
		id := ui.Identity{Name: e.Name}
		for _, d := range e.DMs {
			k := protocol.Key(d.Room)
			id.DMs = append(id.DMs, ui.Conversation{Room: k, Peer: d.Peer, Head: d.Head, Read: d.Read, Time: d.Time,
				Quiet: l.saved.IsQuiet(l.server, k)})
		}
		l.post(l.session, id)
		// Only those with unread messages are joined now: every joined
		// conversation counts against the server's rooms per connection
		// (64 by default), and a name collects direct conversations for
		// ever; the others show from this list and are joined when
		// opened, or when a message comes (notice).
		for _, d := range e.DMs {
			if d.Head > d.Read {
				l.joinRoom(d.Room)
			}
		}
	case client.Notice:
		l.notice(e)
	case client.IdentityRefused:
		// The rooms' joins are refused for the same reason, each with
		// its RoomError, which says it to the user.
		l.opts.Logger.Debug("identity refused", "err", e.Err)
	case client.ReadMarker:
		k := protocol.Key(e.Room)
		if r := l.rooms[k]; r != nil {
			r.read = max(r.read, e.Seq)
		}
		l.post(l.session, ui.ReadMarker{Room: k, Seq: e.Seq})
	case client.RoomList:
		d := ui.Directory{Query: e.Query}
		for _, r := range e.Rooms {
			d.Rooms = append(d.Rooms, ui.DirectoryRoom{Room: r.Room, Members: r.Members, LastActive: r.LastActive})
		}
		l.post(l.session, d)
	}
}

func (l *loop) stateChanged(e client.StateChanged) {
	out := ui.Connection{Err: e.Err, RetryIn: e.RetryIn}
	switch e.State {
	case client.Connecting:
		out.State = ui.Connecting
	case client.Connected:
		l.connected, l.online = true, true
		out.State, out.NoFiles = ui.Connected, l.c.MaxUpload() == 0 // known from WELCOME before Connected
		l.opts.Logger.Info("connected", "server", e.Addr, "remote", e.Remote)
	case client.Reconnecting:
		out.State = ui.Reconnecting
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
			out.Err = errors.New(offline(l.server, lost, e.Err))
		}
	case client.Closed:
		if e.Err == nil {
			return
		}
		var cerr *client.CertificateError
		if errors.As(e.Err, &cerr) && cerr.Fingerprint != "" {
			// Only the user can decide about a certificate: the
			// form asks, whether this was a join or a chat.
			refused := ui.CertificateRefused{Server: l.server, Fingerprint: cerr.Fingerprint, Pinned: cerr.Pinned, Why: certWhy(cerr)}
			if len(client.SplitAddrs(l.server)) > 1 {
				refused.Addr = cerr.Addr // which of the servers listed
			}
			l.post(l.session, refused)
			l.retire(0)
			return
		}
		l.fail(refusal(e.Err, l.attempt()))
		return
	}
	l.post(l.session, out)
}

// roomError handles a refusal: of the connection or of the form's room
// while joining, it ends the join; of another conversation, that one is
// lost and the others go on.
func (l *loop) roomError(e client.RoomError) {
	k := protocol.Key(e.Room)
	if e.Err == nil {
		return
	}
	uploads := false
	for _, id := range e.Unsent {
		if _, ok := l.uploads[id]; ok {
			uploads = true
			l.uploadEnded(id)
		}
	}
	if uploads && e.Stays {
		// A file refused (too big, quota, damaged, muted): said as such.
		l.post(l.session, ui.RoomFailed{Room: k, Reason: sentence(uploadRefused(e.Err)), Unsent: e.Unsent, Stays: true})
		return
	}
	if e.Stays && len(e.Unsent) > 0 {
		// Changes refused: said as such, not as messages not sent.
		kept := e.Unsent[:0:0]
		changes := 0
		for _, id := range e.Unsent {
			if l.changeIDs[id] {
				delete(l.changeIDs, id)
				changes++
			} else {
				kept = append(kept, id)
			}
		}
		if changes > 0 {
			l.post(l.session, ui.ChangeResult{Room: k, Err: errors.New(changeRefused(e.Err))})
			if len(kept) == 0 {
				return
			}
			e.Unsent = kept
		}
	}
	if !e.Stays && (e.Room == "" || (l.joining && k == l.room)) {
		l.fail(refusal(e.Err, l.attempt()))
		return
	}
	reason := e.Err.Text
	if reason == "" {
		reason = e.Err.Error()
	}
	switch e.Err.Code {
	case protocol.CodeKicked, protocol.CodeBanned, protocol.CodeInviteOnly:
		// Lost or refused by an operator: the room stays listed, with
		// why and a way back (Join again, /join ROOM CODE).
		r := l.rooms[k]
		text := modcmd.RoomText("#"+k, k, e.Err, r != nil && r.joined)
		if e.Err.Code == protocol.CodeKicked {
			// The room's Join again button is the way back.
			text = e.Err.Text
			if text == "" {
				text = "you were kicked from #" + k
			}
		}
		delete(l.rooms, k)
		if e.Err.Code != protocol.CodeKicked && slices.Contains(l.saved.Rooms[l.server], k) {
			// Not joined again at every start while banned or closed
			// (a kicked name may come back at once: that room stays).
			l.saved.RemoveRoom(l.server, k)
			l.save()
		}
		l.post(l.session, ui.RoomFailed{Room: k, Reason: sentence(text), Unsent: e.Unsent})
		return
	case protocol.CodeMuted:
		text := "you are muted in #" + k
		if e.Err.Text != "" {
			text += ": " + e.Err.Text
		}
		reason = text
	}
	if !e.Stays {
		a := l.attempt()
		a.room, a.joining = e.Room, true
		reason = roomRefusal(e.Err, a)
		delete(l.rooms, k)
		if slices.Contains(l.saved.Rooms[l.server], k) {
			// A room refused is not joined again at every start.
			l.saved.RemoveRoom(l.server, k)
			l.save()
		}
	}
	l.post(l.session, ui.RoomFailed{Room: k, Reason: reason, Unsent: e.Unsent, Stays: e.Stays})
}

// notice handles a message that concerns us: a direct message, in a
// conversation that may not be joined yet, or a mention. It joins the
// conversation so that it shows, and notifies the user when the window is
// not looked at: of direct messages, and of mentions in the conversations
// of the list.
func (l *loop) notice(e client.Notice) {
	m := e.Message
	k := protocol.Key(m.Room)
	if e.Kind == protocol.NoticeDirect {
		l.joinRoom(m.Room)
	}
	if m.Own || protocol.Key(m.Sender) == protocol.Key(l.name) || l.focused || l.saved.IsQuiet(l.server, k) {
		return
	}
	r := l.rooms[k]
	switch {
	case r == nil:
		// A mention in a room the user is not in (or left: the server
		// notices mentions from every room): it is in no list to open,
		// and no quiet switch could turn it off.
		return
	case m.Seq <= r.read:
		return // read on another device already
	}
	switch e.Kind {
	case protocol.NoticeDirect:
		l.notifier.Notify(m.Sender, m.Text)
	case protocol.NoticeMention:
		l.notifier.Notify(m.Sender+" in #"+k, m.Text)
	}
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

// moderate performs a moderation command typed in a conversation, in the
// background: the server's answer comes back to the loop as moderated.
func (l *loop) moderate(in ui.ModerateIntent) {
	c, session := l.c, l.session
	if c == nil {
		l.post(session, ui.ModerateResult{Room: in.Room, Err: "not connected"})
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), modTimeout)
		defer cancel()
		res := ui.ModerateResult{Room: in.Room}
		if in.Command.Oper {
			if err := c.Oper(ctx, in.Command.Token); err != nil {
				res.Err = modcmd.ErrorText(err)
			} else {
				res.Text = "You are a server operator: you may moderate every room."
			}
		} else {
			ans, err := c.Moderate(ctx, in.Room, in.Command.Moderation)
			switch {
			case err != nil:
				res.Err = modcmd.ErrorText(err)
			case ans.Action == protocol.ModInvite:
				res.Text = sentence(modcmd.InviteText(ans.Room, ans.Invite, in.Command.Moderation.For))
			}
		}
		l.inbox.put(moderated{session, res})
	}()
}

// sentence starts s with a capital and ends it with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
