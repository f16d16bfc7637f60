// Package roomstest is the conformance suite for rooms.Registry
// implementations: every implementation must pass Run.
package roomstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"chat/server/internal/rooms"
)

// Opener creates a fresh, empty registry.
type Opener func(t *testing.T) rooms.Registry

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("CreateOnce", func(t *testing.T) {
		r := open(t)
		if ok, err := r.Exists(ctx, "general"); err != nil || ok {
			t.Fatalf("Exists before creation = %v, %v", ok, err)
		}
		if created, err := r.Create(ctx, "general", 0); err != nil || !created {
			t.Fatalf("first Create = %v, %v", created, err)
		}
		if created, err := r.Create(ctx, "general", 0); err != nil || created {
			t.Fatalf("second Create = %v, %v: it existed", created, err)
		}
		if ok, err := r.Exists(ctx, "general"); err != nil || !ok {
			t.Fatalf("Exists after creation = %v, %v", ok, err)
		}
		if ok, err := r.Exists(ctx, "other"); err != nil || ok {
			t.Fatalf("Exists of another room = %v, %v", ok, err)
		}
	})

	t.Run("Cap", func(t *testing.T) {
		r := open(t)
		for i := range 3 {
			if created, err := r.Create(ctx, fmt.Sprint("room", i), 3); err != nil || !created {
				t.Fatalf("room %d: %v, %v", i, created, err)
			}
		}
		if _, err := r.Create(ctx, "room3", 3); !errors.Is(err, rooms.ErrFull) {
			t.Fatalf("fourth room with a cap of 3: %v", err)
		}
		if ok, _ := r.Exists(ctx, "room3"); ok {
			t.Fatal("a refused room exists")
		}
		// An existing room is no creation: the cap does not refuse it.
		if created, err := r.Create(ctx, "room1", 3); err != nil || created {
			t.Fatalf("existing room at the cap = %v, %v", created, err)
		}
		if n, err := r.Count(ctx); err != nil || n != 3 {
			t.Fatalf("Count = %d, %v", n, err)
		}
		if created, err := r.Create(ctx, "room3", 4); err != nil || !created {
			t.Fatalf("with a higher cap: %v, %v", created, err)
		}
	})

	t.Run("ConcurrentCreatorsOneWins", func(t *testing.T) {
		r := open(t)
		var wg sync.WaitGroup
		wins := make(chan bool, 8)
		for range 8 {
			wg.Go(func() {
				created, err := r.Create(ctx, "contested", 0)
				if err != nil {
					t.Error(err)
				}
				wins <- created
			})
		}
		wg.Wait()
		close(wins)
		n := 0
		for w := range wins {
			if w {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d creators won, want 1", n)
		}
	})
}
