package settings

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestMissingFileIsEmpty(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "nope")).Load()
	if err != nil || !reflect.DeepEqual(st, Settings{}) {
		t.Fatalf("Load of a missing file = %+v, %v; want zero, nil", st, err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "chat") // not created yet: Save makes it
	want := Settings{Server: "example.org:7878", Name: "Zoë", Room: "général", Secret: "abc", Dark: true,
		Pins: map[string]string{"tls://example.org:7878": "SHA256:00ff"}, Keys: map[string]string{"example.org:7878": "k"}}
	if err := Open(dir).Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := Open(dir).Load()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, want)
	}
	// Saving again replaces the file and leaves no temporary files behind.
	want.Room = "other"
	if err := Open(dir).Save(want); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != FileName {
		t.Fatalf("directory holds %v, want only %s", entries, FileName)
	}
	if got, _ := Open(dir).Load(); got.Room != "other" {
		t.Fatalf("room = %q after the second save", got.Room)
	}
}

func TestCorruptFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir).Load(); err == nil {
		t.Fatal("Load of a corrupt file gave no error")
	}
}

func TestNoDirPersistsNothing(t *testing.T) {
	s := Open("")
	if err := s.Save(Settings{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Load(); err != nil || !reflect.DeepEqual(st, Settings{}) {
		t.Fatalf("Load = %+v, %v", st, err)
	}
}

func TestSetAsideKeepsUnreadableSettings(t *testing.T) {
	dir := t.TempDir()
	bad := []byte(`{"secret": "my-old-key", oops`)
	if err := os.WriteFile(filepath.Join(dir, FileName), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	s := Open(dir)
	if _, err := s.Load(); err == nil {
		t.Fatal("no error for a corrupt file")
	}
	to, err := s.SetAside()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(to); err != nil || string(b) != string(bad) {
		t.Fatalf("set aside %q: %q, %v", to, b, err)
	}
	if err := s.Save(Settings{Secret: "new"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(to); string(b) != string(bad) {
		t.Fatal("saving new settings changed the unreadable ones")
	}
}

func TestRoomsAndQuietPerServer(t *testing.T) {
	var st Settings
	st.AddRoom("a:1", "general")
	st.AddRoom("a:1", "random")
	st.AddRoom("a:1", "general")
	st.AddRoom("b:2", "general")
	if got := st.Rooms["a:1"]; !reflect.DeepEqual(got, []string{"general", "random"}) {
		t.Fatalf("rooms on a:1: %q", got)
	}
	st.RemoveRoom("a:1", "general")
	st.RemoveRoom("b:2", "general")
	if !reflect.DeepEqual(st.Rooms, map[string][]string{"a:1": {"random"}}) {
		t.Fatalf("rooms after removing: %q", st.Rooms)
	}
	st.SetQuiet("a:1", "random", true)
	st.SetQuiet("a:1", "random", true)
	if !st.IsQuiet("a:1", "random") || st.IsQuiet("b:2", "random") || len(st.Quiet["a:1"]) != 1 {
		t.Fatalf("quiet: %q", st.Quiet)
	}
	st.SetQuiet("a:1", "random", false)
	if st.IsQuiet("a:1", "random") || len(st.Quiet) != 0 {
		t.Fatalf("quiet after turning on again: %q", st.Quiet)
	}
	dir := t.TempDir()
	st.AddRoom("a:1", "général")
	if err := Open(dir).Save(st); err != nil {
		t.Fatal(err)
	}
	if got, err := Open(dir).Load(); err != nil || !reflect.DeepEqual(got.Rooms, st.Rooms) {
		t.Fatalf("loaded rooms %q, %v", got.Rooms, err)
	}
}
