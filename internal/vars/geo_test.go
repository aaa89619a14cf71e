package vars

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// buildGeo builds `geo [SOURCE] $g { lines }` (lines separated by ";") the way the config loader does.
func buildGeo(t *testing.T, source, lines string) (*Table, Var) {
	t.Helper()
	tab := NewTable()
	var src *Template
	if source != "" {
		var err error
		if src, err = Compile(source, tab); err != nil {
			t.Fatal(err)
		}
	}
	b := NewGeo(src)
	for _, l := range strings.Split(lines, ";") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if _, err := b.Line(f[0], f[1:]); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
	}
	if _, err := tab.DeclareMap("g", b.Geo()); err != nil {
		t.Fatal(err)
	}
	return tab, mustLookup(t, tab, "g")
}

// TestGeo: longest-prefix match per family, delete, duplicates, ranges nested inside earlier ranges, proxy
// with X-Forwarded-For, and the INADDR_NONE lookup of a source that is not an address. The expected values
// were observed from nginx 1.22 on the same blocks.
func TestGeo(t *testing.T) {
	cidr := "default def; 10.0.0.0/8 ten; 10.1.0.0/16 ten1; 10.1.2.3 host; 10.1.2.3/32 host2; 10.2.3.4/8 tenb;" +
		"0.0.0.0/1 half; 255.255.255.255 bcast; 2001:db8::/32 doc6; 2001:db8:1::/48 doc6a; ::1 lo6;" +
		"::ffff:10.5.0.0/112 mapped; 10.3.0.0/16 del; delete 10.3.0.0/16; delete 10.4.0.0/16"
	ranges := "ranges; default rdef; 10.0.0.0-10.0.0.255 r1; 10.0.0.50-10.0.0.60 r3; 10.0.5.0-10.0.5.255 r5;" +
		"255.255.255.0-255.255.255.254 top; 10.0.6.0-10.0.6.255 r6; delete 10.0.6.0-10.0.6.255;" +
		"10.0.7.0-10.0.7.255 r7; 10.0.7.0-10.0.7.255 r7b; 10.2.0.0-10.2.0.255 o2; 10.2.0.0-10.2.0.10 i2;" +
		"10.2.0.250-10.2.0.255 i3; 10.1.0.0-10.1.0.255 outer; 10.1.0.10-10.1.0.20 inner; delete 10.1.0.10-10.1.0.20"
	tests := []struct {
		name, source, lines string
		addr                map[string]string // client address (or X-IP header with a source) → value
	}{
		{"cidr", "", cidr, map[string]string{
			"10.1.2.3": "host2", "10.1.2.4": "ten1", "10.3.1.1": "tenb", "10.4.1.1": "tenb", "1.1.1.1": "half",
			"200.1.1.1": "def", "255.255.255.255": "bcast", "10.5.0.1": "tenb", "::1": "lo6", "2001:db8::5": "doc6",
			"2001:db8:1::5": "doc6a", "2001:db9::1": "def", "::ffff:10.1.2.3": "host2", "::ffff:10.5.0.1": "tenb",
		}},
		{"no default", "", "10.0.0.0/8 ten", map[string]string{"10.0.0.1": "ten", "11.0.0.1": "", "::1": ""}},
		{"empty", "", "", map[string]string{"10.0.0.1": "", "::1": ""}},
		{"whole space", "", "0.0.0.0/0 all4; 255.255.255.255 last; ::/0 all6; ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff last6;" +
			"8000::/1 high", map[string]string{"0.0.0.0": "all4", "255.255.255.254": "all4", "255.255.255.255": "last",
			"::": "all6", "7fff::1": "all6", "8000::": "high", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe": "high",
			"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": "last6"}},
		{"source", "$http_x_ip", "default none; 10.0.0.0/8 ten; 255.255.255.255 bad; ::/0 v6", map[string]string{
			"10.1.1.1": "ten", "junk": "bad", "": "bad", "1.2.3.4:80": "bad", "[::1]": "bad", "::1": "v6",
			"::ffff:10.0.0.1": "ten", "255.255.255.254": "none", "255.255.255.255": "bad", "010.0.0.1": "ten",
			"10.1": "bad", "1.2.3.4.5": "bad", "256.1.1.1": "bad", "2001:db8::1%eth0": "bad", "10.0.0.1/8": "bad",
		}},
		{"ranges", "$http_x_ip", ranges, map[string]string{
			"10.0.0.5": "r1", "10.0.0.55": "r3", "10.0.5.15": "r5", "10.0.6.1": "rdef", "10.0.7.1": "r7b",
			"255.255.255.254": "top", "255.255.255.255": "rdef", "::1": "rdef", "::ffff:10.0.0.50": "r3",
			"10.2.0.5": "i2", "10.2.0.10": "i2", "10.2.0.11": "o2", "10.2.0.251": "i3", "10.1.0.5": "outer",
			"10.1.0.15": "rdef", "10.1.0.21": "outer", "9.255.255.255": "rdef",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, v := buildGeo(t, tt.source, tt.lines)
			for a, want := range tt.addr {
				r := &Request{HTTP: &http.Request{Header: http.Header{}}}
				if tt.source != "" {
					r.HTTP.Header.Set("X-Ip", a)
				} else {
					r.RemoteAddr = netip.AddrPortFrom(netip.MustParseAddr(a), 1)
				}
				if got := r.Value(v); got != want {
					t.Errorf("%s: %q, want %q", a, got, want)
				}
			}
		})
	}
}

// TestGeoProxy: a source address in a proxy network is replaced by X-Forwarded-For's last address, or with
// proxy_recursive by the first one from the right outside the proxy networks (observed from nginx 1.22).
func TestGeoProxy(t *testing.T) {
	nets := "default d; 10.0.0.0/8 ten; 127.0.0.1 lo; 192.0.2.1 tst"
	_, plain := buildGeo(t, "", "proxy 127.0.0.0/8; "+nets)
	_, rec := buildGeo(t, "", "proxy 127.0.0.0/8; proxy 10.0.0.0/8; proxy_recursive; "+nets)
	for _, tc := range []struct{ client, xff, plain, rec string }{
		{"127.0.0.1", "", "lo", "lo"},
		{"10.0.0.7", "192.0.2.1", "ten", "tst"},
		{"127.0.0.1", "192.0.2.1", "tst", "tst"},
		{"127.0.0.1", "192.0.2.1, 10.1.1.1", "ten", "tst"},
		{"127.0.0.1", "junk", "lo", "lo"},
		{"127.0.0.1", "203.0.113.1, 192.0.2.1, 127.0.0.5", "d", "tst"},
	} {
		r := &Request{HTTP: &http.Request{Header: http.Header{}}, RemoteAddr: netip.AddrPortFrom(netip.MustParseAddr(tc.client), 1)}
		if tc.xff != "" {
			r.HTTP.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := r.Value(plain); got != tc.plain {
			t.Errorf("%s XFF %q: proxy %q, want %q", tc.client, tc.xff, got, tc.plain)
		}
		r.Reset()
		r.HTTP, r.RemoteAddr = &http.Request{Header: http.Header{}}, netip.AddrPortFrom(netip.MustParseAddr(tc.client), 1)
		if tc.xff != "" {
			r.HTTP.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := r.Value(rec); got != tc.rec {
			t.Errorf("%s XFF %q: proxy_recursive %q, want %q", tc.client, tc.xff, got, tc.rec)
		}
	}
}

// TestGeoErrors: what nginx 1.22 refuses in a geo block (each error observed from nginx -t).
func TestGeoErrors(t *testing.T) {
	for _, tc := range []struct{ lines, want string }{
		{"10.0.0.0/8 a; ranges", `"ranges" directive must be the first`},
		{"default a; ranges", `"ranges" directive must be the first`},
		{"10.0.0.300 a", `invalid network "10.0.0.300"`},
		{"10.0.0.0/33 a", `invalid network "10.0.0.0/33"`},
		{"255.255.255.255/32 a", `invalid network "255.255.255.255/32"`},
		{"10.0.0.0/8 a b", "invalid number of the geo parameters"},
		{"ranges; 10.0.0.0/8 a", `invalid range "10.0.0.0/8"`},
		{"ranges; 10.0.0.9-10.0.0.1 a", `invalid range`},
		{"ranges; 255.255.255.0-255.255.255.255 a", `invalid range`},
		{"ranges; ::1-::2 a", `invalid range`},
		{"ranges; 10.1.0.10-10.1.0.20 inner; 10.1.0.0-10.1.0.255 outer", `range "10.1.0.0-10.1.0.255" overlaps "10.1.0.10-10.1.0.20"`},
		{"ranges; 10.0.0.0-10.0.0.255 a; 10.0.0.100-10.0.1.10 b", `range "10.0.0.100-10.0.1.10" overlaps "10.0.0.0-10.0.0.255"`},
	} {
		b := NewGeo(nil)
		var err error
		for _, l := range strings.Split(tc.lines, ";") {
			f := strings.Fields(l)
			if _, err = b.Line(f[0], f[1:]); err != nil {
				break
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.lines, err, tc.want)
		}
	}
}
