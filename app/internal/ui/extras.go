package ui

import (
	"time"

	"chat/client"
)

// extras are the fields of issue 15 that a client.Message carries.
type extras struct {
	reply     uint64
	edited    time.Time
	reactions []Reaction
}

// extrasOf reads them from m.
// TODO(app15): the client library's Message has them once client15 is merged.
func extrasOf(m client.Message) extras {
	_ = m
	return extras{}
}
