package chatapp_test

import (
	"strings"
	"testing"

	"gioui.org/io/key"

	"chat/app/internal/settings"
	"chat/client"
	"chat/internal/testserver"
	"chat/protocol"
)

func (r *rig) click(s string) {
	r.t.Helper()
	if err := r.ClickOn(s); err != nil {
		r.t.Fatal(err)
	}
}

// clipboard returns what was last copied; copying nothing fails the test.
func (r *rig) clipboard() string {
	r.t.Helper()
	s, ok := r.Clipboard()
	if !ok {
		r.t.Fatal("nothing was copied to the clipboard")
	}
	return s
}

func (r *rig) settings() settings.Settings {
	r.t.Helper()
	st, err := r.store.Load()
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// readable is how a person should see a fingerprint: the digest's hex
// digits in groups of four, eight to a line. Written out here rather than
// taken from the ui package, so the test checks what the screen shows.
func readable(fp string) string {
	hex := strings.TrimPrefix(fp, "SHA256:")
	var groups []string
	for i := 0; i < len(hex); i += 4 {
		groups = append(groups, hex[i:i+4])
	}
	return strings.Join(groups[:8], " ") + "\n" + strings.Join(groups[8:], " ")
}

// TestTrustSelfSignedServer: a self-hosted server with a self-signed
// certificate is refused until the user compares its fingerprint and
// trusts it; the choice is remembered; a changed certificate is refused
// with a warning until the user forgets the old one and trusts the new.
func TestTrustSelfSignedServer(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := testserver.SelfSigned(t, dir)
	srv := testserver.Start(t, testserver.Options{Args: []string{"-tls-cert", certFile, "-tls-key", keyFile}})
	addr := "tls://" + srv.Addr
	fp := protocol.CertFingerprint(cert.Raw)

	r := newRig(t, addr)
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("This server's identity cannot be verified")
	r.mustShow("not signed by an authority this device trusts")
	r.mustShow(readable(fp))
	if r.app.UI().InChat() {
		t.Fatal("joined a server whose certificate nobody trusts")
	}
	if st := r.settings(); len(st.Pins) != 0 {
		t.Fatalf("a certificate was trusted before the user said so: %v", st.Pins)
	}
	r.click("Copy fingerprint")
	if got := r.clipboard(); got != fp {
		t.Fatalf("copied %q; the server's certificate is %s", got, fp)
	}

	r.click("Trust this server")
	r.waitShows("connected")
	if pins := r.settings().Pins; pins[addr] != fp || len(pins) != 1 {
		t.Fatalf("saved pins %v, want %s for %s", pins, fp, addr)
	}
	bob := newPeerConfig(t, client.Config{Addr: addr, Name: "bob", TLS: client.TLSOptions{Pin: fp}})
	r.waitShows("bob joined")
	r.Type("over TLS")
	r.Press(key.NameReturn, 0)
	bob.receive("over TLS")

	// Another start of the app with these settings trusts it at once.
	r2 := startRig(t, addr, r.store, fastBackoff)
	r2.Press(key.NameReturn, 0) // the name is remembered
	r2.waitShows("connected")
	r2.waitShows("over TLS")
	r2.app.Close()

	// The operator's certificate changes (or someone intercepts): the
	// app in the room is taken out, warned, and cannot trust it in one
	// click.
	_, _, cert2 := testserver.SelfSigned(t, dir) // the same files, a new key
	fp2 := protocol.CertFingerprint(cert2.Raw)
	srv.Restart()
	r.waitShows("Warning: the server's certificate has changed")
	if r.app.UI().InChat() {
		t.Fatal("still in the chat after the certificate changed")
	}
	r.mustShow(readable(fp))  // trusted before
	r.mustShow(readable(fp2)) // presented now
	r.mustNotShow("Trust this server")
	if pins := r.settings().Pins; pins[addr] != fp {
		t.Fatalf("the saved certificate changed by itself: %v", pins)
	}

	// The user checked with the operator: forget, join, compare, trust.
	r.click("Forget the saved certificate")
	r.waitFor("the certificate to be forgotten", func() bool { return len(r.settings().Pins) == 0 })
	r.click("Join")
	r.waitShows("This server's identity cannot be verified")
	r.mustShow(readable(fp2))
	r.click("Trust this server")
	r.waitShows("connected")
	if pins := r.settings().Pins; pins[addr] != fp2 {
		t.Fatalf("saved pins %v, want the new %s", pins, fp2)
	}
}

// TestPlainAddressForTLSServer: the server says its port needs TLS; the
// form says how to write the address, and that works.
func TestPlainAddressForTLSServer(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := testserver.SelfSigned(t, dir)
	srv := testserver.Start(t, testserver.Options{Args: []string{"-tls-cert", certFile, "-tls-key", keyFile}})
	r := newRig(t, srv.Addr)
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("This server takes only TLS connections: write its address as tls://" + srv.Addr + ".")
	// The server field has the focus: add the prefix, join, trust.
	r.Press(key.NameHome, 0)
	r.Type("tls://")
	r.Press(key.NameReturn, 0)
	r.waitShows(readable(protocol.CertFingerprint(cert.Raw)))
	r.click("Trust this server")
	r.waitShows("connected")
}

// TestPrivateServerKey: a server with an access key refuses a join
// without it; the key field appears, a wrong key is explained, the right
// one joins and is remembered for that server.
func TestPrivateServerKey(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"-key", "open sesame"}})
	r := newRig(t, srv.Addr)
	r.mustNotShow("Server key")
	r.Type("alice")
	r.Press(key.NameReturn, 0)
	r.waitShows("This server is private: enter the server key")
	r.mustShow("Server key")

	r.Type("open barley") // the key field has the focus
	r.Press(key.NameReturn, 0)
	r.waitShows("This server did not accept that server key")
	r.Press("A", key.ModShortcut) // select it all and type anew
	r.Type("open sesame")
	r.Press(key.NameReturn, 0)
	r.waitShows("connected")
	if st := r.settings(); st.Keys[srv.Addr] != "open sesame" {
		t.Fatalf("saved keys %v", st.Keys)
	}

	// The next start fills it in.
	r2 := startRig(t, srv.Addr, r.store, fastBackoff)
	r2.mustShow("Server key")
	r2.Press(key.NameReturn, 0)
	r2.waitShows("connected")
}

// TestNameKeyToSecondDevice: a name claimed on one device is refused on
// another until the user brings the first device's name key over; then
// both are in the room under the name.
func TestNameKeyToSecondDevice(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	laptop := newRig(t, srv.Addr)
	laptop.Type("alice")
	laptop.Press(key.NameReturn, 0)
	laptop.waitShows("connected")

	phone := newRig(t, srv.Addr)
	phone.Type("alice")
	phone.Press(key.NameReturn, 0)
	phone.waitShows("The name alice belongs to someone else on this server")
	phone.mustShow("Name key from your other device")

	// On the laptop, the member list copies the key.
	laptop.click("Members")
	laptop.click("Copy my name key")
	nameKey := laptop.clipboard()
	if nameKey == "" || nameKey != laptop.settings().Secret {
		t.Fatalf("copied %q; the laptop's name key is %q", nameKey, laptop.settings().Secret)
	}

	// On the phone, it is entered and confirmed.
	phone.click("Paste the name key") // the empty field's hint
	phone.Type(nameKey)
	phone.click("Use this key")
	phone.click("Replace my name key")
	phone.waitFor("the name key to be saved", func() bool { return phone.settings().Secret == nameKey })
	phone.click("Join")
	phone.waitShows("connected")

	// Both devices are alice, in the room at once.
	phone.Type("from my phone")
	phone.Press(key.NameReturn, 0)
	laptop.waitShows("from my phone")
	laptop.mustShow("connected")
}

func (r *rig) mustNotShow(s string) {
	r.t.Helper()
	if r.Shows(s) {
		r.t.Fatalf("the screen shows %q; it should not", s)
	}
}
