package ui

import (
	"time"

	"chat/client"
)

// extras are the fields of a client.Message that acting on messages
// added: what it answers, when it was edited, its reactions.
type extras struct {
	reply     uint64
	edited    time.Time
	reactions []Reaction
}

// extrasOf reads them from m, in the UI's own types.
func extrasOf(m client.Message) extras {
	return extras{reply: m.Reply, edited: m.Edited, reactions: Reactions(m.Reactions)}
}

// Reactions converts the client library's reactions to the UI's.
func Reactions(rs []client.Reaction) []Reaction {
	if len(rs) == 0 {
		return nil
	}
	out := make([]Reaction, len(rs))
	for i, r := range rs {
		out[i] = Reaction{Emoji: r.Emoji, Count: r.Count, Names: r.Names, Mine: r.Mine}
	}
	return out
}
