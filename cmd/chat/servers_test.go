package main

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"chat/internal/testserver"
	"chat/protocol"
)

// refusedAddr is a loopback address where nothing listens.
func refusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestServerList: -server and CHAT_SERVER take a comma-separated list;
// chat skips the address that refuses and says which one it reached.
func TestServerList(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := testserver.Start(t, testserver.Options{})
	dead := refusedAddr(t)

	code, out := session(t, []string{"-server", " " + dead + " , " + srv.Addr + ",", "-name", "ann"}, "via the flag")
	if code != 0 || !strings.Contains(out, "-- connecting to "+dead+","+srv.Addr+" as ann\n") ||
		!strings.Contains(out, "-- connected to "+srv.Addr+"\n") || !strings.Contains(out, "ann: via the flag") {
		t.Fatalf("-server with a list: exit %d\n%s", code, out)
	}

	t.Setenv("CHAT_SERVER", dead+","+srv.Addr)
	code, out = session(t, []string{"-name", "ann"}, "via the environment")
	if code != 0 || !strings.Contains(out, "-- connected to "+srv.Addr+"\n") || !strings.Contains(out, "ann: via the environment") {
		t.Fatalf("CHAT_SERVER with a list: exit %d\n%s", code, out)
	}

	code, out = session(t, []string{"-server", " , ", "-name", "ann"})
	if code != 2 || !strings.Contains(out, "-server") {
		t.Fatalf("an empty list: exit %d\n%s", code, out)
	}
}

// TestTrustOneServerOfAList: a server of a list presents a certificate
// nobody trusted: chat prints the command that trusts it for that
// address only, which works and is remembered for that address.
func TestTrustOneServerOfAList(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	certFile, keyFile, cert := testserver.SelfSigned(t, t.TempDir())
	srv := testserver.Start(t, testserver.Options{Args: []string{"-tls-cert", certFile, "-tls-key", keyFile}})
	addr := "tls://" + srv.Addr
	list := "tls://" + refusedAddr(t) + "," + addr
	fp := protocol.CertFingerprint(cert.Raw)

	code, out := session(t, []string{"-server", list, "-name", "ann"}, "hello")
	want := "chat -server " + list + " -trust " + addr + "=" + fp
	if code != 1 || !strings.Contains(out, "not trusted") || !strings.Contains(out, want) {
		t.Fatalf("first contact: exit %d, want 1 and %q in\n%s", code, want, out)
	}
	args := strings.Fields(strings.TrimPrefix(want, "chat "))
	if code, out := session(t, append(args, "-name", "ann"), "trusted now"); code != 0 || !strings.Contains(out, "-- connected to "+addr) {
		t.Fatalf("the printed command: exit %d\n%s", code, out)
	}
	// Remembered for the address, whatever list it comes in.
	if code, out := session(t, []string{"-server", addr, "-name", "ann"}, "remembered"); code != 0 {
		t.Fatalf("the pin was not remembered for %s: exit %d\n%s", addr, code, out)
	}
}

func TestTrustArg(t *testing.T) {
	servers := []string{"a:1", "tls://b:2"}
	for _, c := range []struct{ arg, want string }{
		{"SHA256:ab", "map[a:1:SHA256:ab tls://b:2:SHA256:ab]"},    // every server listed
		{" tls://b:2=SHA256:ab ", "map[tls://b:2:SHA256:ab]"},      // one of them
		{"sha256:ab=", "map[a:1:sha256:ab= tls://b:2:sha256:ab=]"}, // a fingerprint, not ADDRESS=
		{"c:3 = SHA256:cd", "map[c:3:SHA256:cd]"},                  // an address not listed (yet)
	} {
		if got := fmt.Sprint(trustArg(c.arg, servers)); got != c.want {
			t.Errorf("trustArg(%q) = %s, want %s", c.arg, got, c.want)
		}
	}
}
