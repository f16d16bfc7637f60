package ui

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
	Session            uint64
}

// TrustIntent asks to trust (pin) the certificate with Fingerprint for
// Server from now on. The user compared it and said so; a JoinIntent
// follows.
type TrustIntent struct{ Server, Fingerprint string }

// ForgetCertIntent asks to forget the certificate trusted for Server, after
// it changed: the next join treats the server as new.
type ForgetCertIntent struct{ Server string }

// NameKeyIntent replaces this device's name key with Key, which the user
// brought from another device and confirmed.
type NameKeyIntent struct{ Key string }

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
func (TrustIntent) isIntent()      {}
func (ForgetCertIntent) isIntent() {}
func (NameKeyIntent) isIntent()    {}

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
type CertificateRefused struct {
	Server      string
	Fingerprint string
	Pinned      string
	Why         string
}
