package ui

// An Intent is something the user asked for that the UI cannot do by
// itself: the app loop performs it with the client library and reports
// back through UI.Apply.
type Intent interface{ isIntent() }

// JoinIntent asks to connect to Server as Name and join Room. Session
// numbers the join: the loop passes it back with every event of it.
type JoinIntent struct {
	Server, Name, Room string
	Session            uint64
}

// CancelJoinIntent abandons a join that has not succeeded yet.
type CancelJoinIntent struct{}

// SendIntent asks to send Text to the current room. Token names the
// pending row until a SendResult tells the message's id.
type SendIntent struct {
	Token uint64
	Text  string
}

// LeaveIntent leaves the room; the UI is back on the join screen already.
type LeaveIntent struct{}

// RetryIntent asks to reconnect now instead of waiting for the backoff.
type RetryIntent struct{}

// ThemeIntent reports that the user switched themes, to be remembered.
type ThemeIntent struct{ Dark bool }

func (JoinIntent) isIntent()       {}
func (CancelJoinIntent) isIntent() {}
func (SendIntent) isIntent()       {}
func (LeaveIntent) isIntent()      {}
func (RetryIntent) isIntent()      {}
func (ThemeIntent) isIntent()      {}

// Besides the client's events (client.StateChanged, client.Joined,
// client.Message, client.Acked, client.Presence, client.RoomError), the
// loop reports these through UI.Apply.

// SendResult tells the id the client library gave the message sent with
// Token, or why it refused it (Err set, ID empty).
type SendResult struct {
	Token uint64
	ID    string
	Err   error
}

// JoinFailed reports that a join did not succeed; Reason is for the
// user, Field is the form field to fix (NoField if none).
type JoinFailed struct {
	Reason string
	Field  Field
}

// Disconnected reports that the chat ended for good (the room was lost or
// the server refused the client); Reason is for the user, who is sent back
// to the join screen.
type Disconnected struct{ Reason string }
