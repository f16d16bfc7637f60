package ui

import "chat/internal/modcmd"

// An Intent is something the user asked for that the UI cannot do by
// itself: the app loop performs it with the client library and reports
// back through UI.Apply.
type Intent interface{ isIntent() }

// JoinIntent asks to connect to Server as Name and join Room. Key is the
// server's access key, empty when none was entered. Session numbers the
// join: the loop passes it back with every event of it.
type JoinIntent struct {
	Server, Name, Room string
	Key                string
	// Invite is an invite code for Room, when it is invite-only (typed
	// after the room's name in the form: "club K3Y").
	Invite  string
	Session uint64
}

// TrustIntent asks to trust (pin) the certificate with Fingerprint for
// Server from now on. The user compared it and said so; a JoinIntent
// follows.
//
// Addr, when set, is the server of the list in Server whose certificate
// it is: the pin is for that address alone (the nodes of a cluster may
// each have their own certificate).
type TrustIntent struct{ Server, Fingerprint, Addr string }

// ForgetCertIntent asks to forget the certificate trusted for Server, after
// it changed: the next join treats the server as new.
// Addr is as in TrustIntent.
type ForgetCertIntent struct{ Server, Addr string }

// NameKeyIntent replaces this device's name key with Key, which the user
// brought from another device and confirmed.
type NameKeyIntent struct{ Key string }

// CancelJoinIntent abandons a join that has not succeeded yet.
type CancelJoinIntent struct{}

// SendIntent asks to send Text to Room. Token names the pending row
// until a SendResult tells the message's id.
type SendIntent struct {
	Token uint64
	Room  string
	Text  string
	Reply uint64 // the message it answers; 0: none
}

// SignOutIntent disconnects from the server; the UI is back on the join
// screen already. The rooms stay remembered for the next join.
type SignOutIntent struct{}

// JoinRoomIntent joins Room (creating it if nobody is there), keeping the
// rooms already joined; the UI shows it as joining until RoomJoined.
// Invite is an invite code for an invite-only room (/join ROOM CODE).
type JoinRoomIntent struct{ Room, Invite string }

// ModerateIntent asks for a moderation command the user typed in Room's
// composer (/kick, /ban, /topic…, parsed); a ModerateResult answers, and
// the room's client.ModEvent tells everyone what was done.
type ModerateIntent struct {
	Room    string
	Command modcmd.Command
}

// LeaveRoomIntent leaves Room, which is gone from the UI already, and
// forgets it.
type LeaveRoomIntent struct{ Room string }

// DirectIntent opens the direct-message conversation with the name Peer:
// Room is its canonical name (protocol.DMRoom), joined by the loop.
type DirectIntent struct{ Peer, Room string }

// OpenIntent reports the conversation the user opened, to be remembered
// as the one to open at the next start.
type OpenIntent struct{ Room string }

// MarkReadIntent asks to move our read marker in Room to Seq: the user
// saw the conversation down to that message. The UI sends each only once;
// the loop coalesces them.
type MarkReadIntent struct {
	Room string
	Seq  uint64
}

// ListRoomsIntent asks for the server's rooms whose name contains Query;
// a Directory answers.
type ListRoomsIntent struct{ Query string }

// QuietIntent turns the notifications of Room off (Quiet) or on again.
type QuietIntent struct {
	Room  string
	Quiet bool
}

// NotificationsIntent asks for the permission to show notifications.
// It comes from a user gesture (a click, a key), which the browser
// requires for asking.
type NotificationsIntent struct{}

// RetryIntent asks to reconnect now instead of waiting for the backoff.
type RetryIntent struct{}

// ThemeIntent reports that the user switched themes, to be remembered.
type ThemeIntent struct{ Dark bool }

func (JoinIntent) isIntent()          {}
func (ModerateIntent) isIntent()      {}
func (CancelJoinIntent) isIntent()    {}
func (SendIntent) isIntent()          {}
func (SignOutIntent) isIntent()       {}
func (JoinRoomIntent) isIntent()      {}
func (LeaveRoomIntent) isIntent()     {}
func (DirectIntent) isIntent()        {}
func (OpenIntent) isIntent()          {}
func (MarkReadIntent) isIntent()      {}
func (ListRoomsIntent) isIntent()     {}
func (QuietIntent) isIntent()         {}
func (NotificationsIntent) isIntent() {}
func (RetryIntent) isIntent()         {}
func (ThemeIntent) isIntent()         {}
func (TrustIntent) isIntent()         {}
func (ForgetCertIntent) isIntent()    {}
func (NameKeyIntent) isIntent()       {}

// Besides the view models (model.go) and the client's client.Message and
// client.Acked, the loop reports these through UI.Apply.

// SendResult tells the id the client library gave the message sent to
// Room with Token, or why it refused it (Err set, ID empty).
type SendResult struct {
	Token uint64
	Room  string
	ID    string
	Err   error
}

// JoinFailed reports that a join did not succeed; Reason is for the
// user, Field is the form field to fix (NoField if none; KeyField shows the
// server key field). OfferNameKey says the name is owned through a name
// key, so the form offers to enter the one from the user's other device.
type JoinFailed struct {
	Reason       string
	Field        Field
	OfferNameKey bool
}

// Disconnected reports that the chat ended for good (the room was lost or
// the server refused the client); the user is sent back to the join screen,
// which shows it as it shows a JoinFailed.
type Disconnected JoinFailed

// CertificateRefused reports that the certificate of Server was not
// trusted, which ends the join or the chat: only the user can decide.
// Fingerprint is the certificate's (protocol.CertFingerprint form). With
// Pinned empty it is a first contact: Why says in words why the system
// does not trust it, and the form offers to trust it. With Pinned set, the
// certificate trusted before has been replaced by another: a warning, and
// no way to trust the new one in one click.
//
// Server is the server field as joined, which may list several
// addresses; Addr is the one whose certificate this is, when known.
type CertificateRefused struct {
	Server      string
	Addr        string
	Fingerprint string
	Pinned      string
	Why         string
}

// Node is the address that presented the certificate: Addr, or Server
// when that is not known.
func (c CertificateRefused) Node() string {
	if c.Addr != "" {
		return c.Addr
	}
	return c.Server
}
