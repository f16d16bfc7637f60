// Package ui is the chat app's user interface: state and layout, with no
// network code. Layout draws a frame and returns the Intents the user
// expressed (join, send, leave, …); the app loop performs them with the
// client library and feeds what happens back through Apply. Tests drive
// it with an input.Router and no window.
//
// Nothing here is specific to a platform: fonts and whether the server
// can be chosen come in Config. The Back key (Android, the browser) leaves
// the chat screen, closing the member list first; on the join screen it
// is not handled, so the platform does its default: Android closes the
// app.
package ui

import (
	"time"

	"gioui.org/font"
	"gioui.org/io/event"
	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/paint"
	"gioui.org/text"
	"gioui.org/widget"

	"chat/client"
)

// Config is what a UI starts with.
type Config struct {
	Shaper             *text.Shaper  // shared by both themes
	Face               font.Typeface // the typeface to ask for first
	Dark               bool          // start with the dark theme
	Server, Name, Room string        // prefilled join form
	// ShowServer shows the server field; the browser build hides it.
	ShowServer bool
	// NameKey is this device's name key, shown for copying to another
	// device; Keys are the access keys servers accepted, by address, to
	// fill in the key field.
	NameKey string
	Keys    map[string]string
	// Now returns the time for notices and pending messages (time.Now if nil).
	Now func() time.Time
}

// UI is the whole interface of one window. It is not safe for concurrent
// use: the window's goroutine owns it.
type UI struct {
	light, dark *Theme
	th          *Theme
	icons       iconSet
	now         func() time.Time

	join     joinScreen
	chat     *chatScreen // nil on the join screen
	themeBtn widget.Clickable

	// session numbers joins: events of an abandoned join or a left room
	// carry an older number and are dropped.
	session uint64
	tokens  uint64 // names pending messages until their id is known
	intents []Intent
}

// New returns a UI on its join screen, the name field focused.
func New(cfg Config) *UI {
	u := &UI{
		light: NewTheme(cfg.Shaper, cfg.Face, false),
		dark:  NewTheme(cfg.Shaper, cfg.Face, true),
		icons: loadIcons(),
		now:   cfg.Now,
	}
	if u.now == nil {
		u.now = time.Now
	}
	u.setDark(cfg.Dark)
	u.join.init(cfg)
	return u
}

// Theme returns the theme in use.
func (u *UI) Theme() *Theme { return u.th }

// setDark switches themes.
func (u *UI) setDark(dark bool) {
	u.th = u.light
	if dark {
		u.th = u.dark
	}
}

// InChat reports whether the chat screen is showing.
func (u *UI) InChat() bool { return u.chat != nil }

// Title is the window's title (the tab's, in the browser): the room and,
// when not connected, the connection state.
func (u *UI) Title() string {
	if u.chat == nil {
		return "Chat"
	}
	t := "#" + u.chat.room
	if st := u.chat.stateText(); st != "connected" {
		t += " (" + st + ")"
	}
	return t + " — Chat"
}

func (u *UI) emit(in Intent) { u.intents = append(u.intents, in) }

// leave goes back to the join screen at once; the loop leaves the room.
func (u *UI) leave() {
	u.chat = nil
	u.session++
	u.join.joining = false
	u.join.focus = &u.join.name
	u.emit(LeaveIntent{})
}

// Apply feeds the UI one event of join session: a client event
// (client.StateChanged, Joined, Message, Acked, Presence, RoomError) or
// one of SendResult, JoinFailed, Disconnected. Events of other sessions
// are ignored. Call it from the window's goroutine, then redraw.
func (u *UI) Apply(session uint64, ev any) {
	if session != u.session {
		return
	}
	switch e := ev.(type) {
	case JoinFailed:
		if u.chat == nil {
			u.join.fail(e)
		}
		return
	case Disconnected:
		u.chat = nil
		u.session++
		u.join.focus = &u.join.name
		u.join.fail(JoinFailed(e))
		return
	case CertificateRefused:
		if u.chat != nil {
			u.chat = nil
			u.session++
			u.join.focus = &u.join.name
		}
		u.join.certRefused(e)
		return
	}
	if u.chat == nil {
		if j, ok := ev.(client.Joined); ok && u.join.joining {
			u.join.joined()
			u.chat = newChatScreen(j, u.now)
		}
		return
	}
	u.chat.apply(ev, u.now())
}

// Layout draws a frame and returns what the user asked for in it. The
// returned slice is reused by the next call.
func (u *UI) Layout(gtx layout.Context) []Intent {
	u.intents = u.intents[:0]
	u.moveFocus(gtx)
	if u.themeBtn.Clicked(gtx) {
		u.setDark(!u.th.Dark)
		u.emit(ThemeIntent{Dark: u.th.Dark})
	}
	paint.Fill(gtx.Ops, u.th.Bg)
	if u.chat != nil {
		u.chat.layout(gtx, u)
		if u.chat == nil {
			// The user left in this frame: show the form right away.
			u.moveFocus(gtx)
			u.join.layout(gtx, u)
		}
	} else {
		u.join.update(gtx, u)
		u.join.layout(gtx, u)
	}
	if u.focusWanted() {
		gtx.Execute(op.InvalidateCmd{}) // moveFocus, first thing in the next frame
	}
	return u.intents
}

// moveFocus gives the keyboard focus to the widget the shown screen asked
// for, if any. It must run before that widget handles its events in the
// frame: the router defers a focus change that comes later to the end of
// the frame, and closes the text input until the next frame opens it
// again. In the browser that blurs the page's text input, and the keys
// typed in between are lost; on Android the keyboard flickers. So a
// request made while a frame is being laid out waits for the next one.
func (u *UI) moveFocus(gtx layout.Context) {
	var tag event.Tag
	switch j := &u.join; {
	case u.chat != nil:
		if u.chat.focusComposer {
			tag = &u.chat.composer
		}
		u.chat.focusComposer = false
	case j.nk.focus:
		tag = &j.nk.editor
	case j.focus != nil:
		tag = j.focus
	}
	if u.chat == nil {
		u.join.focus, u.join.nk.focus = nil, false
	}
	if tag != nil {
		gtx.Execute(key.FocusCmd{Tag: tag})
	}
}

// focusWanted reports whether the shown screen waits for moveFocus.
func (u *UI) focusWanted() bool {
	if u.chat != nil {
		return u.chat.focusComposer
	}
	return u.join.focus != nil || u.join.nk.focus
}

// ListPosition is the message list's scroll position (zero on the join
// screen), for saving it or checking where the list is.
func (u *UI) ListPosition() layout.Position {
	if u.chat == nil {
		return layout.Position{}
	}
	return u.chat.list.Position
}
