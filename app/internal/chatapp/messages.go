package chatapp

import (
	"context"
	"errors"
	"time"

	"chat/app/internal/ui"
	"chat/client"
	"chat/protocol"
)

// Acting on messages (issue 15): the loop's side of the UI's EditIntent,
// DeleteIntent, ReactIntent, TypingIntent and SearchIntent, and the
// translation of the client's Updated and Typing events.

// searchTimeout bounds the wait for a search's RESULTS.
const searchTimeout = 30 * time.Second

// maxChangeIDs bounds the ids of changes waiting for their ACK or
// refusal; past it the oldest are forgotten (their ACK then reaches the
// UI as an acknowledgement of nothing it knows, which it ignores).
const maxChangeIDs = 1000

// searched is the answer to a SearchIntent, for the session that asked.
type searched struct {
	session uint64
	result  ui.SearchResults
}

// change performs an edit, a deletion or a reaction.
func (l *loop) change(room string, do func(c *client.Client) (string, error)) {
	if l.c == nil {
		l.post(l.session, ui.ChangeResult{Room: room, Err: errors.New("not connected")})
		return
	}
	id, err := do(l.c)
	if err == nil {
		if len(l.changeIDs) >= maxChangeIDs {
			clear(l.changeIDs)
		}
		l.changeIDs[id] = true
	}
	l.post(l.session, ui.ChangeResult{Room: room, ID: id, Err: err})
}

// performMessages handles the intents of this file, reporting whether
// cmd was one of them.
func (l *loop) performMessages(cmd any) bool {
	switch in := cmd.(type) {
	case ui.EditIntent:
		l.change(in.Room, func(c *client.Client) (string, error) { return c.Edit(in.Room, in.Seq, in.Text) })
	case ui.DeleteIntent:
		l.change(in.Room, func(c *client.Client) (string, error) { return c.Delete(in.Room, in.Seq) })
	case ui.ReactIntent:
		l.change(in.Room, func(c *client.Client) (string, error) { return c.React(in.Room, in.Seq, in.Emoji, in.On) })
	case ui.TypingIntent:
		if l.c == nil {
			return true
		}
		var err error
		if in.Stopped {
			err = l.c.StopTyping(in.Room)
		} else {
			err = l.c.Typing(in.Room)
		}
		if err != nil {
			l.opts.Logger.Debug("typing", "room", in.Room, "stopped", in.Stopped, "err", err)
		}
	case ui.SearchIntent:
		l.search(in)
	case searched:
		l.post(in.session, in.result)
	default:
		return false
	}
	return true
}

// search asks the server in the background; the answer comes back to
// the loop as searched.
func (l *loop) search(in ui.SearchIntent) {
	c, session := l.c, l.session
	res := ui.SearchResults{Query: in.Query, Before: in.Before}
	if c == nil {
		res.Err = "Not connected: search needs the server."
		l.post(session, res)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), searchTimeout)
		defer cancel()
		found, err := c.Search(ctx, in.Query, client.SearchOptions{Room: in.Room, Before: in.Before})
		if err != nil {
			res.Err = searchError(err)
			l.opts.Logger.Debug("search failed", "query", in.Query, "err", err)
		} else {
			l.opts.Logger.Debug("search answered", "query", in.Query, "hits", len(found.Hits))
			res.More = found.More
			for _, h := range found.Hits {
				res.Hits = append(res.Hits, ui.SearchHit{Room: protocol.Key(h.Room), Seq: h.Seq, Time: h.Time, Sender: h.Sender, Text: h.Text, Matches: h.Matches})
			}
		}
		l.inbox.put(searched{session, res})
	}()
}

// searchError words a failed search for the user.
func searchError(err error) string {
	var perr *protocol.Error
	switch {
	case errors.Is(err, client.ErrUnsupported):
		return "This server cannot search messages (it is older than search)."
	case errors.Is(err, context.DeadlineExceeded):
		return "The server did not answer the search in time. Try again."
	case errors.As(err, &perr):
		switch perr.Code {
		case protocol.CodeInvalid:
			return "Type at least one word to look for (letters or digits)."
		case protocol.CodeForbidden:
			return "You may only search the conversations you are in."
		case protocol.CodeUnavailable:
			return "Search is not available on this server right now."
		}
		if perr.Text != "" {
			return sentence(perr.Text)
		}
	}
	return sentence("search failed: " + err.Error())
}

// updated translates an Updated for the UI.
func updated(e client.Updated) ui.MessageChanged {
	out := ui.MessageChanged{Room: protocol.Key(e.Room), Seq: e.Seq, Target: e.Target, Kind: e.Kind, Actor: e.Actor, Own: e.Own}
	if m := e.Message; m != nil {
		out.State = &ui.MessageState{Text: m.Text, Deleted: m.Deleted, Edited: m.Edited, Reactions: ui.Reactions(m.Reactions)}
	}
	return out
}

// changeRefused words the refusal of a change.
func changeRefused(e *protocol.Error) string {
	switch e.Code {
	case protocol.CodeNotFound:
		return "that message is no longer there"
	case protocol.CodeForbidden:
		return "only its sender (or an operator, to delete it) may change a message"
	case protocol.CodeInvalid:
		if e.Text != "" {
			return e.Text
		}
		return "the server does not take that change"
	}
	if e.Text != "" {
		return e.Text
	}
	return e.Error()
}
