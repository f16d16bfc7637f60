package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestParseTrusted(t *testing.T) {
	tr, err := ParseTrusted(" 10.0.0.0/8, 127.0.0.1 ,::1,2001:db8::/32,::ffff:192.168.0.0/112,")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "127.0.0.1": true, "127.0.0.2": false, "::1": true, "2001:db8:1::5": true,
		"2001:db9::1": false, "::ffff:10.9.9.9": true, "192.168.4.5": true, "192.169.0.1": false, "11.0.0.1": false,
	} {
		if got := tr.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", addr, got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "1.2.3", "fe80::1%eth0"} {
		if _, err := ParseTrusted(bad); err == nil {
			t.Errorf("ParseTrusted(%q) accepted it", bad)
		}
	}
	none, err := ParseTrusted("")
	if err != nil || none.Any() || none.Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("an empty list trusts someone (%v)", err)
	}
	var nilTrusted *Trusted
	if nilTrusted.Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Error("nil trusts someone")
	}
}

func TestClientAddr(t *testing.T) {
	trusted, err := ParseTrusted("127.0.0.1,10.0.0.0/8,2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	proxyPeer := netip.MustParseAddrPort("127.0.0.1:40000")
	for _, tc := range []struct {
		name    string
		peer    netip.AddrPort
		headers map[string][]string
		want    string
	}{
		{"no header from a trusted proxy", proxyPeer, nil, "127.0.0.1:40000"},
		{"X-Forwarded-For one hop", proxyPeer, map[string][]string{"X-Forwarded-For": {"192.0.2.7"}}, "192.0.2.7:0"},
		{"an untrusted peer's header is ignored", netip.MustParseAddrPort("192.0.2.9:5000"),
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "192.0.2.9:5000"},
		// The client wrote 1.1.1.1 itself; nginx appended the address it saw.
		{"spoofed entries left of the real one", proxyPeer, map[string][]string{"X-Forwarded-For": {"1.1.1.1, 192.0.2.7"}}, "192.0.2.7:0"},
		{"spoofed trusted address", proxyPeer, map[string][]string{"X-Forwarded-For": {"10.0.0.5, 192.0.2.7"}}, "192.0.2.7:0"},
		{"through a chain of trusted proxies", proxyPeer, map[string][]string{"X-Forwarded-For": {"1.1.1.1, 192.0.2.7, 10.2.3.4, 10.0.0.1"}}, "192.0.2.7:0"},
		{"several header lines in order", proxyPeer, map[string][]string{"X-Forwarded-For": {"1.1.1.1", "192.0.2.7, 10.0.0.1"}}, "192.0.2.7:0"},
		{"garbage as the rightmost untrusted entry", proxyPeer, map[string][]string{"X-Forwarded-For": {"192.0.2.7, not-an-address, 10.0.0.1"}}, "10.0.0.1:0"},
		{"garbage only", proxyPeer, map[string][]string{"X-Forwarded-For": {"<script>"}}, "127.0.0.1:40000"},
		{"empty header", proxyPeer, map[string][]string{"X-Forwarded-For": {""}}, "127.0.0.1:40000"},
		{"all trusted: the leftmost", proxyPeer, map[string][]string{"X-Forwarded-For": {"10.9.9.9, 10.0.0.1"}}, "10.9.9.9:0"},
		{"IPv6", proxyPeer, map[string][]string{"X-Forwarded-For": {"2001:db8::7"}}, "[2001:db8::7]:0"},
		{"IPv6 with brackets and port", proxyPeer, map[string][]string{"X-Forwarded-For": {"[2001:db8::7]:4711"}}, "[2001:db8::7]:4711"},
		{"IPv4 with port", proxyPeer, map[string][]string{"X-Forwarded-For": {"192.0.2.7:4711"}}, "192.0.2.7:4711"},
		{"zone refused", proxyPeer, map[string][]string{"X-Forwarded-For": {"fe80::1%eth0"}}, "127.0.0.1:40000"},
		{"Forwarded", proxyPeer, map[string][]string{"Forwarded": {"for=192.0.2.7;proto=https;by=10.0.0.1"}}, "192.0.2.7:0"},
		{"Forwarded case and spaces", proxyPeer, map[string][]string{"Forwarded": {"proto=http; For=192.0.2.7"}}, "192.0.2.7:0"},
		{"Forwarded quoted IPv6 with port", proxyPeer, map[string][]string{"Forwarded": {`for="[2001:db8:cafe::17]:4711"`}}, "[2001:db8:cafe::17]:4711"},
		{"Forwarded spoofed first element", proxyPeer, map[string][]string{"Forwarded": {`for=1.1.1.1, for=192.0.2.7`}}, "192.0.2.7:0"},
		{"Forwarded comma inside quotes", proxyPeer, map[string][]string{"Forwarded": {`for="1.1.1.1, 2.2.2.2", for=192.0.2.7;by="a,b"`}}, "192.0.2.7:0"},
		{"Forwarded spoof smuggled in a quoted value", proxyPeer, map[string][]string{"Forwarded": {`for=192.0.2.7;host="x, for=1.1.1.1"`}}, "192.0.2.7:0"},
		{"Forwarded unknown", proxyPeer, map[string][]string{"Forwarded": {"for=unknown, for=10.0.0.1"}}, "10.0.0.1:0"},
		{"Forwarded obfuscated", proxyPeer, map[string][]string{"Forwarded": {"for=_hidden"}}, "127.0.0.1:40000"},
		{"Forwarded element without for", proxyPeer, map[string][]string{"Forwarded": {"for=1.1.1.1, proto=https"}}, "127.0.0.1:40000"},
		// A proxy that sets X-Forwarded-For passes the client's Forwarded
		// through: X-Forwarded-For wins so the client cannot pick its address.
		{"X-Forwarded-For wins over a client's Forwarded", proxyPeer,
			map[string][]string{"X-Forwarded-For": {"192.0.2.7"}, "Forwarded": {"for=1.1.1.1"}}, "192.0.2.7:0"},
		{"IPv6 trusted prefix in the chain", proxyPeer, map[string][]string{"X-Forwarded-For": {"192.0.2.7, 2001:db8:ffff::9"}}, "192.0.2.7:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, vs := range tc.headers {
				for _, v := range vs {
					h.Add(k, v)
				}
			}
			if got := ClientAddr(h, tc.peer, trusted).String(); got != tc.want {
				t.Errorf("ClientAddr = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestHandlerSetsRemoteAddr(t *testing.T) {
	trusted, err := ParseTrusted("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var seen string
	h := Handler(trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr }))
	for _, tc := range []struct{ peer, xff, want string }{
		{"127.0.0.1:5000", "1.1.1.1, 192.0.2.7", "192.0.2.7:0"},
		{"127.0.0.1:5000", "2001:db8::7", "[2001:db8::7]:0"},
		{"127.0.0.1:5000", "", "127.0.0.1:5000"},
		{"192.0.2.9:5000", "198.51.100.1", "192.0.2.9:5000"},
	} {
		r := httptest.NewRequest("GET", "/ws", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if seen != tc.want {
			t.Errorf("from %s with X-Forwarded-For %q: RemoteAddr %s, want %s", tc.peer, tc.xff, seen, tc.want)
		}
	}
	inner := http.NotFoundHandler()
	if none, _ := ParseTrusted(""); Handler(none, inner) == nil {
		t.Error("no handler without trusted proxies")
	}
}
