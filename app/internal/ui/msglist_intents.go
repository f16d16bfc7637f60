package ui

// LoadOlderIntent asks for a page of Room's history: up to Limit
// messages (0: the server's default, 100) numbered below Before, as
// client.History(Room, Before, Limit) does. Before 0 asks for the newest
// messages. The message list asks for one page at a time: when the user
// scrolls near the top of what it holds (older messages), near the bottom
// of a window that no longer reaches the end (newer ones: Before is then
// past the window's last message), or jumps to the end. The loop hands
// the client's answer, a client.Page, to UI.Apply. If the request fails
// (not connected), nothing needs to be reported: the list asks again
// after the room's next client.Joined.
type LoadOlderIntent struct {
	Room   string
	Before uint64
	Limit  int
}

// OpenURLIntent asks to open URL in the system's browser (a link in a
// message was clicked): platform.OpenURL does it. URL is an http or https
// address; platform.OpenURL refuses other schemes but mailto.
type OpenURLIntent struct{ URL string }

func (LoadOlderIntent) isIntent() {}
func (OpenURLIntent) isIntent()   {}
