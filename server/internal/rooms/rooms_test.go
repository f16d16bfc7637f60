package rooms_test

import (
	"testing"

	"chat/server/internal/rooms"
	"chat/server/internal/rooms/roomstest"
)

func TestMemory(t *testing.T) {
	roomstest.Run(t, func(*testing.T) rooms.Registry { return rooms.NewMemory() })
}

func TestParsePolicy(t *testing.T) {
	for _, s := range []string{"anyone", "key", "operators"} {
		if p, err := rooms.ParsePolicy(s); err != nil || string(p) != s {
			t.Fatalf("%s: %v, %v", s, p, err)
		}
	}
	if _, err := rooms.ParsePolicy("everyone"); err == nil {
		t.Fatal("everyone accepted")
	}
}
