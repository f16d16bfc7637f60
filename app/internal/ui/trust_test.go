package ui_test

import (
	"testing"

	"gioui.org/io/key"

	"chat/app/internal/ui"
)

const (
	// fpHex is a certificate digest as protocol.CertFingerprint writes it.
	fpHex    = "00112233445566778899aabbccddeeff0123456789abcdef0f1e2d3c4b5a6978"
	fp       = "SHA256:" + fpHex
	otherFP  = "SHA256:ffeeddccbbaa99887766554433221100fedcba98765432100f1e2d3c4b5a6978"
	tlsAddr  = "tls://chat.example.org:7878"
	grouped1 = "0011 2233 4455 6677 8899 aabb ccdd eeff"
	grouped2 = "0123 4567 89ab cdef 0f1e 2d3c 4b5a 6978"
)

// clipboard returns what was last copied; copying nothing fails the test.
func (r *rig) clipboard() string {
	r.t.Helper()
	s, ok := r.Clipboard()
	if !ok {
		r.t.Fatal("nothing was copied to the clipboard")
	}
	return s
}

func (r *rig) click(s string) {
	r.t.Helper()
	if err := r.ClickOn(s); err != nil {
		r.t.Fatal(err)
	}
}

// refusedJoin joins and has the certificate refused as e says.
func (r *rig) refusedJoin(e ui.CertificateRefused) {
	r.t.Helper()
	r.Press(key.NameReturn, 0)
	j := only[ui.JoinIntent](r.t, r.take())
	r.u.Apply(j.Session, e)
	r.Frame() // scrolls the prompt into view if needed
	r.Frame()
}

func TestUntrustedCertificateOffersTrust(t *testing.T) {
	r := newRig(t, ui.Config{Server: tlsAddr, Name: "alice"})
	r.refusedJoin(ui.CertificateRefused{Server: tlsAddr, Fingerprint: fp, Why: "Its certificate is not signed by an authority this device trusts."})
	r.mustShow("This server's identity cannot be verified")
	r.mustShow("not signed by an authority")
	r.mustShow(grouped1 + "\n" + grouped2) // readable, and the whole digest
	r.mustShow("tls: certificate loaded")  // where to find the one to compare
	if r.u.InChat() {
		t.Fatal("in the chat with an untrusted certificate")
	}

	r.click("Copy fingerprint")
	if got := r.clipboard(); got != fp {
		t.Fatalf("copied %q, want %q (the form the server logs)", got, fp)
	}
	r.mustShow("Fingerprint copied")

	r.click("Trust this server")
	in := r.take()
	if len(in) != 2 {
		t.Fatalf("trusting gave %#v; want a TrustIntent then a JoinIntent", in)
	}
	if tr, ok := in[0].(ui.TrustIntent); !ok || tr != (ui.TrustIntent{Server: tlsAddr, Fingerprint: fp}) {
		t.Fatalf("first intent %#v; want the trust of %s for %s", in[0], fp, tlsAddr)
	}
	if j, ok := in[1].(ui.JoinIntent); !ok || j.Server != tlsAddr || j.Name != "alice" {
		t.Fatalf("second intent %#v; want the join again", in[1])
	}
	r.mustNotShow("Trust this server")
	r.mustShow("Connecting to " + tlsAddr)
}

func TestChangedCertificateWarnsWithoutTrust(t *testing.T) {
	r := newRig(t, ui.Config{Server: tlsAddr, Name: "alice"})
	r.refusedJoin(ui.CertificateRefused{Server: tlsAddr, Fingerprint: otherFP, Pinned: fp})
	r.mustShow("Warning: the server's certificate has changed")
	r.mustShow("intercepting")
	r.mustShow(grouped1)              // trusted before
	r.mustShow("ffee ddcc bbaa 9988") // presented now
	r.mustNotShow("Trust this server")
	r.mustNotShow("Copy fingerprint")

	r.click("Forget the saved certificate")
	in := r.take()
	if len(in) != 1 || in[0] != (ui.ForgetCertIntent{Server: tlsAddr}) {
		t.Fatalf("forgetting gave %#v; want only a ForgetCertIntent, no join", in)
	}
	r.mustNotShow("Warning")
	r.mustShow("is forgotten")
	// From here on it is a first contact: join, see, compare, trust.
	r.refusedJoin(ui.CertificateRefused{Server: tlsAddr, Fingerprint: otherFP, Why: "Its certificate is not signed by an authority this device trusts."})
	r.mustShow("Trust this server")
}

func TestChangedCertificateEndsTheChat(t *testing.T) {
	r := newRig(t, ui.Config{Server: tlsAddr})
	s := r.joined()
	r.u.Apply(s, ui.CertificateRefused{Server: tlsAddr, Fingerprint: otherFP, Pinned: fp})
	r.Frame()
	r.Frame()
	if r.u.InChat() {
		t.Fatal("still in the chat after the certificate changed")
	}
	r.mustShow("Warning: the server's certificate has changed")
}

func TestEditingTheServerDismissesThePrompt(t *testing.T) {
	r := newRig(t, ui.Config{Server: tlsAddr, Name: "alice"})
	r.refusedJoin(ui.CertificateRefused{Server: tlsAddr, Fingerprint: fp, Why: "Not trusted."})
	if err := r.TabTo(tlsAddr); err != nil {
		t.Fatal(err)
	}
	r.Press(key.NameEnd, 0)
	r.Type("9")
	r.mustNotShow("Trust this server") // it was about another address
}

func TestServerKeyFieldAfterUnauthorized(t *testing.T) {
	r := newRig(t, ui.Config{Server: "chat.example.org:7878", Name: "alice"})
	r.mustNotShow("Server key")
	r.Press(key.NameReturn, 0)
	j := only[ui.JoinIntent](t, r.take())
	if j.Key != "" {
		t.Fatalf("a key %q was sent before any was entered", j.Key)
	}
	r.u.Apply(j.Session, ui.JoinFailed{Reason: "This server is private: enter the server key its operator gave you.", Field: ui.KeyField})
	r.Frame()
	r.Frame()
	r.mustShow("Server key")
	r.mustShow("This server is private")
	r.Type("s3cret") // the key field has the focus
	r.Press(key.NameReturn, 0)
	j = only[ui.JoinIntent](t, r.take())
	if j.Key != "s3cret" || j.Name != "alice" {
		t.Fatalf("join %+v; want alice with the key typed", j)
	}
	r.mustNotShow("This server is private")
}

func TestSavedServerKeyFollowsTheServerField(t *testing.T) {
	r := newRig(t, ui.Config{Server: "a.example:1", Name: "alice", Keys: map[string]string{"a.example:1": "k1"}})
	r.mustShow("Server key")
	r.Press(key.NameReturn, 0)
	if j := only[ui.JoinIntent](t, r.take()); j.Key != "k1" {
		t.Fatalf("join with key %q, want the saved k1", j.Key)
	}
	r.click("Cancel")
	r.take()

	// Another server: its saved key is not sent there, and the field goes.
	if err := r.TabTo("a.example:1"); err != nil {
		t.Fatal(err)
	}
	r.Press(key.NameEnd, 0)
	r.Press(key.NameDeleteBackward, 0)
	r.Type("2")
	r.mustNotShow("Server key")
	r.Press(key.NameReturn, 0)
	if j := only[ui.JoinIntent](t, r.take()); j.Server != "a.example:2" || j.Key != "" {
		t.Fatalf("join %+v; want a.example:2 without a key", j)
	}
	r.click("Cancel")
	r.take()
	// Back to the first server: its key is back.
	r.Press(key.NameDeleteBackward, 0)
	r.Type("1")
	r.mustShow("Server key")
	r.Press(key.NameReturn, 0)
	if j := only[ui.JoinIntent](t, r.take()); j.Key != "k1" {
		t.Fatalf("join with key %q, want k1 again", j.Key)
	}
}

func TestServerAddressForms(t *testing.T) {
	for _, c := range []struct {
		addr, problem string
	}{
		{"localhost:7878", ""},
		{"tls://chat.example.org:7878", ""},
		{"tcp://127.0.0.1:7878", ""},
		{"wss://chat.example.org/ws", ""},
		{"tls://chat.example.org", "needs a host and a port"},
		{"ftp://chat.example.org:21", "does not know the address form ftp://"},
		// The nodes of a cluster: a comma-separated list, each checked.
		{"a.example.org:7878, tls://b.example.org:7878,wss://c.example.org/ws", ""},
		{"a.example.org:7878,b.example.org", "needs a host and a port"},
	} {
		r := newRig(t, ui.Config{Server: c.addr, Name: "alice"})
		r.Press(key.NameReturn, 0)
		in := r.take()
		if c.problem == "" {
			if j := only[ui.JoinIntent](t, in); j.Server != c.addr {
				t.Errorf("%s: joined %q", c.addr, j.Server)
			}
			continue
		}
		if len(in) != 0 {
			t.Errorf("%s: gave %#v", c.addr, in)
		}
		r.mustShow(c.problem)
	}
}

const (
	thisKey  = "0123456789abcdef0123456789abcdef"
	otherKey = "fedcba9876543210fedcba9876543210"
)

func TestNameKeyCanBeCopied(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878", NameKey: thisKey})
	r.mustNotShow(thisKey) // a secret: shown only when asked for
	r.click("Name key: use your name on another device")
	r.mustShow(thisKey)
	r.click("Copy name key")
	if got := r.clipboard(); got != thisKey {
		t.Fatalf("copied %q, want the name key %q", got, thisKey)
	}
	r.mustShow("Name key copied")
	if in := r.take(); len(in) != 0 {
		t.Fatalf("copying gave %#v", in)
	}
}

func TestNameKeyFromAnotherDevice(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878", NameKey: thisKey})
	r.click("Name key: use your name on another device")
	r.click("Use a name key from another device")
	r.mustShow("Name key from your other device")

	// Bad input is explained and kept for fixing.
	r.Type("fedcba98") // the field has the focus
	r.Press(key.NameReturn, 0)
	r.mustShow("too short for a name key")
	r.Press(key.NameEnd, 0)
	r.Type(" 7654 3210 fedcba9876543210 ") // spaces from copying a grouped key
	r.mustNotShow("too short")
	r.click("Use this key")

	// Nothing changes before the user confirms.
	r.mustShow("Replace this device's name key?")
	if in := r.take(); len(in) != 0 {
		t.Fatalf("before confirming: %#v", in)
	}
	r.click("Keep the current key")
	r.mustShow(thisKey)
	r.click("Use this key") // the text is still in the field
	r.click("Replace my name key")
	if in := only[ui.NameKeyIntent](t, r.take()); in.Key != otherKey {
		t.Fatalf("new name key %q, want %q", in.Key, otherKey)
	}
	r.mustShow(otherKey)
	r.mustNotShow(thisKey)
	r.mustShow("now uses the name key from your other device")
}

func TestNameTakenOffersTheNameKey(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878", Name: "alice", NameKey: thisKey})
	r.Press(key.NameReturn, 0)
	j := only[ui.JoinIntent](t, r.take())
	reason := "The name alice belongs to someone else on this server. If it is yours, enter the name key from the device you first used it on (below), or pick another name."
	r.u.Apply(j.Session, ui.JoinFailed{Reason: reason, Field: ui.NameField, OfferNameKey: true})
	r.Frame()
	r.Frame()
	r.mustShow(reason)
	r.mustShow("Name key from your other device")
	// The name field has the focus: picking another name is quick.
	r.Press(key.NameEnd, 0)
	r.Type("2")
	r.Press(key.NameReturn, 0)
	if j := only[ui.JoinIntent](t, r.take()); j.Name != "alice2" {
		t.Fatalf("joined as %q", j.Name)
	}
}

func TestMemberPanelCopiesTheNameKey(t *testing.T) {
	r := newRig(t, ui.Config{Server: "localhost:7878", NameKey: thisKey})
	r.joined()
	r.click("Members")
	r.click("Copy my name key")
	if got := r.clipboard(); got != thisKey {
		t.Fatalf("copied %q, want %q", got, thisKey)
	}
	r.mustShow("Name key copied")
}
