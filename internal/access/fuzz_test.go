package access

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientAddress feeds arbitrary X-Forwarded-For / X-Real-IP values from a trusted peer: the client address
// is always the peer or an address literally present in the header, never something made up, and an
// untrusted peer is never moved.
func FuzzClientAddress(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "1.2.3.4, 10.0.0.1", " 2001:db8::1 ,10.9.9.9", "junk, 10.0.0.2", "", ",,,", "fe80::1%eth0", "::ffff:1.2.3.4"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	peer := netip.MustParseAddrPort("10.0.0.1:5555")
	f.Fuzz(func(t *testing.T, value string, recursive bool) {
		for _, hdr := range []string{"X-Forwarded-For", "X-Real-IP"} {
			h := http.Header{}
			h.Set(hdr, value)
			ri := &RealIP{From: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Header: hdr, Recursive: recursive}
			got := ri.Client(peer, h, netip.AddrPort{})
			if got != peer {
				found := false
				for _, part := range strings.Split(value, ",") {
					if a, err := netip.ParseAddr(strings.TrimSpace(part)); err == nil && a.Unmap() == got.Addr() {
						found = true
					}
				}
				if !found {
					t.Fatalf("%s %q gave %v, which it does not contain", hdr, value, got)
				}
			}
			untrusted := netip.MustParseAddrPort("203.0.113.1:1")
			if got := ri.Client(untrusted, h, netip.AddrPort{}); got != untrusted {
				t.Fatalf("untrusted peer moved to %v by %q", got, value)
			}
		}
	})
}

// FuzzOrigins: parsing never panics, a pattern never matches a malformed origin, and an exact origin that
// parsed always matches itself.
func FuzzOrigins(f *testing.F) {
	for _, s := range []string{"https://a.example.org", "https://*.example.net", "http://x:8080", "*", "https://*.", "https://a/b", "null"} {
		f.Add(s, "https://b.example.net")
	}
	f.Fuzz(func(t *testing.T, pattern, origin string) {
		o, err := ParseOrigins([]string{pattern})
		if err != nil {
			return
		}
		m := o.Match(origin)
		if m && !o.Any && (strings.ContainsAny(origin, "/?#@ ") && strings.Count(origin, "/") != 2) {
			t.Fatalf("%q matched malformed origin %q", pattern, origin)
		}
		if !strings.Contains(pattern, "*") && !o.Match(strings.TrimSuffix(pattern, "/")) {
			t.Fatalf("%q does not match itself", pattern)
		}
	})
}
