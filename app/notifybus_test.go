//go:build !js

package main

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"chat/internal/testserver"
)

// notification is one call of org.freedesktop.Notifications.Notify.
type notification struct {
	App, Summary, Body string
}

// notificationBus is a private D-Bus session bus with a notification
// service of the test's own: the app shows its desktop notifications
// there (gioui.org/x/notify speaks the freedesktop protocol), and the
// test reads what it showed. Nothing reaches the machine's real desktop.
type notificationBus struct {
	Addr  string // for DBUS_SESSION_BUS_ADDRESS
	shown chan notification
}

// startNotificationBus runs dbus-daemon on a socket in a temporary
// directory and serves org.freedesktop.Notifications on it until the test
// ends.
func startNotificationBus(t *testing.T) *notificationBus {
	t.Helper()
	b := &notificationBus{shown: make(chan notification, 16)}
	var conn *dbus.Conn
	b.Addr, conn = startSessionBus(t)
	const path, iface = "/org/freedesktop/Notifications", "org.freedesktop.Notifications"
	if err := conn.Export(notificationServer{b}, path, iface); err != nil {
		t.Fatal(err)
	}
	takeName(t, conn, iface)
	return b
}

// startSessionBus runs a private dbus-daemon on a socket in a temporary
// directory until the test ends, and returns its address (for
// DBUS_SESSION_BUS_ADDRESS) and a connection to it for the test's
// services.
func startSessionBus(t *testing.T) (string, *dbus.Conn) {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Fatal("dbus-daemon is missing: apt-get install dbus-daemon")
	}
	sock := filepath.Join(t.TempDir(), "bus")
	cmd := exec.Command(daemon, "--session", "--nofork", "--nopidfile", "--print-address=1", "--address=unix:path="+sock)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testserver.LockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(20 * time.Second):
		t.Fatalf("dbus-daemon printed no address: %s", stderr.String())
	}
	if a == "" {
		t.Fatalf("dbus-daemon did not start: %s", stderr.String())
	}
	conn, err := dbus.Connect(a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return a, conn
}

// takeName makes conn the owner of the well-known name on its bus.
func takeName(t *testing.T, conn *dbus.Conn, name string) {
	t.Helper()
	reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("taking the name %s on the test bus: %v (reply %v)", name, err, reply)
	}
}

// wait returns the next notification shown, failing the test after
// timeout.
func (b *notificationBus) wait(t *testing.T, timeout time.Duration) notification {
	t.Helper()
	select {
	case n := <-b.shown:
		return n
	case <-time.After(timeout):
		t.Fatalf("no notification within %v", timeout)
	}
	return notification{}
}

// notificationServer is the freedesktop notification service's methods
// that clients call (Notify and the questions before it).
type notificationServer struct{ b *notificationBus }

func (s notificationServer) Notify(app string, replaces uint32, icon, summary, body string,
	actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	s.b.shown <- notification{App: app, Summary: summary, Body: body}
	return uint32(len(s.b.shown)) + 1, nil
}

func (s notificationServer) GetCapabilities() ([]string, *dbus.Error) {
	return []string{"body"}, nil
}

func (s notificationServer) GetServerInformation() (string, string, string, string, *dbus.Error) {
	return "chat-test", "chat", "1", "1.2", nil
}

func (s notificationServer) CloseNotification(id uint32) *dbus.Error { return nil }
