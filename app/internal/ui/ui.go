// Package ui is the chat app's user interface: state and layout, with no
// network code. Layout draws a frame and returns the Intents the user
// expressed (join, send, leave, …); the app loop performs them with the
// client library and feeds what happens back through Apply. Tests drive
// it with an input.Router and no window.
//
// Once connected, the UI is a shell of conversations (shell.go): rooms and
// direct conversations in a list beside the open one, or, in a narrow
// window, the list and the open conversation as two screens. Keys:
// Ctrl+K (Cmd+K on macOS) jumps to a conversation by name, Alt+Up and
// Alt+Down open the previous and the next one with unread messages,
// Escape closes a panel (on a phone, then the conversation).
//
// Nothing here is specific to a platform: fonts and whether the server
// can be chosen come in Config. The Back key (Android, the browser) closes
// a panel, else goes from a conversation back to the list in the narrow
// layout; where there is nothing to go back from it is not handled, so
// the platform does its default: Android closes the app.
package ui

import (
	"fmt"
	"time"

	"gioui.org/font"
	"gioui.org/io/event"
	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/paint"
	"gioui.org/text"
	"gioui.org/widget"

	"chat/protocol"
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
	shellIcons  shellIcons
	actionIcons actionIcons
	now         func() time.Time

	join     joinScreen
	shell    *shell // from a join on; shown once its room is joined
	themeBtn widget.Clickable
	focused  bool // the window has the focus

	// session numbers joins: events of an abandoned join or a left room
	// carry an older number and are dropped.
	session uint64
	tokens  uint64 // names pending messages until their id is known
	intents []Intent
	// images are the decoded pictures shown, shared by the conversations.
	images *imageCache
}

// New returns a UI on its join screen, the name field focused.
func New(cfg Config) *UI {
	u := &UI{
		light:       NewTheme(cfg.Shaper, cfg.Face, false),
		dark:        NewTheme(cfg.Shaper, cfg.Face, true),
		icons:       loadIcons(),
		shellIcons:  loadShellIcons(),
		actionIcons: loadActionIcons(),
		now:         cfg.Now,
		focused:     true,
		images:      newImageCache(ImageCacheBytes),
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

// SetFocused tells the UI whether its window has the focus: messages
// count as read only while it does.
func (u *UI) SetFocused(focused bool) { u.focused = focused }

// InChat reports whether the conversations are showing (not the form).
func (u *UI) InChat() bool { return u.shell != nil && u.shell.shown }

// Title is the window's title (the tab's, in the browser): the number of
// unread messages, if any, the open conversation, and the connection
// state when not connected: "(3) #general — Chat (reconnecting…)".
func (u *UI) Title() string {
	if !u.InChat() {
		return "Chat"
	}
	t := "Chat"
	if c := u.shell.open; c != nil && !u.ShowsList() {
		t = c.title() + " — Chat"
	}
	if n := u.shell.unreadTotal(); n > 0 {
		t = fmt.Sprintf("(%d) %s", n, t)
	}
	if st := u.shell.conn.text(); st != "connected" {
		t += " (" + st + ")"
	}
	return t
}

// Unread returns the unread and mention counts of room, as its row in the
// list shows them (zeros for a room not in the list).
func (u *UI) Unread(room string) (unread, mentions int) {
	if u.shell == nil {
		return 0, 0
	}
	c := u.shell.byKey[protocol.Key(room)]
	if c == nil {
		return 0, 0
	}
	return c.unread.count(), c.unread.mentionCount()
}

// Open returns the canonical name of the open conversation, "" if none
// (or on the form). In the narrow layout it may be behind the list.
func (u *UI) Open() string {
	if !u.InChat() || u.shell.open == nil {
		return ""
	}
	return u.shell.open.room
}

// ShowsList reports whether the narrow layout shows the list of
// conversations rather than one conversation.
func (u *UI) ShowsList() bool {
	return u.InChat() && u.shell.narrow && (u.shell.showList || u.shell.open == nil)
}

func (u *UI) emit(in Intent) { u.intents = append(u.intents, in) }

// startShell readies the conversations of a join that asks for room.
func (u *UI) startShell(name, room string) { u.shell = newShell(name, room) }

// signOut goes back to the join screen at once; the loop disconnects.
func (u *UI) signOut() {
	u.shell = nil
	u.session++
	u.join.joining = false
	u.join.focus = &u.join.name
	u.emit(SignOutIntent{})
}

// toForm drops the conversations for the form, after the join or the
// connection failed for good.
func (u *UI) toForm() {
	u.shell = nil
	u.session++
	u.join.focus = &u.join.name
}

// Apply feeds the UI one event of join session: a view model (model.go),
// a client.Message, client.Acked or client.Page, or one of SendResult, JoinFailed,
// Disconnected, CertificateRefused. Events of other sessions are ignored.
// Call it from the window's goroutine, then redraw.
func (u *UI) Apply(session uint64, ev any) {
	if session != u.session {
		return
	}
	switch e := ev.(type) {
	case ImageLoaded:
		u.images.put(e)
		return
	case Connection:
		if e.State == Connected {
			u.images.forgetAsked() // fetches lost with the connection are asked again
		}
	case JoinFailed:
		if !u.InChat() {
			u.shell = nil
			u.join.fail(e)
		}
		return
	case Disconnected:
		u.toForm()
		u.join.fail(JoinFailed(e))
		return
	case CertificateRefused:
		if u.InChat() {
			u.toForm()
		}
		u.shell = nil
		u.join.certRefused(e)
		return
	}
	if u.shell != nil {
		u.shell.apply(u, ev)
	}
}

// Layout draws a frame and returns what the user asked for in it. The
// returned slice is reused by the next call.
func (u *UI) Layout(gtx layout.Context) []Intent {
	u.intents = u.intents[:0]
	if u.InChat() {
		// The list's clicks and keys first: the conversation or panel
		// they open gets the keyboard in this frame (moveFocus). Signing
		// out shows the form right away.
		u.shell.handle(gtx, u)
	}
	u.moveFocus(gtx)
	if u.themeBtn.Clicked(gtx) {
		u.setDark(!u.th.Dark)
		u.emit(ThemeIntent{Dark: u.th.Dark})
	}
	paint.Fill(gtx.Ops, u.th.Bg)
	if u.InChat() {
		u.shell.layout(gtx, u)
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
	case u.InChat():
		s := u.shell
		switch {
		case s.focus != nil:
			tag = s.focus
		case s.open != nil && s.open.focusComposer && s.panel == noPanel:
			tag = &s.open.composer
		}
		s.focus = nil
		if s.open != nil {
			s.open.focusComposer = false
		}
	case j.nk.focus:
		tag = &j.nk.editor
	case j.focus != nil:
		tag = j.focus
	}
	if !u.InChat() {
		u.join.focus, u.join.nk.focus = nil, false
	}
	if tag != nil {
		gtx.Execute(key.FocusCmd{Tag: tag})
		// The text input stays open: a focus change the router defers
		// to the end of the frame (the editor that had the focus has
		// handled its events, as a panel's field that took Enter) would
		// otherwise close it until the new editor asks for it.
		gtx.Execute(key.SoftKeyboardCmd{Show: true})
	}
}

// focusWanted reports whether the shown screen waits for moveFocus.
func (u *UI) focusWanted() bool {
	if u.InChat() {
		s := u.shell
		return s.focus != nil || (s.open != nil && s.open.focusComposer)
	}
	return u.join.focus != nil || u.join.nk.focus
}

// ListPosition is the open conversation's message list scroll position
// (zero on the join screen), for saving it or checking where the list is.
func (u *UI) ListPosition() layout.Position {
	if !u.InChat() || u.shell.open == nil {
		return layout.Position{}
	}
	return u.shell.open.list.Position
}
